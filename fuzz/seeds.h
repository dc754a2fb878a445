// Seed corpora of real frames and files for the fuzz targets (P1, L4, C7):
// request frames of every operation with edge values, the responses a real
// Service gives to them, and a WAL segment and snapshots written by the real
// Journal (WAL writer, snapshot writer) on an in-memory file system.
//
// Deterministic: the same build generates the same seeds.

#ifndef TALLY_FUZZ_SEEDS_H_
#define TALLY_FUZZ_SEEDS_H_

#include <string>
#include <vector>

namespace tally::fuzz {

struct Seed {
  std::string target;  // a Targets() name
  std::string name;    // a file name, unique within the target
  std::string bytes;
};

std::vector<Seed> GenerateSeeds();

// A libFuzzer dictionary (-dict=) for the frame targets: the magic, header
// bytes, operation and field values.
std::string FrameDictionary();

}  // namespace tally::fuzz

#endif  // TALLY_FUZZ_SEEDS_H_
