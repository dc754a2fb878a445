#include "tools/cli/formatter.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace tally::cli {
namespace {

const FormatOptions kText{.json = false, .one_line = false, .chart = false};
const FormatOptions kLine{.json = false, .one_line = true, .chart = false};
const FormatOptions kJson{.json = true, .one_line = true, .chart = false};
const FormatOptions kChart{.json = false, .one_line = false, .chart = true};

proto::Response Ok(auto body) {
  proto::Response r;
  r.body = std::move(body);
  return r;
}

proto::Aggregates SampleAnswer() {
  return {.count = 3,
          .sum = 150,
          .min = 10,
          .max = 100,
          .avg = 50,
          .distinct = 2,
          .exact = true,
          .distinct_error = 0,
          .covered_from_ms = 1'700'000'000'000,
          .covered_to_ms = 1'700'000'060'000,
          .resolution_ms = 1000};
}

proto::Aggregates EstimatedAnswer() {
  proto::Aggregates a = SampleAnswer();
  a.distinct = 12345;
  a.exact = false;
  a.distinct_error = 0.008125;
  return a;
}

proto::Response QueryReply(proto::Aggregates a) {
  return Ok(proto::QueryResult{.items = {{.answer = a}}});
}

const proto::Request kNoRequest{};

TEST(FormatterTest, Ping) {
  const proto::Response r = Ok(proto::PingResult{});
  EXPECT_EQ(FormatResponse(kNoRequest, r, kText), "PONG");
  EXPECT_EQ(FormatResponse(kNoRequest, r, kJson), R"({"reply":"PONG"})");
}

TEST(FormatterTest, Add) {
  const proto::Response r =
      Ok(proto::AddResult{.items = {{.time_ms = 1'700'000'000'000}}});
  EXPECT_EQ(FormatResponse(kNoRequest, r, kText), "OK");
  EXPECT_EQ(FormatResponse(kNoRequest, r, kJson),
            R"({"ok":true,"duplicate":false,"time_ms":1700000000000})");
}

TEST(FormatterTest, AddDuplicate) {
  const proto::Response r =
      Ok(proto::AddResult{.items = {{.time_ms = 5, .duplicate = true}}});
  EXPECT_EQ(FormatResponse(kNoRequest, r, kText), "OK (duplicate)");
  EXPECT_EQ(FormatResponse(kNoRequest, r, kJson),
            R"({"ok":true,"duplicate":true,"time_ms":5})");
}

TEST(FormatterTest, QueryText) {
  EXPECT_EQ(FormatResponse(kNoRequest, QueryReply(SampleAnswer()), kText),
            "count: 3\n"
            "sum: 150\n"
            "min: 10\n"
            "max: 100\n"
            "avg: 50\n"
            "distinct: 2\n"
            "exact: true\n"
            "covered_from_ms: 1700000000000\n"
            "covered_to_ms: 1700000060000\n"
            "resolution_ms: 1000");
}

TEST(FormatterTest, QueryOneLine) {
  EXPECT_EQ(FormatResponse(kNoRequest, QueryReply(SampleAnswer()), kLine),
            "count=3 sum=150 min=10 max=100 avg=50 distinct=2 exact=true "
            "covered_from_ms=1700000000000 covered_to_ms=1700000060000 "
            "resolution_ms=1000");
}

TEST(FormatterTest, QueryJson) {
  EXPECT_EQ(FormatResponse(kNoRequest, QueryReply(SampleAnswer()), kJson),
            R"({"count":3,"sum":150,"min":10,"max":100,"avg":50.0,)"
            R"("distinct":2,"exact":true,"covered_from_ms":1700000000000,)"
            R"("covered_to_ms":1700000060000,"resolution_ms":1000})");
}

TEST(FormatterTest, QueryWithEstimatedDistinct) {
  const proto::Response r = QueryReply(EstimatedAnswer());
  EXPECT_EQ(FormatResponse(kNoRequest, r, kText),
            "count: 3\nsum: 150\nmin: 10\nmax: 100\navg: 50\n"
            "distinct: 12345\nexact: false\ndistinct_error: 0.008125\n"
            "covered_from_ms: 1700000000000\ncovered_to_ms: 1700000060000\n"
            "resolution_ms: 1000");
  EXPECT_EQ(FormatResponse(kNoRequest, r, kJson),
            R"({"count":3,"sum":150,"min":10,"max":100,"avg":50.0,)"
            R"("distinct":12345,"exact":false,"distinct_error":0.008125,)"
            R"("covered_from_ms":1700000000000,)"
            R"("covered_to_ms":1700000060000,"resolution_ms":1000})");
}

TEST(FormatterTest, FractionalAverage) {
  proto::Aggregates a = SampleAnswer();
  a.avg = 2.5;
  EXPECT_NE(FormatResponse(kNoRequest, QueryReply(a), kLine).find("avg=2.5 "),
            std::string::npos);
}

TEST(FormatterTest, WholeRequestError) {
  const proto::Response r = proto::Response::Error(
      Status::TimeOutOfRange("event time 5 is 2h before the window"));
  EXPECT_EQ(FormatResponse(kNoRequest, r, kText),
            "(error) TIME_OUT_OF_RANGE: event time 5 is 2h before the window");
  EXPECT_EQ(FormatResponse(kNoRequest, r, kJson),
            R"({"error":{"code":"TIME_OUT_OF_RANGE",)"
            R"("message":"event time 5 is 2h before the window"}})");
  EXPECT_TRUE(IsError(r));
}

TEST(FormatterTest, PerItemErrorIsTheReplysError) {
  const proto::Response add = Ok(proto::AddResult{
      .items = {{.code = Code::kTimeOutOfRange, .message = "too old"}}});
  EXPECT_TRUE(IsError(add));
  EXPECT_EQ(FormatResponse(kNoRequest, add, kText),
            "(error) TIME_OUT_OF_RANGE: too old");
  const proto::Response query = Ok(proto::QueryResult{
      .items = {{.code = Code::kInvalidWindow, .message = "empty window"}}});
  EXPECT_EQ(FormatResponse(kNoRequest, query, kJson),
            R"({"error":{"code":"INVALID_WINDOW","message":"empty window"}})");
  EXPECT_FALSE(IsError(QueryReply(SampleAnswer())));
}

TEST(FormatterTest, TransportError) {
  EXPECT_EQ(FormatError(Code::kUnavailable, "connection refused", kText),
            "(error) UNAVAILABLE: connection refused");
  EXPECT_EQ(FormatError(Code::kDeadlineExceeded, "after 1 attempt", kJson),
            R"({"error":{"code":"DEADLINE_EXCEEDED",)"
            R"("message":"after 1 attempt"}})");
}

TEST(FormatterTest, SyntaxError) {
  EXPECT_EQ(FormatSyntaxError("unknown command 'FLY'", kText),
            "(error) ERR unknown command 'FLY'");
  EXPECT_EQ(FormatSyntaxError("unknown command 'FLY'", kJson),
            R"({"error":{"code":"ERR","message":"unknown command 'FLY'"}})");
}

TEST(FormatterTest, OneLineErrorHasNoNewline) {
  EXPECT_EQ(FormatError(Code::kInternal, "a\nb", kLine),
            "(error) INTERNAL: a b");
}

proto::Response SampleRange() {
  proto::RangeResult range;
  proto::Aggregates a = SampleAnswer();
  range.points.push_back({.start_ms = 1000, .answer = a});
  a.count = 0;
  a.sum = 0;
  a.min = 0;
  a.max = 0;
  a.avg = 0;
  a.distinct = 0;
  range.points.push_back({.start_ms = 2000, .answer = a});
  a.count = 6;
  range.points.push_back({.start_ms = 3000, .answer = a});
  return Ok(std::move(range));
}

TEST(FormatterTest, RangeText) {
  EXPECT_EQ(FormatResponse(kNoRequest, SampleRange(), kText),
            "1) start_ms=1000 count=3 sum=150 min=10 max=100 avg=50 "
            "distinct=2\n"
            "2) start_ms=2000 count=0 sum=0 min=0 max=0 avg=0 distinct=0\n"
            "3) start_ms=3000 count=6 sum=0 min=0 max=0 avg=0 distinct=0");
}

TEST(FormatterTest, RangeOneLine) {
  EXPECT_EQ(FormatResponse(kNoRequest, SampleRange(), kLine),
            "1) start_ms=1000 count=3 sum=150 min=10 max=100 avg=50 "
            "distinct=2 "
            "2) start_ms=2000 count=0 sum=0 min=0 max=0 avg=0 distinct=0 "
            "3) start_ms=3000 count=6 sum=0 min=0 max=0 avg=0 distinct=0");
}

TEST(FormatterTest, RangeChartOnTerminal) {
  proto::Request request;
  request.body = proto::RangeRequest{.step_ms = 60'000};
  const std::string text = FormatResponse(request, SampleRange(), kChart);
  EXPECT_TRUE(text.ends_with("\ncount ▅▁█  (max 6 per 1m)")) << text;
}

TEST(FormatterTest, RangeJson) {
  EXPECT_EQ(
      FormatResponse(kNoRequest, SampleRange(), kJson),
      R"({"buckets":[)"
      R"({"start_ms":1000,"count":3,"sum":150,"min":10,"max":100,"avg":50.0,)"
      R"("distinct":2,"exact":true,"covered_from_ms":1700000000000,)"
      R"("covered_to_ms":1700000060000,"resolution_ms":1000},)"
      R"({"start_ms":2000,"count":0,"sum":0,"min":0,"max":0,"avg":0.0,)"
      R"("distinct":0,"exact":true,"covered_from_ms":1700000000000,)"
      R"("covered_to_ms":1700000060000,"resolution_ms":1000},)"
      R"({"start_ms":3000,"count":6,"sum":0,"min":0,"max":0,"avg":0.0,)"
      R"("distinct":0,"exact":true,"covered_from_ms":1700000000000,)"
      R"("covered_to_ms":1700000060000,"resolution_ms":1000}]})");
}

TEST(FormatterTest, EmptyRange) {
  const proto::Response r = Ok(proto::RangeResult{});
  EXPECT_EQ(FormatResponse(kNoRequest, r, kText), "(empty array)");
  EXPECT_EQ(FormatResponse(kNoRequest, r, kJson), R"({"buckets":[]})");
}

proto::Response SampleInspect() {
  return Ok(proto::InspectResult{.key = "user 42",
                                 .policy = "default",
                                 .track_distinct = true,
                                 .max_lateness_ms = 3'600'000,
                                 .max_skew_ms = 60'000,
                                 .raw = false,
                                 .raw_events = 0,
                                 .tiers = {{.resolution_ms = 1000,
                                            .retention_ms = 3'600'000,
                                            .buckets = 3,
                                            .sketches = 0,
                                            .first_bucket_ms = 1000,
                                            .last_bucket_ms = 3000,
                                            .bytes = 512}},
                                 .bytes = 1024});
}

TEST(FormatterTest, InspectText) {
  EXPECT_EQ(FormatResponse(kNoRequest, SampleInspect(), kText),
            "key: \"user 42\"\n"
            "policy: default\n"
            "track_distinct: true\n"
            "max_lateness_ms: 3600000\n"
            "max_skew_ms: 60000\n"
            "raw: false\n"
            "raw_events: 0\n"
            "bytes: 1024\n"
            "tiers:\n"
            "1) 1s/1h buckets=3 sketches=0 first_bucket_ms=1000 "
            "last_bucket_ms=3000 bytes=512");
  EXPECT_EQ(FormatResponse(kNoRequest, SampleInspect(), kLine),
            "key=\"user 42\" policy=default track_distinct=true "
            "max_lateness_ms=3600000 max_skew_ms=60000 raw=false raw_events=0 "
            "bytes=1024 tiers: 1) 1s/1h buckets=3 sketches=0 "
            "first_bucket_ms=1000 last_bucket_ms=3000 bytes=512");
}

TEST(FormatterTest, InspectJson) {
  EXPECT_EQ(FormatResponse(kNoRequest, SampleInspect(), kJson),
            R"({"key":"user 42","policy":"default","track_distinct":true,)"
            R"("max_lateness_ms":3600000,"max_skew_ms":60000,"raw":false,)"
            R"("raw_events":0,"bytes":1024,"tiers":[{"resolution_ms":1000,)"
            R"("retention_ms":3600000,"buckets":3,"sketches":0,)"
            R"("first_bucket_ms":1000,"last_bucket_ms":3000,"bytes":512}]})");
}

TEST(FormatterTest, Scan) {
  const proto::Response r =
      Ok(proto::ScanResult{.cursor = 17, .keys = {"a", "b c", "d\"e"}});
  EXPECT_EQ(FormatResponse(kNoRequest, r, kText),
            "1) \"17\"\n2) 1) \"a\"\n   2) \"b c\"\n   3) \"d\\\"e\"");
  EXPECT_EQ(FormatResponse(kNoRequest, r, kLine),
            R"(cursor=17 keys=["a","b c","d\"e"])");
  EXPECT_EQ(FormatResponse(kNoRequest, r, kJson),
            R"({"cursor":17,"keys":["a","b c","d\"e"]})");
}

