#include "storage/file_system.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace tally {
namespace {

std::span<const uint8_t> Bytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

class FileSystemTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir_template[] = "/tmp/file_system_test.XXXXXX";
    ASSERT_NE(mkdtemp(dir_template), nullptr);
    dir_ = dir_template;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string Path(const std::string& name) const {
    return JoinPath(dir_, name);
  }

  // Writes `content` at offset 0 of a new file and closes it.
  void WriteFile(const std::string& path, const std::string& content) {
    auto file = fs_->OpenWritable(path);
    ASSERT_TRUE(file.ok()) << file.status().ToString();
    ASSERT_TRUE((*file)->WriteAt(0, Bytes(content)).ok());
    ASSERT_TRUE((*file)->Close().ok());
  }

  std::string Read(const std::string& path) {
    auto r = fs_->ReadFile(path, 1 << 20);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : "";
  }

  FileSystem* fs_ = PosixFileSystem();
  std::string dir_;
};

TEST_F(FileSystemTest, WritesAtOffsetsAndReadsTheWholeFileBack) {
  auto file = fs_->OpenWritable(Path("f"));
  ASSERT_TRUE(file.ok());
  ASSERT_TRUE((*file)->WriteAt(0, Bytes("hello")).ok());
  ASSERT_TRUE((*file)->WriteAt(8, Bytes("world")).ok());  // leaves a hole
  ASSERT_TRUE((*file)->WriteAt(1, Bytes("E")).ok());
  ASSERT_TRUE((*file)->Sync().ok());
  ASSERT_TRUE((*file)->Close().ok());
  EXPECT_EQ(Read(Path("f")), std::string("hEllo\0\0\0world", 13));
  EXPECT_EQ(*fs_->FileSize(Path("f")), 13u);
}

TEST_F(FileSystemTest, CreatesFilesWithMode0600AndCloseOnExec) {
  auto file = fs_->OpenWritable(Path("f"));
  ASSERT_TRUE(file.ok());
  struct stat st;
  ASSERT_EQ(::stat(Path("f").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  // Find our descriptor through /proc and check its flags: a child process
  // (e.g. a fork+exec'd helper) must never inherit WAL descriptors.
  bool found = false;
  for (const auto& entry :
       std::filesystem::directory_iterator("/proc/self/fd")) {
    std::error_code ec;
    auto target = std::filesystem::read_symlink(entry.path(), ec);
    if (ec || target != Path("f")) continue;
    std::ifstream info("/proc/self/fdinfo/" + entry.path().filename().string());
    std::string line;
    while (std::getline(info, line)) {
      if (line.rfind("flags:", 0) == 0) {
        unsigned long flags = std::stoul(line.substr(6), nullptr, 8);
        EXPECT_NE(flags & O_CLOEXEC, 0u);
        found = true;
      }
    }
  }
  EXPECT_TRUE(found);
  ASSERT_TRUE((*file)->Close().ok());
}

TEST_F(FileSystemTest, OpenWritableNeverTruncatesAnExistingFile) {
  WriteFile(Path("f"), "keep me");
  auto file = fs_->OpenWritable(Path("f"));
  ASSERT_TRUE(file.ok());
  ASSERT_TRUE((*file)->Close().ok());
  EXPECT_EQ(Read(Path("f")), "keep me");
}

TEST_F(FileSystemTest, ReadFileRefusesFilesLargerThanTheLimit) {
  WriteFile(Path("f"), std::string(100, 'x'));
  EXPECT_TRUE(fs_->ReadFile(Path("f"), 100).ok());
  auto r = fs_->ReadFile(Path("f"), 99);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kIoError);
  EXPECT_NE(r.status().message().find(Path("f")), std::string_view::npos);
}

TEST_F(FileSystemTest, ReadAtReadsARangeAndStopsAtEndOfFile) {
  WriteFile(Path("f"), "0123456789");
  std::vector<uint8_t> buf(4);
  auto n = fs_->ReadAt(Path("f"), 3, buf);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 4u);
  EXPECT_EQ(std::string(buf.begin(), buf.end()), "3456");
  n = fs_->ReadAt(Path("f"), 8, buf);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 2u);
  n = fs_->ReadAt(Path("f"), 50, buf);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 0u);
}

TEST_F(FileSystemTest, AllocateGrowsWithZerosAndNeverShrinks) {
  auto file = fs_->OpenWritable(Path("f"));
  ASSERT_TRUE(file.ok());
  ASSERT_TRUE((*file)->WriteAt(0, Bytes("abc")).ok());
  ASSERT_TRUE((*file)->Allocate(4096).ok());
  EXPECT_EQ(*fs_->FileSize(Path("f")), 4096u);
  ASSERT_TRUE((*file)->Allocate(10).ok());
  ASSERT_TRUE((*file)->Allocate(0).ok());
  EXPECT_EQ(*fs_->FileSize(Path("f")), 4096u);
  ASSERT_TRUE((*file)->Close().ok());
  std::string content = Read(Path("f"));
  EXPECT_EQ(content.substr(0, 3), "abc");
  EXPECT_EQ(content.substr(3), std::string(4093, '\0'));
}

