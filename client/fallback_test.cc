#include "client/fallback.h"

#include <gtest/gtest.h>

namespace tally::client_internal {
namespace {

proto::Request QueryOf(std::vector<proto::QueryItem> items) {
  proto::Request r;
  r.body = proto::QueryRequest{.items = std::move(items)};
  return r;
}

proto::Response AnswerOf(std::vector<int64_t> counts) {
  proto::QueryResult result;
  for (int64_t c : counts) {
    proto::QueryItemResult item;
    item.answer.count = c;
    result.items.push_back(item);
  }
  proto::Response r;
  r.body = result;
  return r;
}

TEST(ZeroResponseTest, IsShapedLikeTheRequest) {
  proto::Request r;
  r.body = proto::AddAndQueryRequest{
      .adds = {proto::AddItem{.key = "k"}, proto::AddItem{.key = "k"}},
      .queries = {proto::QueryItem::Last("k", 1000)}};
  const Status error(Code::kUnavailable, "down");
  proto::Response z = ZeroResponse(r, error);
  EXPECT_EQ(z.code, Code::kOk);
  ASSERT_EQ(z.op(), proto::Op::kAddAndQuery);
  const auto& body = std::get<proto::AddAndQueryResult>(z.body);
  ASSERT_EQ(body.adds.size(), 2u);
  EXPECT_EQ(body.adds[0].code, Code::kUnavailable);
  ASSERT_EQ(body.queries.size(), 1u);
  EXPECT_EQ(body.queries[0].code, Code::kOk);
  EXPECT_EQ(body.queries[0].answer.count, 0);

  proto::Response q = ZeroResponse(
      QueryOf({proto::QueryItem::Last("a", 1), proto::QueryItem::Last("b", 1)}),
      error);
  EXPECT_EQ(std::get<proto::QueryResult>(q.body).items.size(), 2u);
  proto::Request ping;
  ping.body = proto::PingRequest{};
  EXPECT_EQ(ZeroResponse(ping, error).op(), proto::Op::kPing);
}

TEST(LastKnownCacheTest, RecallsPerItemSignature) {
  LastKnownCache cache;
  const auto a = proto::QueryItem::Last("a", 60'000);
  const auto a_hour = proto::QueryItem::Last("a", 3'600'000);
  cache.Remember(QueryOf({a, a_hour}), AnswerOf({5, 50}));
  EXPECT_EQ(cache.size(), 2u);
  // Same key and window, another request shape: still found per item.
  const auto b = proto::QueryItem::Last("b", 60'000);
  const auto a_sum = proto::QueryItem::Last("a", 60'000, proto::kAggSumBit);
  proto::Request later = QueryOf({b, a_hour, a_sum, a});
  proto::Response z = ZeroResponse(later, Status(Code::kUnavailable, "x"));
  EXPECT_EQ(cache.Recall(later, &z), 2u);
  const auto& items = std::get<proto::QueryResult>(z.body).items;
  EXPECT_EQ(items[0].answer.count, 0);   // never seen
  EXPECT_EQ(items[1].answer.count, 50);  // a, 1h
  EXPECT_EQ(items[2].answer.count, 0);   // other aggs: another signature
  EXPECT_EQ(items[3].answer.count, 5);   // a, 1m
}

TEST(LastKnownCacheTest, KeepsOnlyOkItemsAndUpdates) {
  LastKnownCache cache;
  const auto a = proto::QueryItem::Last("a", 1000);
  proto::Response bad = AnswerOf({7});
  std::get<proto::QueryResult>(bad.body).items[0].code = Code::kInvalidWindow;
  cache.Remember(QueryOf({a}), bad);
  EXPECT_EQ(cache.size(), 0u);
  cache.Remember(QueryOf({a}), AnswerOf({1}));
  cache.Remember(QueryOf({a}), AnswerOf({2}));
  proto::Response z = ZeroResponse(QueryOf({a}), Status(Code::kBusy, "x"));
  cache.Recall(QueryOf({a}), &z);
  EXPECT_EQ(std::get<proto::QueryResult>(z.body).items[0].answer.count, 2);
}

TEST(LastKnownCacheTest, IsBoundedAndEvictsTheLeastRecent) {
  LastKnownCache cache(3);
  for (int i = 0; i < 5; ++i) {
    cache.Remember(
        QueryOf({proto::QueryItem::Last("k" + std::to_string(i), 1)}),
        AnswerOf({i + 1}));
  }
  EXPECT_EQ(cache.size(), 3u);
  proto::Request old = QueryOf({proto::QueryItem::Last("k0", 1)});
  proto::Response z = ZeroResponse(old, Status(Code::kBusy, "x"));
  EXPECT_EQ(cache.Recall(old, &z), 0u);
  proto::Request recent = QueryOf({proto::QueryItem::Last("k4", 1)});
  z = ZeroResponse(recent, Status(Code::kBusy, "x"));
  EXPECT_EQ(cache.Recall(recent, &z), 1u);
}

}  // namespace
}  // namespace tally::client_internal
