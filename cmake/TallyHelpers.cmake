# tally_link_allocator(target): link jemalloc into an executable when enabled.
# Libraries never link an allocator; only executables choose one.
function(tally_link_allocator target)
  if(TALLY_JEMALLOC)
    target_link_libraries(${target} PRIVATE PkgConfig::JEMALLOC)
    target_sources(${target} PRIVATE ${PROJECT_SOURCE_DIR}/tools/allocator_config.cc)
    target_compile_definitions(${target} PRIVATE TALLY_HAVE_JEMALLOC=1)
  endif()
endfunction()

# Every test binary labelled `concurrency` (run under TSan by tools/test.sh
# tsan), so that the TSan build compiles only what it runs.
add_custom_target(tally_concurrency_tests)

# tally_add_test(NAME name SOURCES a.cc ... LIBS lib ... LABELS unit|integration|slow [concurrency]
#                [TIMEOUT seconds] [ENVIRONMENT VAR=value ...])
# The one way tests are registered: a GoogleTest binary in build/bin, discovered
# test-by-test so ctest reports every case, and labelled for ctest -L.
function(tally_add_test)
  cmake_parse_arguments(T "" "NAME;TIMEOUT" "SOURCES;LIBS;LABELS;ENVIRONMENT" ${ARGN})
  if(NOT T_LABELS)
    set(T_LABELS unit)
  endif()
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 300)
  endif()
  set(T_CONCURRENCY FALSE)
  if("concurrency" IN_LIST T_LABELS)
    set(T_CONCURRENCY TRUE)
  endif()
  # Several labels: the list passes through four list expansions inside
  # gtest_discover_tests (CMake 3.25) before it reaches set_tests_properties,
  # each of which eats one level of backslash; escape it so that it arrives
  # as one LABELS value. tools/test.sh tsan checks that the label is seen.
  string(REPLACE ";" "\\\\\\\\\\\\\\\\;" T_LABELS "${T_LABELS}")
  add_executable(${T_NAME} ${T_SOURCES})
  if(T_CONCURRENCY)
    add_dependencies(tally_concurrency_tests ${T_NAME})
  endif()
  target_link_libraries(${T_NAME} PRIVATE ${T_LIBS} GTest::gtest GTest::gmock GTest::gtest_main)
  gtest_discover_tests(${T_NAME}
    PROPERTIES LABELS "${T_LABELS}" TIMEOUT ${T_TIMEOUT} ENVIRONMENT "${T_ENVIRONMENT}"
    DISCOVERY_TIMEOUT 60)
endfunction()
