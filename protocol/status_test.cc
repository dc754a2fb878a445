#include "protocol/status.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

#include "protocol/result.h"

namespace tally {
namespace {

TEST(StatusTest, DefaultIsOkAndCarriesNoMessage) {
  Status s;
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.code(), Code::kOk);
  EXPECT_EQ(s.message(), "");
  EXPECT_EQ(s.ToString(), "OK");
}

TEST(StatusTest, ErrorKeepsCodeAndMessage) {
  Status s = Status::TimeOutOfRange("event 3 s in the future");
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.code(), Code::kTimeOutOfRange);
  EXPECT_EQ(s.message(), "event 3 s in the future");
  EXPECT_EQ(s.ToString(), "TIME_OUT_OF_RANGE: event 3 s in the future");
}

TEST(StatusTest, CodeNamesAreUniqueAndStable) {
  // Wire compatibility: values are persisted, names are shown to operators.
  EXPECT_EQ(static_cast<int>(Code::kInvalidKey), 2);
  EXPECT_EQ(static_cast<int>(Code::kInternal), 20);
  std::set<std::string> names;
  for (int c = 0; c <= static_cast<int>(Code::kInternal); ++c) {
    auto name = std::string(CodeName(static_cast<Code>(c)));
    EXPECT_NE(name, "UNKNOWN_CODE") << c;
    EXPECT_TRUE(names.insert(name).second) << name;
  }
}

TEST(ResultTest, HoldsValueOrStatus) {
  Result<int> good(42);
  ASSERT_TRUE(good.ok());
  EXPECT_EQ(*good, 42);
  Result<int> bad(Status::Overflow("sum"));
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), Code::kOverflow);
}

}  // namespace
}  // namespace tally