TEST(FormatterTest, ScanDone) {
  const proto::Response r = Ok(proto::ScanResult{});
  EXPECT_EQ(FormatResponse(kNoRequest, r, kText), "1) \"0\"\n2) (empty array)");
  EXPECT_EQ(FormatResponse(kNoRequest, r, kJson), R"({"cursor":0,"keys":[]})");
}

TEST(FormatterTest, Del) {
  const proto::Response r = Ok(proto::DeleteResult{
      .items = {{.existed = true}, {.existed = false}, {.existed = true}}});
  EXPECT_EQ(FormatResponse(kNoRequest, r, kText), "(integer) 2");
  EXPECT_EQ(FormatResponse(kNoRequest, r, kJson),
            R"({"deleted":2,"existed":[true,false,true]})");
}

TEST(FormatterTest, Info) {
  const proto::Response r = Ok(proto::InfoResult{
      .text = "# Server\nserver:tallyd\nversion:0.1.0\nuptime_seconds:7\n\n"
              "# Stats\ncpu_seconds:0.25\n\n"});
  EXPECT_EQ(FormatResponse(kNoRequest, r, kText),
            "# Server\nserver:tallyd\nversion:0.1.0\nuptime_seconds:7\n\n"
            "# Stats\ncpu_seconds:0.25");
  EXPECT_EQ(FormatResponse(kNoRequest, r, kLine),
            R"("# Server\nserver:tallyd\nversion:0.1.0\nuptime_seconds:7\n\n)"
            R"(# Stats\ncpu_seconds:0.25\n\n")");
  EXPECT_EQ(FormatResponse(kNoRequest, r, kJson),
            R"({"info":{"server":{"server":"tallyd","version":"0.1.0",)"
            R"("uptime_seconds":7},"stats":{"cpu_seconds":0.25}}})");
}

