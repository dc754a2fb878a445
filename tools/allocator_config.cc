// jemalloc configuration for tally's executables (linked by
// tally_link_allocator; libraries never choose an allocator).
//
// thp:always backs jemalloc's arenas with transparent huge pages (the kernel
// default here is "madvise", so without it every new 4 KiB page of a growing
// key set is a page fault). Measured on W1 ingest: +23 % events/s, p99 halved,
// +6 % RSS (docs/benchmarks.md). tally does not fork, so the copy-on-write
// cost that makes Redis advise against THP does not apply.
// MALLOC_CONF in the environment still overrides this.
extern "C" {
// NOLINTNEXTLINE(readability-identifier-naming): jemalloc's documented symbol.
const char* malloc_conf = "thp:always,metadata_thp:always";
}
