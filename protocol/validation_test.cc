#include "protocol/validation.h"

#include <gtest/gtest.h>

#include <string>

#include "protocol/limits.h"
#include "protocol/messages.h"

namespace tally::proto {
namespace {

using namespace std::string_literals;

TEST(ValidationTest, KeysAreOneTo256ArbitraryBytes) {
  EXPECT_EQ(ValidateKey("").code(), Code::kInvalidKey);
  EXPECT_TRUE(ValidateKey("\0"s).ok());
  EXPECT_TRUE(ValidateKey(std::string(kMaxKeyBytes, '\xff')).ok());
  EXPECT_EQ(ValidateKey(std::string(kMaxKeyBytes + 1, 'k')).code(),
            Code::kInvalidKey);
}

TEST(ValidationTest, AddItemFieldsOutOfRangeAreInvalidArgument) {
  EXPECT_TRUE(ValidateAddItem({.key = "k"}).ok());
  EXPECT_EQ(ValidateAddItem({.key = ""}).code(), Code::kInvalidKey);
  EXPECT_EQ(ValidateAddItem({.key = "k", .time_ms = -1}).code(),
            Code::kInvalidArgument);
  EXPECT_EQ(ValidateAddItem({.key = "k", .count = 0}).code(),
            Code::kInvalidArgument);
  EXPECT_TRUE(ValidateAddItem({.key = "k", .amount = -5}).ok());
  EXPECT_TRUE(ValidateAddItem({.key = "k", .member = ""}).ok());
  EXPECT_EQ(ValidateAddItem(
                {.key = "k", .member = std::string(kMaxMemberBytes + 1, 'm')})
                .code(),
            Code::kInvalidArgument);
  EXPECT_EQ(ValidateAddItem({.key = "k", .id = ""}).code(),
            Code::kInvalidArgument);
  EXPECT_EQ(
      ValidateAddItem({.key = "k", .id = std::string(kMaxIdBytes + 1, 'i')})
          .code(),
      Code::kInvalidArgument);
}

TEST(ValidationTest, QueryItemNeedsExactlyOneWindowShape) {
  EXPECT_TRUE(ValidateQueryItem(QueryItem::Last("k", 60000)).ok());
  EXPECT_TRUE(ValidateQueryItem(QueryItem::Last("k", 60000, 0, 5)).ok());
  EXPECT_TRUE(ValidateQueryItem(QueryItem::Between("k", 0, 1)).ok());
  EXPECT_EQ(ValidateQueryItem({.key = "k"}).code(), Code::kInvalidWindow);
  EXPECT_EQ(ValidateQueryItem(QueryItem::Last("k", -1)).code(),
            Code::kInvalidWindow);
  QueryItem both = QueryItem::Last("k", 1000);
  both.to_ms = 5;
  EXPECT_EQ(ValidateQueryItem(both).code(), Code::kInvalidWindow);
  QueryItem at_without_last = QueryItem::Between("k", 1, 2);
  at_without_last.at_ms = 3;
  EXPECT_EQ(ValidateQueryItem(at_without_last).code(), Code::kInvalidWindow);
  EXPECT_EQ(ValidateQueryItem(QueryItem::Between("k", 5, 5)).code(),
            Code::kInvalidWindow);
  EXPECT_EQ(ValidateQueryItem(QueryItem::Between("k", 6, 5)).code(),
            Code::kInvalidWindow);
  EXPECT_EQ(ValidateQueryItem(QueryItem::Between("k", -5, 5)).code(),
            Code::kInvalidWindow);
  EXPECT_EQ(ValidateQueryItem(QueryItem::Last("", 1000)).code(),
            Code::kInvalidKey);
}

TEST(ValidationTest, UnknownAggregateBitsAreInvalidArgument) {
  EXPECT_TRUE(ValidateAggs(0).ok());
  EXPECT_TRUE(ValidateAggs(kAggAllBits).ok());
  EXPECT_EQ(ValidateAggs(64).code(), Code::kInvalidArgument);
  EXPECT_EQ(ValidateQueryItem(QueryItem::Last("k", 1000, 1u << 31)).code(),
            Code::kInvalidArgument);
}

TEST(ValidationTest, RangeNeedsAWindowAndAPositiveStep) {
  RangeRequest r{.key = "k", .from_ms = 0, .to_ms = 10, .step_ms = 1};
  EXPECT_TRUE(ValidateRangeRequest(r).ok());
  r.step_ms = 0;
  EXPECT_EQ(ValidateRangeRequest(r).code(), Code::kInvalidArgument);
  r.step_ms = 1;
  r.to_ms = 0;
  EXPECT_EQ(ValidateRangeRequest(r).code(), Code::kInvalidWindow);
  r.to_ms = 10;
  r.aggs = 128;
  EXPECT_EQ(ValidateRangeRequest(r).code(), Code::kInvalidArgument);
}

TEST(ValidationTest, ScanPatternAndCountAreBounded) {
  EXPECT_TRUE(ValidateScanRequest({}).ok());
  EXPECT_EQ(
      ValidateScanRequest({.pattern = std::string(kMaxPatternBytes + 1, '*')})
          .code(),
      Code::kInvalidArgument);
  EXPECT_EQ(ValidateScanRequest({.count = kMaxScanCount + 1}).code(),
            Code::kInvalidArgument);
}

}  // namespace
}  // namespace tally::proto