TEST(FormatterTest, AdminRepliesLookLikeRedisCli) {
  using proto::AdminReply;
  EXPECT_EQ(FormatResponse(kNoRequest, Ok(proto::AdminResult{}), kText),
            "(nil)");
  EXPECT_EQ(
      FormatResponse(kNoRequest, Ok(proto::AdminResult{AdminReply::Integer(7)}),
                     kText),
      "(integer) 7");
  EXPECT_EQ(FormatResponse(kNoRequest,
                           Ok(proto::AdminResult{AdminReply::StatusWord("OK")}),
                           kText),
            "OK");
  // Nested arrays are indented under their number, as redis-cli does.
  AdminReply log = AdminReply::Array(
      {AdminReply::Array({AdminReply::Integer(1), AdminReply::Text("a b")}),
       AdminReply::Array({AdminReply::Integer(2), AdminReply::Nil()})});
  const proto::Response r = Ok(proto::AdminResult{log});
  EXPECT_EQ(FormatResponse(kNoRequest, r, kText),
            "1) 1) (integer) 1\n"
            "   2) \"a b\"\n"
            "2) 1) (integer) 2\n"
            "   2) (nil)");
  EXPECT_EQ(FormatResponse(kNoRequest, r, kLine),
            R"([[(integer) 1, "a b"], [(integer) 2, (nil)]])");
  EXPECT_EQ(FormatResponse(kNoRequest, r, kJson), R"([[1,"a b"],[2,null]])");
  AdminReply map = AdminReply::Map();
  map.Put("calls", AdminReply::Integer(3)).Put("name", AdminReply::Text("x"));
  const proto::Response m = Ok(proto::AdminResult{map});
  EXPECT_EQ(FormatResponse(kNoRequest, m, kText),
            "1# \"calls\" => (integer) 3\n2# \"name\" => \"x\"");
  EXPECT_EQ(FormatResponse(kNoRequest, m, kJson), R"({"calls":3,"name":"x"})");
  EXPECT_EQ(FormatResponse(kNoRequest,
                           Ok(proto::AdminResult{AdminReply::Array()}), kText),
            "(empty array)");
  // Multi-line text (a report) prints as it is.
  EXPECT_EQ(
      FormatResponse(kNoRequest,
                     Ok(proto::AdminResult{AdminReply::Text("a\nb")}), kText),
      "a\nb");
}

