// Policy reloads against a real tallyd (docs/operations.md, "Policy file"):
// SIGHUP applies a changed --policy_file to stored keys at once, keeps the
// policies in force on a bad file or a tier change under stored keys, and a
// crash after a reload replays every event with the policies the live
// server judged it with, whatever the restart's file says.

#include <signal.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "tests/security_harness.h"

namespace tally::security_test {
namespace {

constexpr int64_t kMinuteMs = 60'000;

int64_t NowMs() {
  return std::chrono::duration_cast<milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

class SighupPolicyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/tally-sighup-policy-test-XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    dir_ = dir;
    policy_file_ = dir_ + "/policies";
  }
  void TearDown() override {
    tallyd_.reset();
    if (!HasFailure()) std::filesystem::remove_all(dir_);
  }

  void WritePolicies(const std::string& text) {
    {
      std::ofstream out(policy_file_ + ".new");
      out << text;
    }
    std::filesystem::rename(policy_file_ + ".new", policy_file_);
  }
  // tallyd with the policy file, its log in log().
  TallydOptions Options() const {
    return {.binary = TALLYD_BIN,
            .flags = {"--policy_file=" + policy_file_},
            .data_dir = dir_ + "/data",
            .log_file = log()};
  }
  TallydProcess& Start() {
    tallyd_ = std::make_unique<TallydProcess>();
    EXPECT_TRUE(tallyd_->Start(Options())) << ReadAll(log());
    return *tallyd_;
  }
  std::string log() const { return dir_ + "/tallyd.log"; }
  // Sends SIGHUP and waits (bounded) for `line` to appear in the log.
  bool Reload(const std::string& line) {
    tallyd_->Signal(SIGHUP);
    for (int i = 0; i < 200; ++i) {
      if (ReadAll(log()).find(line) != std::string::npos) return true;
      std::this_thread::sleep_for(milliseconds(50));
    }
    return false;
  }
  RunResult Cli(const std::string& command) {
    return Shell(std::string(TALLY_BIN) + " -p " +
                 std::to_string(tallyd_->port()) + " --json " + command);
  }
  // ADD of one event `minutes_late` behind now; whether it was accepted.
  bool AddLate(const std::string& key, int64_t minutes_late) {
    const RunResult r = Cli("ADD " + key + " TS " +
                            std::to_string(NowMs() - minutes_late * kMinuteMs));
    return r.exit_code == 0 &&
           r.out.find("TIME_OUT_OF_RANGE") == std::string::npos;
  }
  int64_t Count(const std::string& key) {
    const RunResult r = Cli("QUERY " + key + " WINDOW 3h");
    const size_t at = r.out.find("\"count\":");
    return at == std::string::npos ? -1 : std::stoll(r.out.substr(at + 8));
  }

  std::string dir_;
  std::string policy_file_;
  std::unique_ptr<TallydProcess> tallyd_;
};

TEST_F(SighupPolicyTest, ReloadAppliesAtOnceAndReplayFollowsIt) {
  WritePolicies("default lateness=1h\n");
  Start();
  ASSERT_TRUE(AddLate("user:1", 0));
  EXPECT_FALSE(AddLate("user:1", 90));  // outside the hour

  WritePolicies("default lateness=2h\n");
  ASSERT_TRUE(Reload("applied: policy 'default': lateness 1h -> 2h"))
      << ReadAll(log());
  EXPECT_TRUE(AddLate("user:1", 90));  // the stored key takes the new limit
  EXPECT_EQ(Count("user:1"), 2);
  RunResult inspect = Cli("INSPECT user:1");
  EXPECT_NE(inspect.out.find("7200000"), std::string::npos) << inspect.out;

  // A bad file keeps the policies in force.
  WritePolicies("default lateness=2h\nbroken prefix=\n");
  ASSERT_TRUE(Reload("has an error; the policies in force stay"));
  EXPECT_NE(ReadAll(log()).find("line 2"), std::string::npos);
  EXPECT_TRUE(AddLate("user:2", 90));

  // Tiers cannot change under stored keys: refused, named, nothing changes.
  WritePolicies("default lateness=2h\nu prefix=user: tiers=\"1m x 1d\"\n");
  ASSERT_TRUE(Reload("not applied; the policies in force stay"));
  EXPECT_NE(ReadAll(log()).find("rebucketed"), std::string::npos);
  EXPECT_TRUE(AddLate("user:1", 90));
  EXPECT_EQ(Count("user:1"), 3);

  // A crash, then a restart whose file has the first lateness again: the
  // events the reloaded policy accepted are replayed as accepted, and the
  // restart's policy judges what comes next.
  WritePolicies("default lateness=1h\n");
  tallyd_->Signal(SIGKILL);
  tallyd_->Stop();
  Start();
  EXPECT_EQ(Count("user:1"), 3);
  EXPECT_EQ(Count("user:2"), 1);
  EXPECT_FALSE(AddLate("user:1", 90));
  EXPECT_TRUE(AddLate("user:1", 30));
}

// The configured policies replace the recovered ones at start; a tier
// change under stored keys refuses the start and says why.
TEST_F(SighupPolicyTest, StartRefusesTierChangesUnderStoredKeys) {
  WritePolicies("default\n");
  Start();
  ASSERT_TRUE(AddLate("card:1", 0));
  EXPECT_EQ(tallyd_->Stop(), 0);

  WritePolicies("default\ncard prefix=card: tiers=\"1m x 1d\"\n");
  tallyd_ = std::make_unique<TallydProcess>();
  EXPECT_FALSE(tallyd_->Start(Options()));
  const std::string text = ReadAll(log());
  EXPECT_NE(text.find("cannot replace the recovered ones"), std::string::npos)
      << text;
  EXPECT_NE(text.find("key 'card:1'"), std::string::npos) << text;

  // The old file starts again, with the key intact.
  WritePolicies("default\n");
  Start();
  EXPECT_EQ(Count("card:1"), 1);
}

}  // namespace
}  // namespace tally::security_test
