// The backup and restore procedure of docs/operations.md ("Backup and
// restore"), run as written: SAVE on a live server, copy the snapshot file it
// names, restore it into a new data directory, and check that the restored
// server answers exactly what the original did at SAVE, then keeps logging
// and recovering from there.

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>

#include "server/in_process_server.h"
#include "storage/file_system.h"
#include "storage/restore.h"

namespace tally {
namespace {

namespace fs = std::filesystem;

class BackupRestoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::path(::testing::TempDir()) /
            ("backup_restore_" + std::to_string(::getpid()));
    fs::remove_all(root_);
    fs::create_directories(root_);
  }
  void TearDown() override { fs::remove_all(root_); }

  static proto::Response Run(InProcessServer& server, proto::Request r) {
    return server.service().HandleSync(r, BootClock::now());
  }
  static void Add(InProcessServer& server, const std::string& key, int n) {
    proto::AddRequest add;
    for (int i = 0; i < n; ++i) add.items.push_back({.key = key, .amount = 5});
    proto::Request r;
    r.body = std::move(add);
    ASSERT_EQ(Run(server, r).code, Code::kOk);
  }
  static proto::Aggregates Last24h(InProcessServer& server,
                                   const std::string& key) {
    proto::Request r;
    r.body = proto::QueryRequest{
        .items = {proto::QueryItem::Last(key, 24 * 3600 * 1000)}};
    return std::get<proto::QueryResult>(Run(server, r).body).items.at(0).answer;
  }
  static InProcessServerOptions At(const fs::path& dir) {
    InProcessServerOptions o;
    o.server.port = 0;  // a free port
    o.data_dir = dir.string();
    return o;
  }

  fs::path root_;
};

TEST_F(BackupRestoreTest, ASavedSnapshotRestoresIntoAnEmptyDataDirectory) {
  const fs::path live = root_ / "live";
  const fs::path backup = root_ / "backup";
  const fs::path restored = root_ / "restored";
  fs::create_directories(backup);
  std::string file;
  {
    InProcessServer server(At(live));
    ASSERT_TRUE(server.status().ok()) << server.status().ToString();
    Add(server, "card:1", 5);
    Add(server, "user:7", 2);
    proto::Request save;
    save.body = proto::AdminRequest{.args = {"SAVE"}};
    proto::Response saved = Run(server, save);
    ASSERT_EQ(saved.code, Code::kOk) << saved.message;
    const proto::AdminReply& map =
        std::get<proto::AdminResult>(saved.body).reply;
    ASSERT_EQ(map.elements.at(2).text, "file");
    file = map.elements.at(3).text;
    EXPECT_EQ(file.rfind("snap/", 0), 0u) << file;
    EXPECT_GT(map.elements.at(1).integer, 0);  // lsn
    // The backup: one file copied while the server keeps running.
    fs::copy_file(live / file, backup / fs::path(file).filename());
    Add(server, "card:1", 3);  // after the backup: not in it
    EXPECT_EQ(Last24h(server, "card:1").count, 8);
  }
  // A snapshot alone is refused: it looks like a data directory whose WAL
  // was deleted.
  const fs::path bare = root_ / "bare";
  fs::create_directories(bare / "snap");
  fs::copy_file(backup / fs::path(file).filename(), bare / file);
  EXPECT_EQ(InProcessServer(At(bare)).status().code(), Code::kCorruption);
  // Restore (what `tally-wal restore` runs): the snapshot and an empty WAL
  // that continues after it, in a new directory.
  Result<RestoreReport> report = RestoreSnapshot(
      PosixFileSystem(), (backup / fs::path(file).filename()).string(),
      restored.string());
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->snapshot, (restored / file).string());
  // Never over an existing directory.
  EXPECT_EQ(RestoreSnapshot(PosixFileSystem(),
                            (backup / fs::path(file).filename()).string(),
                            live.string())
                .status()
                .code(),
            Code::kInvalidArgument);
  // A damaged backup is refused before anything is written.
  const fs::path damaged = root_ / "damaged.snap";
  fs::copy_file(backup / fs::path(file).filename(), damaged);
  {
    std::fstream f(damaged, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(70);
    f.put('\x5a');
  }
  EXPECT_EQ(RestoreSnapshot(PosixFileSystem(), damaged.string(),
                            (root_ / "never").string())
                .status()
                .code(),
            Code::kCorruption);
  EXPECT_FALSE(fs::exists(root_ / "never"));
  {
    InProcessServer server(At(restored));
    ASSERT_TRUE(server.status().ok()) << server.status().ToString();
    EXPECT_EQ(Last24h(server, "card:1").count, 5);
    EXPECT_EQ(Last24h(server, "card:1").sum, 25);
    EXPECT_EQ(Last24h(server, "user:7").count, 2);
    Add(server, "card:1", 1);  // the WAL continues after the snapshot
  }
  InProcessServer again(At(restored));
  ASSERT_TRUE(again.status().ok()) << again.status().ToString();
  EXPECT_EQ(Last24h(again, "card:1").count, 6);
}

TEST_F(BackupRestoreTest, SaveWithoutADataDirectoryIsRefused) {
  InProcessServerOptions options;
  options.server.port = 0;  // a free port
  InProcessServer server(options);
  ASSERT_TRUE(server.status().ok());
  proto::Request save;
  save.body = proto::AdminRequest{.args = {"save"}};
  proto::Response r = Run(server, save);
  EXPECT_EQ(r.code, Code::kUnavailable);
}

}  // namespace
}  // namespace tally
