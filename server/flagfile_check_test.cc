// CheckFlagfile, with gflags' own flag registry as the oracle for which
// names exist (the predicate tallyd_main passes).

#include "server/flagfile_check.h"

#include <gflags/gflags.h>
#include <gtest/gtest.h>

#include <string>

DEFINE_int32(check_test_port, 1, "a flag for this test");
DEFINE_bool(check_test_verbose, false, "a bool flag for this test");

namespace tally {
namespace {

bool IsGflag(std::string_view name) {
  gflags::CommandLineFlagInfo info;
  return gflags::GetCommandLineFlagInfo(std::string(name).c_str(), &info);
}

TEST(FlagfileCheckTest, AcceptsKnownFlagsCommentsAndBlankLines) {
  const std::string text =
      "# comment\n"
      "\n"
      "--check_test_port=7\n"
      "-check_test_port=8\n"
      "  --check_test_verbose\n"
      "--nocheck_test_verbose\n"
      "--check_test_verbose=false\r\n"
      "--flagfile=/dev/null\n"  // gflags' own flags are flags too
      "tallyd\n";               // a program-name glob line
  EXPECT_TRUE(CheckFlagfile("f", text, IsGflag).ok());
}

TEST(FlagfileCheckTest, NamesTheFileLineAndUnknownFlag) {
  const std::string text = "--check_test_port=7\n# x\n--check_test_prot=8\n";
  const Status s = CheckFlagfile("/etc/tally/tallyd.flags", text, IsGflag);
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_EQ(s.message(),
            "/etc/tally/tallyd.flags:3: unknown flag --check_test_prot");
}

TEST(FlagfileCheckTest, NegationNeedsAKnownNameAndNoValue) {
  EXPECT_FALSE(CheckFlagfile("f", "--nosuch_flag\n", IsGflag).ok());
  EXPECT_FALSE(
      CheckFlagfile("f", "--nocheck_test_verbose=true\n", IsGflag).ok());
}

TEST(FlagfileCheckTest, TheLastLineNeedsNoNewline) {
  EXPECT_FALSE(CheckFlagfile("f", "--check_test_port=1\n--typo", IsGflag).ok());
  EXPECT_TRUE(CheckFlagfile("f", "", IsGflag).ok());
}

}  // namespace
}  // namespace tally
