// Helpers shared by the WAL, recovery, journal and power-loss tests
// (RELIABILITY.md 3.1 D3/D8, 3.2 C1-C4, 3.3 F1/F2). Header-only; tests only.

#ifndef TALLY_STORAGE_WAL_TEST_UTIL_H_
#define TALLY_STORAGE_WAL_TEST_UTIL_H_

#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstdint>
#include <filesystem>
#include <iostream>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "storage/clock.h"
#include "storage/dedupe_table.h"
#include "storage/engine.h"
#include "storage/file_system.h"
#include "storage/recovery.h"
#include "storage/wal_format.h"
#include "storage/wal_reader.h"
#include "storage/wal_record.h"
#include "storage/wal_writer.h"

namespace tally::testing_util {

inline constexpr int64_t kT0 = 1'700'000'000'000;  // a whole second
inline constexpr uint64_t kHashSeed = 0x5eed;
inline constexpr uint32_t kShardBits = 2;  // 4 shards: small engines

// The seed of a randomised test: $TALLY_SEED when set, else a fresh one.
// Printed so that a failure can be replayed.
inline uint64_t TestSeed(std::string_view test) {
  uint64_t seed;
  if (const char* env = getenv("TALLY_SEED"); env != nullptr && *env) {
    seed = std::strtoull(env, nullptr, 0);
  } else {
    seed = (uint64_t{std::random_device{}()} << 32) ^ std::random_device{}();
  }
  std::cout << "[ seed     ] " << test << ": TALLY_SEED=" << seed << "\n";
  ::testing::Test::RecordProperty("tally_seed", std::to_string(seed));
  return seed;
}

// A temporary directory, removed with everything in it.
class TempDir {
 public:
  TempDir() {
    const char* base = getenv("TMPDIR");
    std::string templ =
        std::string(base && *base ? base : "/tmp") + "/tally_wal_test.XXXXXX";
    if (mkdtemp(templ.data()) == nullptr) std::abort();
    path_ = templ;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// PosixFileSystem without fdatasync/fsync: durability is simulated by the
// FaultInjectionFileSystem on top of it (or does not matter), and real
// syncs would make thousands of iterations take minutes.
class NoSyncFileSystem final : public FileSystem {
 public:
  Result<std::unique_ptr<WritableFile>> OpenWritable(
      const std::string& path) override {
    Result<std::unique_ptr<WritableFile>> f = base_->OpenWritable(path);
    if (!f.ok()) return f.status();
    return std::unique_ptr<WritableFile>(
        std::make_unique<File>(std::move(f).value()));
  }
  Result<std::string> ReadFile(const std::string& path,
                               uint64_t max_bytes) override {
    return base_->ReadFile(path, max_bytes);
  }
  Result<size_t> ReadAt(const std::string& path, uint64_t offset,
                        std::span<uint8_t> out) override {
    return base_->ReadAt(path, offset, out);
  }
  Result<uint64_t> FileSize(const std::string& path) override {
    return base_->FileSize(path);
  }
  bool Exists(const std::string& path) override { return base_->Exists(path); }
  Result<std::vector<std::string>> ListDir(const std::string& dir) override {
    return base_->ListDir(dir);
  }
  Status CreateDir(const std::string& dir) override {
    return base_->CreateDir(dir);
  }
  Status SyncDir(const std::string&) override { return Status::Ok(); }
  Status Rename(const std::string& from, const std::string& to) override {
    return base_->Rename(from, to);
  }
  Status Remove(const std::string& path) override {
    return base_->Remove(path);
  }
  Status TruncateFile(const std::string& path, uint64_t size) override {
    return base_->TruncateFile(path, size);
  }

 private:
  class File final : public WritableFile {
   public:
    explicit File(std::unique_ptr<WritableFile> base)
        : base_(std::move(base)) {}
    Status WriteAt(uint64_t offset, std::span<const uint8_t> data) override {
      return base_->WriteAt(offset, data);
    }
    Status Sync() override { return Status::Ok(); }
    Status Allocate(uint64_t size) override { return base_->Allocate(size); }
    Status Truncate(uint64_t size) override { return base_->Truncate(size); }
    Status Close() override { return base_->Close(); }

   private:
    std::unique_ptr<WritableFile> base_;
  };
  FileSystem* base_ = PosixFileSystem();
};

// Small engines: 4 shards, the default policy (distinct members tracked).
inline EngineOptions SmallEngineOptions(const Clock* clock) {
  EngineOptions options;
  options.clock = clock;
  options.hash_seed = kHashSeed;
  options.shard_bits = kShardBits;
  return options;
}

inline DedupeOptions SmallDedupeOptions() {
  return {.horizon_ms = 3600 * 1000, .max_entries = 100'000, .shard_bits = 2};
}

// One record as logged.
struct LoggedRecord {
  wal::RecordType type = wal::RecordType::kAddBatch;
  uint64_t lsn = 0;
  int64_t time_ms = 0;
  std::string payload;
};

// Random record payloads over a small key space: adds (some with members,
// explicit event times, idempotency ids and exact retries of earlier ids)
// and deletes.
class PayloadGenerator {
 public:
  explicit PayloadGenerator(uint64_t seed) : rng_(seed) {}

  std::mt19937_64& rng() { return rng_; }

  // An add batch of 1..max_items items; event times are relative to
  // `now_ms` (within the default policy's lateness).
  std::string AddBatch(int64_t now_ms, int max_items = 3) {
    const int n = 1 + static_cast<int>(rng_() % max_items);
    std::vector<std::string> keys(n), members(n), ids(n);
    std::vector<wal::AddOp> ops(n);
    for (int i = 0; i < n; ++i) {
      wal::AddOp& op = ops[i];
      if (!sent_.empty() && rng_() % 8 == 0) {
        // A retry of an earlier id: the same event again (a duplicate).
        const Sent& s = sent_[rng_() % sent_.size()];
        keys[i] = s.key;
        members[i] = s.member;
        ids[i] = s.id;
        op.key = keys[i];
        op.time_ms = s.time_ms;
        op.count = s.count;
        op.amount = s.amount;
        op.has_member = s.has_member;
        op.member = members[i];
        op.has_id = true;
        op.id = ids[i];
        op.digest = wal::EventDigest(op);
        continue;
      }
      keys[i] = "k" + std::to_string(rng_() % 24);
      op.key = keys[i];
      op.count = 1 + static_cast<int64_t>(rng_() % 3);
      op.amount = static_cast<int64_t>(rng_() % 2001) - 500;
      if (rng_() % 3 == 0) {
        op.time_ms = now_ms - static_cast<int64_t>(rng_() % 600'000);
      }
      if (rng_() % 2 == 0) {
        members[i] = "m" + std::to_string(rng_() % 50);
        op.has_member = true;
        op.member = members[i];
      }
      if (rng_() % 3 == 0) {
        ids[i] = "id-" + std::to_string(next_id_++) + "-" +
                 std::to_string(rng_() % 1000);
        op.has_id = true;
        op.id = ids[i];
        op.digest = wal::EventDigest(op);
        sent_.push_back({keys[i], members[i], ids[i], op.time_ms, op.count,
                         op.amount, op.has_member});
      }
    }
    std::string payload;
    wal::EncodeAddBatch(ops, &payload);
    return payload;
  }

  std::string Delete() {
    const std::string key = "k" + std::to_string(rng_() % 24);
    const std::string_view keys[] = {key};
    std::string payload;
    wal::EncodeDelete(keys, &payload);
    return payload;
  }

  // Mostly adds, some deletes.
  std::pair<wal::RecordType, std::string> Next(int64_t now_ms) {
    if (rng_() % 10 == 0) return {wal::RecordType::kDelete, Delete()};
    return {wal::RecordType::kAddBatch, AddBatch(now_ms)};
  }

  // `count` records with LSNs first_lsn.., times from t0 rising slowly.
  std::vector<LoggedRecord> Records(int count, uint64_t first_lsn = 1,
                                    int64_t t0 = kT0) {
    std::vector<LoggedRecord> out;
    int64_t t = t0;
    for (int i = 0; i < count; ++i) {
      t += static_cast<int64_t>(rng_() % 300);
      auto [type, payload] = Next(t);
      out.push_back({type, first_lsn + i, t, std::move(payload)});
    }
    return out;
  }

 private:
  struct Sent {
    std::string key, member, id;
    int64_t time_ms, count, amount;
    bool has_member;
  };
  std::mt19937_64 rng_;
  uint64_t next_id_ = 0;
  std::vector<Sent> sent_;
};

// An engine and idempotency table that applied records through
// wal::ApplyRecord: the state a correct recovery must reproduce.
class ReferenceState {
 public:
  explicit ReferenceState(const Clock* clock)
      : engine_(SmallEngineOptions(clock)), dedupe_(SmallDedupeOptions()) {}

  void Apply(const LoggedRecord& r) {
    Status s = wal::ApplyRecord({&engine_, &dedupe_}, r.type, r.time_ms,
                                r.payload, nullptr);
    ASSERT_TRUE(s.ok()) << "LSN " << r.lsn << ": " << s.ToString();
  }
  void ApplyAll(const std::vector<LoggedRecord>& records, size_t n) {
    for (size_t i = 0; i < n; ++i) Apply(records[i]);
  }
  uint64_t engine_digest() const { return engine_.Digest(); }
  uint64_t dedupe_digest() const { return dedupe_.Digest(); }

 private:
  Engine engine_;
  DedupeTable dedupe_;
};

// Encodes one record (header + payload).
inline std::string Encode(const LoggedRecord& r) {
  std::string out;
  wal::AppendRecord(r.type, r.lsn, r.time_ms, r.payload, &out);
  return out;
}

// Writes `records` to data_dir's WAL with WalWriter, one Append each.
inline void WriteWal(FileSystem* fs, const std::string& data_dir,
                     const std::vector<LoggedRecord>& records,
                     uint64_t segment_bytes) {
  ASSERT_TRUE(fs->CreateDir(data_dir).ok());
  auto writer = wal::WalWriter::Open(
      fs, WalDir(data_dir), records.empty() ? 1 : records.front().lsn, {},
      {.segment_bytes = segment_bytes,
       .hash_seed = kHashSeed,
       .shard_bits = kShardBits});
  ASSERT_TRUE(writer.ok()) << writer.status().ToString();
  for (const LoggedRecord& r : records) {
    Status s = (*writer)->Append(Encode(r), r.lsn, r.lsn);
    ASSERT_TRUE(s.ok()) << s.ToString();
  }
  ASSERT_TRUE((*writer)->Sync().ok());
}

// Where each record of a WAL directory is, found by walking the files
// directly (independently of WalReader).
struct RecordPlace {
  std::string segment;  // file name
  size_t segment_index = 0;
  uint64_t offset = 0;  // of the header
  uint64_t size = 0;    // header + payload
  uint64_t lsn = 0;
};

inline std::vector<std::string> SegmentNames(FileSystem* fs,
                                             const std::string& data_dir) {
  auto segs = wal::ListSegments(fs, WalDir(data_dir));
  EXPECT_TRUE(segs.ok());
  std::vector<std::string> names;
  if (segs.ok()) {
    for (const auto& s : *segs) names.push_back(s.name);
  }
  return names;
}

inline std::vector<RecordPlace> ScanLayout(FileSystem* fs,
                                           const std::string& data_dir) {
  std::vector<RecordPlace> out;
  const std::vector<std::string> names = SegmentNames(fs, data_dir);
  for (size_t k = 0; k < names.size(); ++k) {
    auto data = fs->ReadFile(JoinPath(WalDir(data_dir), names[k]), 1 << 30);
    EXPECT_TRUE(data.ok());
    if (!data.ok()) return out;
    const auto* p = reinterpret_cast<const uint8_t*>(data->data());
    uint64_t pos = wal::kSegmentHeaderSize;
    while (pos + wal::kRecordHeaderSize <= data->size()) {
      const wal::RecordHeader h = wal::ParseRecordHeader(p + pos);
      if (h.type == 0) break;
      out.push_back(
          {names[k], k, pos, wal::kRecordHeaderSize + h.length, h.lsn});
      pos += wal::kRecordHeaderSize + h.length;
    }
  }
  return out;
}

// All files of a directory tree, relative path -> content: a WAL image to
// restore between cases.
using DirImage = std::vector<std::pair<std::string, std::string>>;

inline DirImage SaveDir(const std::string& dir) {
  DirImage image;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    if (!e.is_regular_file()) continue;
    auto data = PosixFileSystem()->ReadFile(e.path().string(), 1 << 30);
    EXPECT_TRUE(data.ok());
    image.emplace_back(std::filesystem::relative(e.path(), dir).string(),
                       data.ok() ? *data : "");
  }
  return image;
}

inline void RestoreDir(const std::string& dir, const DirImage& image) {
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  for (const auto& [rel, content] : image) {
    const std::filesystem::path path = std::filesystem::path(dir) / rel;
    std::filesystem::create_directories(path.parent_path());
    auto f = PosixFileSystem()->OpenWritable(path.string());
    ASSERT_TRUE(f.ok());
    ASSERT_TRUE(
        (*f)->WriteAt(0, {reinterpret_cast<const uint8_t*>(content.data()),
                          content.size()})
            .ok());
    ASSERT_TRUE((*f)->Close().ok());
  }
}

inline std::string ReadAll(const std::string& path) {
  auto data = PosixFileSystem()->ReadFile(path, 1 << 30);
  EXPECT_TRUE(data.ok()) << path;
  return data.ok() ? *data : std::string();
}

inline void WriteAll(const std::string& path, const std::string& content) {
  auto f = PosixFileSystem()->OpenWritable(path);
  ASSERT_TRUE(f.ok());
  ASSERT_TRUE((*f)->Truncate(0).ok());
  ASSERT_TRUE(
      (*f)->WriteAt(0, {reinterpret_cast<const uint8_t*>(content.data()),
                        content.size()})
          .ok());
  ASSERT_TRUE((*f)->Close().ok());
}

inline RecoveryOptions MakeRecoveryOptions(FileSystem* fs,
                                           const std::string& data_dir,
                                           RecoveryMode mode,
                                           const Clock* clock) {
  RecoveryOptions o;
  o.fs = fs;
  o.data_dir = data_dir;
  o.mode = mode;
  o.engine = SmallEngineOptions(clock);
  o.dedupe = SmallDedupeOptions();
  return o;
}

// Records of the WAL as ReadWal delivers them.
inline std::vector<LoggedRecord> ReadRecords(FileSystem* fs,
                                             const std::string& data_dir,
                                             wal::ReadReport* report,
                                             uint64_t after_lsn = 0) {
  std::vector<LoggedRecord> out;
  wal::ReadOptions options;
  options.after_lsn = after_lsn;
  options.need_from_lsn = after_lsn;
  auto rep =
      wal::ReadWal(fs, WalDir(data_dir), options,
                   [&](const wal::RecordHeader& h, std::string_view payload) {
                     out.push_back({static_cast<wal::RecordType>(h.type), h.lsn,
                                    h.time_ms, std::string(payload)});
                     return Status::Ok();
                   });
  EXPECT_TRUE(rep.ok()) << rep.status().ToString();
  if (rep.ok() && report != nullptr) *report = *rep;
  return out;
}

// Whether `got` are exactly the first got.size() of `want`, byte for byte.
inline ::testing::AssertionResult IsPrefixOf(
    const std::vector<LoggedRecord>& got,
    const std::vector<LoggedRecord>& want) {
  if (got.size() > want.size()) {
    return ::testing::AssertionFailure()
           << got.size() << " records read, only " << want.size() << " written";
  }
  for (size_t i = 0; i < got.size(); ++i) {
    if (got[i].lsn != want[i].lsn || got[i].type != want[i].type ||
        got[i].time_ms != want[i].time_ms ||
        got[i].payload != want[i].payload) {
      return ::testing::AssertionFailure()
             << "record " << i << " (LSN " << want[i].lsn
             << ") differs from what was written";
    }
  }
  return ::testing::AssertionSuccess();
}

}  // namespace tally::testing_util

#endif  // TALLY_STORAGE_WAL_TEST_UTIL_H_
