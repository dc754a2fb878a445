// C6 (RELIABILITY.md 3.2), the redis-check-aof flow against a real tallyd:
// a byte flipped in the middle of the WAL makes tallyd refuse to start (exit
// 3, a message naming tally-wal); `tally-wal check` exits 2 and prints
// valid_up_to=; `tally-wal repair --yes` cuts the log there; tallyd then
// starts and holds exactly what the records before the corruption say
// (compared with `tally-wal dump --json`, and with the acknowledged ops by
// LSN). Also: after snapshots truncated the WAL, check/repair agree with
// tallyd (the log is not "missing segments"). TALLYD, TALLY_WAL: binaries;
// TALLY_SEED replays.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>

#include "tests/crash/crash_harness.h"

namespace tally::crash {
namespace {

using json = nlohmann::json;

std::string ReadText(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

class WalRepairTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (EnvOr("TALLYD").empty() || TallyWalBinary().empty()) {
      GTEST_SKIP() << "TALLYD or TALLY_WAL not set";
    }
    seed_ = TestSeed();
    std::printf("[ seed ] TALLY_SEED=%llu\n",
                static_cast<unsigned long long>(seed_));
    dir_ = std::make_unique<TempDir>("tally-walrepair");
    ASSERT_FALSE(dir_->path().empty());
    start_.binary = EnvOr("TALLYD");
    start_.data_dir = dir_->path() + "/data";
    start_.log_path = dir_->path() + "/tallyd.log";
    history_ = std::make_unique<History>(dir_->path() + "/history.log");
    model_ = std::make_unique<KeyModel>(1000);
  }

  // Starts, loads for `ms`, kills -9 (every acked op is on disk: fsync).
  void LoadThenKill(int ms) {
    TallydProcess server;
    ASSERT_TRUE(server.Start(start_)) << server.exit_status().ToString();
    LoadOptions load_options;
    load_options.seed = seed_;
    LoadGenerator load(history_.get(), model_.get(), server.port(),
                       load_options);
    load.Start();
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    const LoadStats stats = load.Stop();
    ASSERT_GT(stats.adds_ok, 0);
    server.Kill9();
    history_->Sync();
  }

  int Wal(const std::vector<std::string>& args, std::string* out,
          bool with_stderr = true) {
    std::vector<std::string> argv = {TallyWalBinary()};
    argv.insert(argv.end(), args.begin(), args.end());
    out->clear();
    return RunCommand(argv, out, std::chrono::seconds(60), with_stderr);
  }

