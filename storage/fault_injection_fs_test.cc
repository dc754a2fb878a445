#include "storage/fault_injection_fs.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

namespace tally {
namespace {

using Mode = FaultInjectionFileSystem::Mode;

std::span<const uint8_t> Bytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

class FaultInjectionFsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir_template[] = "/tmp/fault_injection_fs_test.XXXXXX";
    ASSERT_NE(mkdtemp(dir_template), nullptr);
    dir_ = dir_template;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string Path(const std::string& name) const {
    return JoinPath(dir_, name);
  }

  std::unique_ptr<WritableFile> Open(const std::string& name) {
    auto file = fs_.OpenWritable(Path(name));
    EXPECT_TRUE(file.ok()) << file.status().ToString();
    return file.ok() ? std::move(file).value() : nullptr;
  }

  // Creates `name` with `content`, syncs it and its directory.
  void WriteDurably(const std::string& name, const std::string& content) {
    auto file = Open(name);
    ASSERT_NE(file, nullptr);
    ASSERT_TRUE(file->WriteAt(0, Bytes(content)).ok());
    ASSERT_TRUE(file->Sync().ok());
    ASSERT_TRUE(file->Close().ok());
    ASSERT_TRUE(fs_.SyncDir(dir_).ok());
  }

  std::string Read(const std::string& name) {
    auto r = fs_.ReadFile(Path(name), 1 << 24);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : "";
  }

  void PowerLoss(uint64_t seed, Mode mode) {
    Status s = fs_.SimulatePowerLoss(seed, mode);
    ASSERT_TRUE(s.ok()) << s.ToString();
  }