TEST_F(FileSystemTest, TruncateSetsTheSizeThroughTheFileOrThePath) {
  auto file = fs_->OpenWritable(Path("f"));
  ASSERT_TRUE(file.ok());
  ASSERT_TRUE((*file)->WriteAt(0, Bytes("0123456789")).ok());
  ASSERT_TRUE((*file)->Truncate(4).ok());
  EXPECT_EQ(Read(Path("f")), "0123");
  ASSERT_TRUE((*file)->Close().ok());
  ASSERT_TRUE(fs_->TruncateFile(Path("f"), 2).ok());
  EXPECT_EQ(Read(Path("f")), "01");
  ASSERT_TRUE(fs_->TruncateFile(Path("f"), 3).ok());
  EXPECT_EQ(Read(Path("f")), std::string("01\0", 3));
}

TEST_F(FileSystemTest, ListDirReturnsSortedNamesWithoutDotEntries) {
  for (const char* name : {"b", "a", "c.tmp", "0"}) WriteFile(Path(name), "");
  ASSERT_TRUE(fs_->CreateDir(Path("sub")).ok());
  auto names = fs_->ListDir(dir_);
  ASSERT_TRUE(names.ok());
  EXPECT_EQ(*names, (std::vector<std::string>{"0", "a", "b", "c.tmp", "sub"}));
}

TEST_F(FileSystemTest, CreateDirUsesMode0700AndAcceptsAnExistingDir) {
  ASSERT_TRUE(fs_->CreateDir(Path("d")).ok());
  struct stat st;
  ASSERT_EQ(::stat(Path("d").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  EXPECT_TRUE(fs_->CreateDir(Path("d")).ok());
  EXPECT_TRUE(fs_->SyncDir(Path("d")).ok());
  WriteFile(Path("file"), "x");
  Status s = fs_->CreateDir(Path("file"));
  EXPECT_EQ(s.code(), Code::kIoError);
  EXPECT_EQ(fs_->CreateDir(Path("missing/d")).code(), Code::kIoError);
}

TEST_F(FileSystemTest, RenameReplacesTheTargetAndRemoveDeletes) {
  WriteFile(Path("new.tmp"), "new");
  WriteFile(Path("cur"), "old");
  ASSERT_TRUE(fs_->Rename(Path("new.tmp"), Path("cur")).ok());
  ASSERT_TRUE(fs_->SyncDir(dir_).ok());
  EXPECT_FALSE(fs_->Exists(Path("new.tmp")));
  EXPECT_EQ(Read(Path("cur")), "new");
  ASSERT_TRUE(fs_->Remove(Path("cur")).ok());
  EXPECT_FALSE(fs_->Exists(Path("cur")));
}

TEST_F(FileSystemTest, ErrorsAreIoErrorsNamingThePathAndTheCause) {
  const std::string missing = Path("missing");
  for (Status s :
       {fs_->ReadFile(missing, 10).status(), fs_->FileSize(missing).status(),
        fs_->Remove(missing), fs_->Rename(missing, Path("x")),
        fs_->TruncateFile(missing, 0), fs_->SyncDir(missing),
        fs_->ListDir(missing).status(),
        fs_->OpenWritable(Path("no/such/dir")).status()}) {
    EXPECT_EQ(s.code(), Code::kIoError) << s.ToString();
    EXPECT_NE(s.message().find(dir_), std::string_view::npos) << s.ToString();
    EXPECT_NE(s.message().find("No such file or directory"),
              std::string_view::npos)
        << s.ToString();
  }
}

TEST_F(FileSystemTest, DiskFullIsNotPersisted) {
  // /dev/full fails every write with ENOSPC: the one errno that must map to
  // NOT_PERSISTED rather than IO_ERROR.
  if (::access("/dev/full", W_OK) != 0) GTEST_SKIP() << "no writable /dev/full";
  auto file = fs_->OpenWritable("/dev/full");
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  Status s = (*file)->WriteAt(0, Bytes("x"));
  EXPECT_EQ(s.code(), Code::kNotPersisted) << s.ToString();
  EXPECT_NE(s.message().find("/dev/full"), std::string_view::npos);
  EXPECT_NE(s.message().find("No space left"), std::string_view::npos);
  ASSERT_TRUE((*file)->Close().ok());
}

TEST_F(FileSystemTest, AClosedFileRejectsWritesAndCloseIsIdempotent) {
  auto file = fs_->OpenWritable(Path("f"));
  ASSERT_TRUE(file.ok());
  ASSERT_TRUE((*file)->Close().ok());
  EXPECT_TRUE((*file)->Close().ok());
  EXPECT_EQ((*file)->WriteAt(0, Bytes("x")).code(), Code::kIoError);
  EXPECT_EQ((*file)->Sync().code(), Code::kIoError);
}

TEST(JoinPathTest, JoinsWithExactlyOneSlash) {
  EXPECT_EQ(JoinPath("/a/b", "c"), "/a/b/c");
  EXPECT_EQ(JoinPath("/a/b/", "c"), "/a/b/c");
  EXPECT_EQ(JoinPath("/a/b//", "/c"), "/a/b/c");
  EXPECT_EQ(JoinPath("/", "c"), "/c");
  EXPECT_EQ(JoinPath("", "c"), "c");
  EXPECT_EQ(JoinPath("rel", "c.log"), "rel/c.log");
}

}  // namespace
}  // namespace tally
