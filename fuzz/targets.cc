#include "fuzz/targets.h"

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "client/tally/client.h"
#include "fuzz/mem_file_system.h"
#include "protocol/codec.h"
#include "protocol/frame.h"
#include "protocol/limits.h"
#include "server/service.h"
#include "storage/crc32c.h"
#include "storage/dedupe_table.h"
#include "storage/engine.h"
#include "storage/journal.h"
#include "storage/policy.h"
#include "storage/recovery.h"
#include "storage/snapshot.h"
#include "storage/wal_format.h"

namespace tally::fuzz {
namespace {

// Work per input is bounded: at most this many frames are handled, and at
// most this many recovered keys are queried.
constexpr int kMaxFrames = 64;
constexpr size_t kMaxProbedKeys = 64;

// A finding that is not a sanitizer report: a broken invariant. Aborts so
// libFuzzer saves the input.
[[noreturn]] void Finding(const char* what, const std::string& detail) {
  std::fprintf(stderr, "fuzz finding: %s: %s\n", what, detail.c_str());
  std::abort();
}

PolicySet MakePolicies() {
  // The default policy plus a small one (prefix "s:", distinct tracked) so
  // retention edges and sketches are reachable in a few requests.
  Policy small;
  small.name = "small";
  small.prefix = "s:";
  small.tiers = {{kSecondMs, 60 * kSecondMs}, {kMinuteMs, kHourMs}};
  small.max_lateness_ms = 30 * kMinuteMs;
  small.max_skew_ms = 3 * kSecondMs;
  small.track_distinct = true;
  Result<PolicySet> set = PolicySet::Create(Policy(), {small});
  if (!set.ok()) Finding("policies", set.status().ToString());
  return *set;
}

// Reads back what an engine holds, as a client would: scan, then query,
// range and inspect every key (bounded). Results are not checked (the input
// is arbitrary); the sanitizers and the engine's own checks are the oracle.
void Probe(Engine* engine, int64_t now_ms) {
  ScanPage page = engine->Scan(0, "", kMaxProbedKeys);
  if (page.keys.size() > kMaxProbedKeys) page.keys.resize(kMaxProbedKeys);
  for (const std::string& key : page.keys) {
    (void)engine->Query(key, Window::Last(kHourMs, now_ms));
    (void)engine->Query(key, Window::Between(0, now_ms + kDayMs));
    (void)engine->Range(key, now_ms - kHourMs, now_ms + kMinuteMs,
                        10 * kMinuteMs);
    (void)engine->Inspect(key);
  }
  (void)engine->Digest();
  (void)engine->Stats();
}

}  // namespace

const PolicySet& Policies() {
  static const PolicySet* policies = new PolicySet(MakePolicies());
  return *policies;
}

int FuzzRequestFrames(const uint8_t* data, size_t size) {
  ManualClock clock(kFuzzNowMs);
  EngineOptions engine_options;
  engine_options.clock = &clock;
  engine_options.policies = Policies();
  engine_options.hash_seed = 0x5EED;
  engine_options.shard_bits = 2;  // cheap to build per input
  engine_options.distinct_exact_limit = 16;
  Recovered memory_only;
  memory_only.engine = std::make_unique<Engine>(engine_options);
  DedupeOptions dedupe_options;
  dedupe_options.shard_bits = 1;
  memory_only.dedupe = std::make_unique<DedupeTable>(dedupe_options);
  JournalOptions journal_options;
  journal_options.clock = &clock;
  // No WAL: Submit applies on this thread through wal::ApplyRecord (the
  // records are still encoded and decoded); nothing is started.
  Journal journal(std::move(memory_only), journal_options);
  Service service(&journal, &clock, ServiceOptions{});

  FrameDecoder decoder(kDefaultMaxFrameBody, FrameKind::kRequest);
  std::span<const uint8_t> input(data, size);
  for (int frames = 0; frames < kMaxFrames;) {
    input = input.subspan(decoder.Append(input));
    Result<std::optional<Frame>> next = decoder.Next();
    if (!next.ok()) {
      // The connection answers the framing error and closes.
      (void)EncodeResponse(proto::Response::Error(next.status()));
      break;
    }
    if (!next->has_value()) {
      if (input.empty() || decoder.writable() == 0) break;
      continue;
    }
    ++frames;
    const Frame& frame = **next;
    Result<proto::Request> request =
        DecodeRequest(frame.body, kDefaultMaxFrameBody);
    proto::Response response =
        request.ok() ? service.HandleSync(*request, BootClock::now())
                     : proto::Response::Error(request.status());
    // What the connection writes must be what a client can read.
    std::vector<uint8_t> body = EncodeResponse(response);
    Result<proto::Response> decoded = DecodeResponse(body, SIZE_MAX);
    if (!decoded.ok()) {
      Finding("a response the server encodes does not decode",
              decoded.status().ToString());
    }
    if (decoded->code != response.code || decoded->op() != response.op()) {
      Finding("a response changed in a round trip",
              std::string(CodeName(response.code)) + " " +
                  std::string(proto::OpName(response.op())));
    }
    clock.Advance(250);
  }
  return 0;
}

int FuzzResponseDecode(const uint8_t* data, size_t size) {
  // What a client sent, so its reply handling has something to match.
  Batch batch;
  batch.Add("k", 1).Query("k", 60'000);
  FrameDecoder decoder(kDefaultMaxFrameBody, FrameKind::kResponse);
  std::span<const uint8_t> input(data, size);
  for (int frames = 0; frames < kMaxFrames;) {
    input = input.subspan(decoder.Append(input));
    Result<std::optional<Frame>> next = decoder.Next();
    if (!next.ok()) break;  // the client fails the connection
    if (!next->has_value()) {
      if (input.empty() || decoder.writable() == 0) break;
      continue;
    }
    ++frames;
    Result<proto::Response> response = DecodeResponse((**next).body);
    if (!response.ok()) continue;
    // Client::Impl::OnReply and ToBatchResult, without the sockets.
    (void)response->status().ToString();
    (void)proto::OpName(response->op());
    CallResult<proto::Response> call;
    call.code = response->code;
    call.message = response->message;
    call.value = *response;
    CallResult<BatchResult> result = ToBatchResult(batch, std::move(call));
    if (result.ok() &&
        (result.value.adds.size() != 1 || result.value.queries.size() != 1)) {
      Finding("ToBatchResult accepted a reply of the wrong shape", "");
    }
    // A decoded response re-encodes and decodes again.
    std::vector<uint8_t> again = EncodeResponse(*response);
    if (Result<proto::Response> r = DecodeResponse(again, SIZE_MAX); !r.ok()) {
      Finding("a decoded response does not survive re-encoding",
              r.status().ToString());
    }
  }
  return 0;
}

namespace {

constexpr const char* kDataDir = "/fuzz";

// Recovers a data directory whose files are in `fs`, in `mode`, and reads
// what came back.
void RecoverAndProbe(MemFileSystem* fs, RecoveryMode mode) {
  ManualClock clock(kFuzzNowMs);
  RecoveryOptions options;
  options.fs = fs;
  options.data_dir = kDataDir;
  options.mode = mode;
  options.engine.clock = &clock;
  options.engine.policies = Policies();
  options.engine.shard_bits = 2;
  options.dedupe.shard_bits = 1;
  Result<Recovered> recovered = Recover(options);
  if (!recovered.ok()) return;  // refused: a clear error, nothing loaded
  Probe(recovered->engine.get(), recovered->last_time_ms);
  (void)recovered->dedupe->Stats();
}

// Recomputes the segment header's and each record's CRC in place, so that
// mutated lengths, types and payloads reach the record decoders.
std::string FixWalCrcs(std::string file) {
  auto* p = reinterpret_cast<uint8_t*>(file.data());
  if (file.size() < wal::kSegmentHeaderSize) return file;
  wal::PutU32(p + 36, crc32c::Value(p, 36));
  size_t at = wal::kSegmentHeaderSize;
  while (file.size() - at >= wal::kRecordHeaderSize) {
    const uint32_t length = wal::GetU32(p + at + 4);
    if (length > file.size() - at - wal::kRecordHeaderSize) break;
    std::string_view payload(file.data() + at + wal::kRecordHeaderSize, length);
    wal::PutU32(p + at, wal::RecordCrc(p + at, payload));
    at += wal::kRecordHeaderSize + length;
  }
  return file;
}

std::string FixSnapshotCrcs(std::string file) {
  auto* p = reinterpret_cast<uint8_t*>(file.data());
  if (file.size() < snapshot::kHeaderSize) return file;
  const uint32_t body = crc32c::Value(p + snapshot::kHeaderSize,
                                      file.size() - snapshot::kHeaderSize);
  std::memcpy(p + 56, &body, 4);
  const uint32_t header = crc32c::Value(p, 60);
  std::memcpy(p + 60, &header, 4);
  return file;
}

void RunWal(const std::string& file) {
  // The segment's name carries its first LSN; take it from the header so a
  // mutated header is not rejected for the name alone.
  uint64_t first_lsn = 1;
  if (file.size() >= 24) {
    std::memcpy(&first_lsn, file.data() + 16, 8);
    if (first_lsn == 0 || first_lsn > 99'999'999'999'999'999ull) first_lsn = 1;
  }
  for (RecoveryMode mode :
       {RecoveryMode::kTolerateTornTail, RecoveryMode::kPointInTime}) {
    MemFileSystem fs;
    fs.Put(JoinPath(WalDir(kDataDir), wal::SegmentFileName(first_lsn)), file);
    RecoverAndProbe(&fs, mode);
  }
}

void RunSnapshot(const std::string& file) {
  MemFileSystem fs;
  PutSnapshot(&fs, kDataDir, file);
  RecoverAndProbe(&fs, RecoveryMode::kTolerateTornTail);
}

}  // namespace

void PutSnapshot(MemFileSystem* fs, const std::string& data_dir,
                 const std::string& file) {
  // The file's name carries its LSN; take it from the header so a mutated
  // header is not rejected for the name alone.
  uint64_t lsn = 1, hash_seed = 0;
  if (file.size() >= 32) {
    std::memcpy(&lsn, file.data() + 16, 8);
    std::memcpy(&hash_seed, file.data() + 24, 8);
  }
  if (lsn == 0 || lsn > 99'999'999'999'999'999ull) lsn = 1;
  fs->Put(JoinPath(SnapshotDir(data_dir), snapshot::FileName(lsn)), file);
  // Recovery refuses a snapshot without the WAL that follows it: give it
  // the empty segment a server leaves right after a snapshot.
  uint8_t header[wal::kSegmentHeaderSize];
  wal::EncodeSegmentHeader(
      {.first_lsn = lsn + 1, .hash_seed = hash_seed, .shard_bits = 2}, header);
  std::string segment(reinterpret_cast<const char*>(header), sizeof header);
  segment.append(wal::kRecordHeaderSize, '\0');
  fs->Put(JoinPath(WalDir(data_dir), wal::SegmentFileName(lsn + 1)),
          std::move(segment));
}

int FuzzWalReader(const uint8_t* data, size_t size) {
  std::string file(reinterpret_cast<const char*>(data), size);
  RunWal(file);
  std::string fixed = FixWalCrcs(file);
  if (fixed != file) RunWal(fixed);
  return 0;
}

int FuzzSnapshotReader(const uint8_t* data, size_t size) {
  std::string file(reinterpret_cast<const char*>(data), size);
  RunSnapshot(file);
  std::string fixed = FixSnapshotCrcs(file);
  if (fixed != file) RunSnapshot(fixed);
  return 0;
}

std::span<const Target> Targets() {
  static const Target kTargets[] = {
      {"request_frames", FuzzRequestFrames,
       kFrameHeaderSize + kDefaultMaxFrameBody + 16},
      {"response_decode", FuzzResponseDecode,
       kFrameHeaderSize + kDefaultMaxFrameBody + 16},
      {"wal_reader", FuzzWalReader, 1 << 20},
      {"snapshot_reader", FuzzSnapshotReader, 1 << 20},
  };
  return kTargets;
}

}  // namespace tally::fuzz