TEST(FormatterTest, Hello) {
  const proto::Response r = Ok(proto::HelloResult{.server_name = "tallyd",
                                                  .server_version = "0.1.0",
                                                  .protocol_version = 1,
                                                  .server_time_ms = 9});
  EXPECT_EQ(FormatResponse(kNoRequest, r, kLine),
            "server=tallyd version=0.1.0 protocol_version=1 server_time_ms=9");
  EXPECT_EQ(FormatResponse(kNoRequest, r, kJson),
            R"({"server":"tallyd","version":"0.1.0","protocol_version":1,)"
            R"("server_time_ms":9})");
}

TEST(FormatterTest, InvalidUtf8KeyStillGivesJson) {
  const proto::Response r =
      Ok(proto::ScanResult{.cursor = 0, .keys = {std::string("\xff", 1)}});
  EXPECT_EQ(FormatResponse(kNoRequest, r, kJson),
            "{\"cursor\":0,\"keys\":[\"\xEF\xBF\xBD\"]}");
  EXPECT_EQ(FormatResponse(kNoRequest, r, kLine), R"(cursor=0 keys=["\xff"])");
}

TEST(SparklineTest, ScalesToTheLargestValue) {
  EXPECT_EQ(Sparkline({0, 1, 2, 3, 4, 5, 6, 7}), "▁▂▃▄▅▆▇█");
  EXPECT_EQ(Sparkline({0, 0, 0}), "▁▁▁");
  EXPECT_EQ(Sparkline({}), "");
  EXPECT_EQ(Sparkline({1, 1000}), "▂█");  // non-zero never looks empty
}

TEST(SparklineTest, SumsNeighboursToFitTheWidth) {
  EXPECT_EQ(Sparkline({1, 1, 0, 0, 2, 2}, 3), "▅▁█");
}

TEST(QuoteTest, EscapesLikeRedisCli) {
  EXPECT_EQ(Quote("plain"), "\"plain\"");
  EXPECT_EQ(Quote("a\"b\\c\n\t"), R"("a\"b\\c\n\t")");
  EXPECT_EQ(Quote(std::string("\x00\x7f", 2)), R"("\x00\x7f")");
}

}  // namespace
}  // namespace tally::cli