  uint64_t seed_ = 0;
  std::unique_ptr<TempDir> dir_;
  StartOptions start_;
  std::unique_ptr<History> history_;
  std::unique_ptr<KeyModel> model_;
};

TEST_F(WalRepairTest,
       MidLogCorruptionRefusesStartAndRepairKeepsExactlyThePrefix) {
  start_.flags = {"--durability=fsync", "--snapshot_interval_s=0",
                  "--wal_segment_mb=4", "--sweep_interval_ms=3600000"};
  LoadThenKill(1500);
  if (HasFatalFailure()) return;

  std::string out;
  ASSERT_EQ(Wal({"check", "--json", start_.data_dir}, &out, false), 0) << out;
  const json before = json::parse(out);
  const std::string valid_up_to = before["valid_up_to"].get<std::string>();
  const size_t colon = valid_up_to.rfind(':');
  ASSERT_NE(colon, std::string::npos) << valid_up_to;
  const std::string segment =
      start_.data_dir + "/wal/" + valid_up_to.substr(0, colon);
  const uint64_t end = std::stoull(valid_up_to.substr(colon + 1));
  ASSERT_GT(end, 4096u) << "too few records to corrupt the middle";

  // Flip one byte halfway through the last segment's records.
  const uint64_t at = end / 2;
  {
    const int fd = open(segment.c_str(), O_RDWR);
    ASSERT_GE(fd, 0) << segment;
    unsigned char byte = 0;
    ASSERT_EQ(pread(fd, &byte, 1, static_cast<off_t>(at)), 1);
    byte ^= 0x5A;
    ASSERT_EQ(pwrite(fd, &byte, 1, static_cast<off_t>(at)), 1);
    fsync(fd);
    close(fd);
  }
  history_->Note("flipped byte " + std::to_string(at) + " of " + segment);

  // tallyd refuses, with exit 3 and a pointer to the checker.
  TallydProcess server;
  EXPECT_FALSE(server.Start(start_)) << "tallyd started on a corrupt WAL";
  const ExitStatus refused = server.exit_status();
  EXPECT_TRUE(refused.exited && refused.code == 3) << refused.ToString();
  EXPECT_NE(ReadText(start_.log_path).find("tally-wal"), std::string::npos)
      << "stderr does not name tally-wal:\n"
      << ReadText(start_.log_path);

  EXPECT_EQ(Wal({"check", start_.data_dir}, &out), 2) << out;
  EXPECT_NE(out.find("valid_up_to="), std::string::npos) << out;

  // What the records before the corruption say, per key.
  ASSERT_EQ(Wal({"dump", "--json", start_.data_dir}, &out, false), 2);
  std::map<std::string, std::pair<int64_t, int64_t>> expected;  // count, sum
  std::set<std::string> ids;
  uint64_t last_lsn = 0;
  int64_t records = 0;
  std::istringstream lines(out);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.empty() || line[0] != '{') continue;
    const json r = json::parse(line);
    ++records;
    last_lsn = std::max(last_lsn, r["lsn"].get<uint64_t>());
    if (r["type"] != "add") continue;
    for (const json& item : r["items"]) {
      auto& e = expected[item["key"].get<std::string>()];
      e.first += item["count"].get<int64_t>();
      e.second += item["amount"].get<int64_t>();
      if (item.contains("id")) ids.insert(item["id"].get<std::string>());
    }
  }
  ASSERT_GT(records, 0);

  EXPECT_EQ(Wal({"repair", "--yes", start_.data_dir}, &out), 0) << out;
  EXPECT_EQ(Wal({"check", start_.data_dir}, &out), 0) << out;
  ASSERT_TRUE(server.Start(start_)) << server.exit_status().ToString();

  std::vector<int64_t> counts, sums;
  ASSERT_TRUE(ReadAllKeys(server.port(), model_->keys(), &counts, &sums));
  int64_t mismatches = 0;
  for (uint32_t k = 0; k < model_->keys(); ++k) {
    const auto it = expected.find(KeyName(k));
    const std::pair<int64_t, int64_t> want =
        it == expected.end() ? std::pair<int64_t, int64_t>{0, 0} : it->second;
    if (counts[k] != want.first || sums[k] != want.second) {
      if (++mismatches <= 5) {
        ADD_FAILURE() << KeyName(k) << " count=" << counts[k]
                      << " sum=" << sums[k] << " but the WAL prefix says "
                      << want.first << "/" << want.second;
      }
    }
  }
  EXPECT_EQ(mismatches, 0);

  // By LSN: acknowledged ops up to the last valid record are present (their
  // ids come back duplicate), later ones are gone (applied anew).
  std::vector<OpRecord> acked;
  for (const OpRecord& op : history_->EpochOps(0)) {
    if (op.outcome == Outcome::kOk) acked.push_back(op);
  }
  const std::vector<int> dup = Resend(server.port(), acked);
  int64_t kept = 0, dropped = 0, wrong = 0;
  for (size_t i = 0; i < acked.size(); ++i) {
    const bool in_prefix = acked[i].lsn <= last_lsn;
    EXPECT_EQ(in_prefix, ids.count(acked[i].id) == 1) << acked[i].id;
    if (dup[i] < 0 || (dup[i] == 1) != in_prefix) {
      if (++wrong <= 5) {
        ADD_FAILURE() << acked[i].id << " lsn=" << acked[i].lsn
                      << " last valid lsn=" << last_lsn << " resend=" << dup[i];
      }
    }
    (in_prefix ? kept : dropped) += 1;
  }
  EXPECT_EQ(wrong, 0);
  EXPECT_GT(kept, 0);
  EXPECT_GT(dropped, 0) << "the flip did not cut off any acknowledged op";
  std::printf(
      "[ figures ] flipped_offset=%llu valid_records=%lld "
      "last_valid_lsn=%llu acked_kept=%lld acked_discarded=%lld\n",
      static_cast<unsigned long long>(at), static_cast<long long>(records),
      static_cast<unsigned long long>(last_lsn), static_cast<long long>(kept),
      static_cast<long long>(dropped));
  server.Kill9();
}

TEST_F(WalRepairTest, CheckAgreesWithTallydAfterSnapshotsTruncatedTheWal) {
  // Snapshots every second and 1 MiB segments: the oldest segments are
  // deleted behind the snapshots, which is not damage.
  start_.flags = {"--durability=fsync", "--snapshot_interval_s=1",
                  "--wal_segment_mb=1"};
  LoadThenKill(3500);
  if (HasFatalFailure()) return;
  std::string out;
  const int check = Wal({"check", start_.data_dir}, &out);
  EXPECT_TRUE(check == 0 || check == 1)
      << "tally-wal check calls a WAL tallyd accepts corrupt:\n"
      << out;
  if (check == 1) {
    EXPECT_EQ(Wal({"repair", "--yes", start_.data_dir}, &out), 0) << out;
  }
  TallydProcess server;
  ASSERT_TRUE(server.Start(start_)) << server.exit_status().ToString();
  const CheckReport r =
      Reconcile(history_.get(), model_.get(), server.port(), 0);
  EXPECT_TRUE(r.clean()) << r.Summary();
  server.Kill9();
}

}  // namespace
}  // namespace tally::crash
