// The libFuzzer entry point of one target (TALLY_FUZZ builds only): built
// once per target with TALLY_FUZZ_TARGET naming its function in targets.h.

#include <glog/logging.h>

#include <cstddef>
#include <cstdint>

#include "fuzz/targets.h"

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  // The service logs rejected requests; millions of lines would only slow
  // the fuzzer down. Errors still show.
  FLAGS_minloglevel = google::GLOG_ERROR;
  FLAGS_logtostderr = true;
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return tally::fuzz::TALLY_FUZZ_TARGET(data, size);
}