  std::string dir_;
  FaultInjectionFileSystem fs_{PosixFileSystem()};
};

TEST_F(FaultInjectionFsTest, SyncedDataSurvivesEveryMode) {
  const std::string synced(1000, 's');
  for (Mode mode :
       {Mode::kDropUnsynced, Mode::kZeroUnsynced, Mode::kGarbageTail}) {
    for (uint64_t seed = 0; seed < 20; ++seed) {
      WriteDurably("log", synced);
      auto file = Open("log");
      ASSERT_TRUE(file->WriteAt(1000, Bytes(std::string(500, 'u'))).ok());
      PowerLoss(seed, mode);
      std::string after = Read("log");
      ASSERT_GE(after.size(), synced.size());
      EXPECT_EQ(after.substr(0, 1000), synced)
          << "mode " << int(mode) << " seed " << seed;
      ASSERT_TRUE(fs_.Remove(Path("log")).ok());
      ASSERT_TRUE(fs_.SyncDir(dir_).ok());
    }
  }
}

TEST_F(FaultInjectionFsTest, DropModeRestoresExactlyTheSyncedContent) {
  WriteDurably("f", "0123456789");
  auto file = Open("f");
  ASSERT_TRUE(file->WriteAt(2, Bytes("ab")).ok());    // overwrite
  ASSERT_TRUE(file->WriteAt(8, Bytes("XYZW")).ok());  // overwrite + extend
  ASSERT_TRUE(file->Truncate(5).ok());                // cut synced bytes
  ASSERT_TRUE(file->WriteAt(20, Bytes("far")).ok());  // hole + extend
  PowerLoss(1, Mode::kDropUnsynced);
  EXPECT_EQ(Read("f"), "0123456789");
}

TEST_F(FaultInjectionFsTest, ZeroModeZeroesTheUnsyncedRangesAndKeepsTheSize) {
  WriteDurably("f", "0123456789");
  auto file = Open("f");
  ASSERT_TRUE(file->WriteAt(2, Bytes("ab")).ok());
  ASSERT_TRUE(file->WriteAt(10, Bytes("tail")).ok());
  PowerLoss(1, Mode::kZeroUnsynced);
  EXPECT_EQ(Read("f"), std::string("01\0\0"
                                   "456789\0\0\0\0",
                                   14));
}

TEST_F(FaultInjectionFsTest, GarbageModeLeavesAtMost4KiBOrAPrefixOfTheWrites) {
  std::string written;
  for (int i = 0; i < 10000; ++i) written.push_back(char('a' + i % 26));
  int random_tails = 0;
  int prefix_tails = 0;
  for (uint64_t seed = 0; seed < 64; ++seed) {
    WriteDurably("log", "HEADER");
    auto file = Open("log");
    ASSERT_TRUE(file->WriteAt(6, Bytes(written)).ok());
    PowerLoss(seed, Mode::kGarbageTail);
    std::string after = Read("log");
    ASSERT_EQ(after.substr(0, 6), "HEADER");
    std::string tail = after.substr(6);
    ASSERT_LE(tail.size(), written.size());
    if (tail == written.substr(0, tail.size())) {
      ++prefix_tails;
    } else {
      EXPECT_LE(tail.size(), 4096u) << "seed " << seed;
      ++random_tails;
    }
    ASSERT_TRUE(fs_.Remove(Path("log")).ok());
    ASSERT_TRUE(fs_.SyncDir(dir_).ok());
  }
  EXPECT_GT(random_tails, 0);
  EXPECT_GT(prefix_tails, 0);
}

TEST_F(FaultInjectionFsTest, GarbageStaysInsideThePreallocatedRegionWritten) {
  // A preallocated, synced segment: the unsynced record lies inside the
  // synced size, and the synced zeros after it must stay zeros.
  auto file = Open("seg");
  ASSERT_TRUE(file->Allocate(65536).ok());
  ASSERT_TRUE(file->WriteAt(0, Bytes("record-1")).ok());
  ASSERT_TRUE(file->Sync().ok());
  ASSERT_TRUE(fs_.SyncDir(dir_).ok());
  ASSERT_TRUE(file->WriteAt(8, Bytes(std::string(100, 'r'))).ok());
  PowerLoss(3, Mode::kGarbageTail);
  std::string after = Read("seg");
  ASSERT_EQ(after.size(), 65536u);
  EXPECT_EQ(after.substr(0, 8), "record-1");
  EXPECT_EQ(after.substr(108), std::string(65536 - 108, '\0'));
}

TEST_F(FaultInjectionFsTest, UnsyncedWritesInsideAPreallocationBecomeZeros) {
  auto file = Open("seg");
  ASSERT_TRUE(file->Allocate(4096).ok());
  ASSERT_TRUE(file->WriteAt(0, Bytes("record-1")).ok());
  ASSERT_TRUE(file->Sync().ok());
  ASSERT_TRUE(fs_.SyncDir(dir_).ok());
  ASSERT_TRUE(file->WriteAt(8, Bytes("record-2")).ok());
  PowerLoss(1, Mode::kDropUnsynced);
  std::string after = Read("seg");
  EXPECT_EQ(after, "record-1" + std::string(4088, '\0'));
}

TEST_F(FaultInjectionFsTest, PowerLossIsDeterministicForASeed) {
  std::string results[2];
  for (std::string& result : results) {
    WriteDurably("log", "base");
    auto file = Open("log");
    ASSERT_TRUE(file->WriteAt(4, Bytes(std::string(9000, 'x'))).ok());
    PowerLoss(12345, Mode::kGarbageTail);
    result = Read("log");
    ASSERT_TRUE(fs_.Remove(Path("log")).ok());
    ASSERT_TRUE(fs_.SyncDir(dir_).ok());
  }
  EXPECT_EQ(results[0], results[1]);
}

TEST_F(FaultInjectionFsTest, FilesCreatedSinceTheLastDirSyncVanish) {
  auto file = Open("new");
  ASSERT_TRUE(file->WriteAt(0, Bytes("data")).ok());
  ASSERT_TRUE(file->Sync().ok());  // the data, but not the entry
  auto kept = Open("kept");
  ASSERT_TRUE(kept->Sync().ok());
  ASSERT_TRUE(fs_.SyncDir(dir_).ok());  // persists both entries...
  auto lost = Open("lost");             // ...but not this one
  ASSERT_TRUE(lost->Sync().ok());
  PowerLoss(1, Mode::kDropUnsynced);
  EXPECT_EQ(Read("new"), "data");
  EXPECT_TRUE(fs_.Exists(Path("kept")));
  EXPECT_FALSE(fs_.Exists(Path("lost")));
  EXPECT_EQ(*fs_.ListDir(dir_), (std::vector<std::string>{"kept", "new"}));
}

TEST_F(FaultInjectionFsTest, ARenameWithoutDirSyncReverts) {
  WriteDurably("snap", "old");
  WriteDurably("other", "moved");
  auto tmp = Open("snap.tmp");
  ASSERT_TRUE(tmp->WriteAt(0, Bytes("new")).ok());
  ASSERT_TRUE(tmp->Sync().ok());
  ASSERT_TRUE(tmp->Close().ok());
  ASSERT_TRUE(fs_.Rename(Path("snap.tmp"), Path("snap")).ok());
  ASSERT_TRUE(fs_.Rename(Path("other"), Path("renamed")).ok());
  EXPECT_EQ(Read("snap"), "new");
  PowerLoss(1, Mode::kDropUnsynced);
  EXPECT_EQ(Read("snap"), "old");
  EXPECT_FALSE(fs_.Exists(Path("snap.tmp")));  // created, never dir-synced
  EXPECT_EQ(Read("other"), "moved");
  EXPECT_FALSE(fs_.Exists(Path("renamed")));
}

TEST_F(FaultInjectionFsTest, ARenameFollowedByDirSyncPersists) {
  WriteDurably("snap", "old");
  auto tmp = Open("snap.tmp");
  ASSERT_TRUE(tmp->WriteAt(0, Bytes("new")).ok());
  ASSERT_TRUE(tmp->Sync().ok());
  ASSERT_TRUE(tmp->Close().ok());
  ASSERT_TRUE(fs_.Rename(Path("snap.tmp"), Path("snap")).ok());
  ASSERT_TRUE(fs_.SyncDir(dir_).ok());
  PowerLoss(1, Mode::kDropUnsynced);
  EXPECT_EQ(Read("snap"), "new");
  EXPECT_FALSE(fs_.Exists(Path("snap.tmp")));
}

TEST_F(FaultInjectionFsTest, ASwapThroughRenamesRevertsBothFiles) {
  WriteDurably("a", "content-a");
  WriteDurably("b", "content-b");
  ASSERT_TRUE(fs_.Rename(Path("a"), Path("tmp")).ok());
  ASSERT_TRUE(fs_.Rename(Path("b"), Path("a")).ok());
  ASSERT_TRUE(fs_.Rename(Path("tmp"), Path("b")).ok());
  EXPECT_EQ(Read("a"), "content-b");
  PowerLoss(1, Mode::kDropUnsynced);
  EXPECT_EQ(Read("a"), "content-a");
  EXPECT_EQ(Read("b"), "content-b");
  EXPECT_FALSE(fs_.Exists(Path("tmp")));
}

TEST_F(FaultInjectionFsTest, RenamedFileKeepsOnlyItsSyncedData) {
  WriteDurably("seg.tmp", "synced");
  auto file = Open("seg.tmp");
  ASSERT_TRUE(fs_.Rename(Path("seg.tmp"), Path("seg")).ok());
  ASSERT_TRUE(fs_.SyncDir(dir_).ok());
  // The handle follows the file to its new name.
  ASSERT_TRUE(file->WriteAt(6, Bytes("+unsynced")).ok());
  PowerLoss(1, Mode::kDropUnsynced);
  EXPECT_EQ(Read("seg"), "synced");
}

TEST_F(FaultInjectionFsTest, ARemoveWithoutDirSyncIsUndone) {
  WriteDurably("seg-1", "segment one");
  WriteDurably("seg-2", "segment two");
  auto file = Open("seg-1");
  ASSERT_TRUE(file->WriteAt(0, Bytes("SEGMENT")).ok());  // never synced
  ASSERT_TRUE(file->Close().ok());
  ASSERT_TRUE(fs_.Remove(Path("seg-1")).ok());
  ASSERT_TRUE(fs_.Remove(Path("seg-2")).ok());
  ASSERT_TRUE(fs_.SyncDir(dir_ + "/").ok());  // trailing slash: same dir
  WriteDurably("seg-3", "segment three");
  ASSERT_TRUE(fs_.Remove(Path("seg-3")).ok());
  PowerLoss(1, Mode::kDropUnsynced);
  EXPECT_FALSE(fs_.Exists(Path("seg-1")));
  EXPECT_FALSE(fs_.Exists(Path("seg-2")));
  EXPECT_EQ(Read("seg-3"), "segment three");
}

TEST_F(FaultInjectionFsTest, RemovedUnsyncedFileComesBackWithItsSyncedData) {
  WriteDurably("f", "synced");
  auto file = Open("f");
  ASSERT_TRUE(file->WriteAt(0, Bytes("UNSYNCED!")).ok());
  ASSERT_TRUE(file->Close().ok());
  ASSERT_TRUE(fs_.Remove(Path("f")).ok());
  PowerLoss(1, Mode::kZeroUnsynced);
  EXPECT_EQ(Read("f"), "synced");
}

TEST_F(FaultInjectionFsTest, DiskFullAfterNBytesWritesAPrefixThenRecovers) {
  auto file = Open("f");
  fs_.FailWritesAfter(10, Code::kNotPersisted);
  ASSERT_TRUE(file->WriteAt(0, Bytes("1234")).ok());
  Status s = file->WriteAt(4, Bytes("abcdefghij"));
  EXPECT_EQ(s.code(), Code::kNotPersisted) << s.ToString();
  EXPECT_EQ(Read("f"), "1234abcdef");  // the bytes up to the limit
  EXPECT_EQ(file->WriteAt(10, Bytes("x")).code(), Code::kNotPersisted);
  EXPECT_EQ(file->Allocate(4096).code(), Code::kNotPersisted);
  EXPECT_TRUE(file->WriteAt(10, {}).ok());  // nothing to write, no failure
  EXPECT_EQ(fs_.counters().bytes_written, 10u);

  fs_.ClearWriteFailure();
  ASSERT_TRUE(file->WriteAt(10, Bytes("ghij")).ok());
  ASSERT_TRUE(file->Allocate(4096).ok());
  EXPECT_EQ(Read("f").substr(0, 14), "1234abcdefghij");
}

TEST_F(FaultInjectionFsTest, InjectedEioFailsWithIoError) {
  auto file = Open("f");
  fs_.FailWritesAfter(0, Code::kIoError);
  Status s = file->WriteAt(0, Bytes("x"));
  EXPECT_EQ(s.code(), Code::kIoError);
  EXPECT_NE(s.message().find("EIO"), std::string_view::npos);
  EXPECT_EQ(*fs_.FileSize(Path("f")), 0u);
}

TEST_F(FaultInjectionFsTest, AFailedSyncLeavesTheDataUnsynced) {
  WriteDurably("f", "synced|");
  auto file = Open("f");
  ASSERT_TRUE(file->WriteAt(7, Bytes("lost")).ok());
  fs_.FailNextSyncs(1);
  EXPECT_EQ(file->Sync().code(), Code::kIoError);
  EXPECT_EQ(fs_.counters().failed_syncs, 1u);
  PowerLoss(1, Mode::kDropUnsynced);
  EXPECT_EQ(Read("f"), "synced|");

  // Only n syncs fail; the next one works.
  file = Open("f");
  fs_.FailNextSyncs(1);
  ASSERT_TRUE(file->WriteAt(7, Bytes("kept")).ok());
  EXPECT_FALSE(file->Sync().ok());
  EXPECT_TRUE(file->Sync().ok());
  PowerLoss(1, Mode::kDropUnsynced);
  EXPECT_EQ(Read("f"), "synced|kept");
}

TEST_F(FaultInjectionFsTest, FilesOpenedBeforeAPowerLossAreStale) {
  auto file = Open("f");
  ASSERT_TRUE(file->Sync().ok());
  ASSERT_TRUE(fs_.SyncDir(dir_).ok());
  PowerLoss(1, Mode::kDropUnsynced);
  EXPECT_EQ(file->WriteAt(0, Bytes("x")).code(), Code::kIoError);
  EXPECT_EQ(file->Sync().code(), Code::kIoError);
  EXPECT_TRUE(file->Close().ok());
  EXPECT_EQ(Read("f"), "");
}

TEST_F(FaultInjectionFsTest, CountsSyncsAndBytesAndDelaysSyncs) {
  auto file = Open("f");
  ASSERT_TRUE(file->WriteAt(0, Bytes("12345")).ok());
  fs_.SetSyncDelay(std::chrono::milliseconds(30));
  auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(file->Sync().ok());
  EXPECT_GE(std::chrono::steady_clock::now() - start,
            std::chrono::milliseconds(30));
  fs_.SetSyncDelay(std::chrono::microseconds(0));
  ASSERT_TRUE(fs_.SyncDir(dir_).ok());
  PowerLoss(1, Mode::kDropUnsynced);
  FaultInjectionFileSystem::Counters c = fs_.counters();
  EXPECT_EQ(c.syncs, 1u);
  EXPECT_EQ(c.dir_syncs, 1u);
  EXPECT_EQ(c.bytes_written, 5u);
  EXPECT_EQ(c.power_losses, 1u);
}

TEST_F(FaultInjectionFsTest, ConcurrentWritersToDifferentFilesAreTracked) {
  constexpr int kThreads = 4;
  constexpr int kRecords = 200;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([this, t] {
      auto file = Open("f" + std::to_string(t));
      for (int i = 0; i < kRecords; ++i) {
        ASSERT_TRUE(file->WriteAt(i * 8, Bytes("record!\n")).ok());
        if (i == kRecords / 2 - 1) {
          ASSERT_TRUE(file->Sync().ok());
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  ASSERT_TRUE(fs_.SyncDir(dir_).ok());
  PowerLoss(9, Mode::kDropUnsynced);
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_EQ(Read("f" + std::to_string(t)).size(), kRecords / 2 * 8u);
  }
}

}  // namespace
}  // namespace tally
