// The fuzz targets (RELIABILITY.md P1, L4, C5, C7): each takes arbitrary
// bytes and drives one untrusted-input path of tally as the real program
// does, without sockets or disk. They return 0 and must never crash, leak or
// hang whatever the bytes; a finding aborts (sanitizer report or trap).
//
// The same functions are linked into the libFuzzer binaries (fuzz_<name>,
// the TALLY_FUZZ build) and into fuzz_regression_test (every build), which
// replays fuzz/regressions/<name>/, fuzz/seeds/<name>/ and freshly generated
// seeds through them.

#ifndef TALLY_FUZZ_TARGETS_H_
#define TALLY_FUZZ_TARGETS_H_

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "storage/policy.h"

namespace tally::fuzz {

// Bytes of a request stream -> FrameDecoder -> DecodeRequest -> validation
// -> Service (in-memory engine, fixed clock) -> EncodeResponse, and the
// response must decode again (what the client will do with it).
int FuzzRequestFrames(const uint8_t* data, size_t size);
// Bytes of a response stream -> FrameDecoder -> DecodeResponse -> the
// client's handling of a reply (ToBatchResult) (L4).
int FuzzResponseDecode(const uint8_t* data, size_t size);
// Bytes of one WAL segment file -> recovery (WalReader, record decoding,
// apply into a scratch engine), then queries of what was recovered. Also
// run with the CRCs fixed up, so record payloads reach their decoders.
int FuzzWalReader(const uint8_t* data, size_t size);
// Bytes of one snapshot file -> recovery (snapshot::Read, Engine and
// DedupeTable loading with their structural checks, C5), then queries.
// Also run with the CRCs fixed up.
int FuzzSnapshotReader(const uint8_t* data, size_t size);

// A fixed "now" (2023-11-14) for every target, so a replayed input does
// exactly the same; the seed generator writes its data around it.
inline constexpr int64_t kFuzzNowMs = 1'700'000'000'000;
// The default policy plus "small" (prefix "s:", 1 s / 1 min tiers, distinct
// tracked), so retention edges and sketches are reachable in a few requests.
const PolicySet& Policies();

class MemFileSystem;
// Puts a snapshot file into data_dir/snap/ under the name its header's LSN
// gives, and the empty WAL segment that follows it (what a server leaves
// right after a snapshot), so that recovery reads it.
void PutSnapshot(MemFileSystem* fs, const std::string& data_dir,
                 const std::string& file);

struct Target {
  const char* name;  // "request_frames": fuzz_request_frames, fuzz/*/<name>/
  int (*run)(const uint8_t* data, size_t size);
  size_t max_len;  // the -max_len tools/fuzz.sh passes
};
std::span<const Target> Targets();

}  // namespace tally::fuzz

#endif  // TALLY_FUZZ_TARGETS_H_
