// P10 (RELIABILITY.md 3.4): the semantic validation table. Each case sends
// one request over one real connection to a real server and checks
//   - the specific code (of the whole request, or of the bad item),
//   - that nothing was applied (the engine's digest and stats are
//     unchanged),
//   - that the connection stays usable (a Ping on the same connection is
//     answered after every case; only framing errors close a connection,
//     which server_test covers).
// Field-level rules alone are in protocol/validation_test.cc and the codec's
// in protocol/codec_test.cc; this is the end-to-end table.

#include <flatbuffers/flatbuffers.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <limits>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "protocol/codec.h"
#include "protocol/frame.h"
#include "protocol/limits.h"
#include "protocol/messages.h"
#include "server/in_process_server.h"
#include "storage/clock.h"
#include "storage/duration.h"
#include "tests/support/raw_connection.h"

namespace tally {
namespace {

using test::RawConnection;
using test::ReceiveEnd;
using test::Reply;
using test::Req;

// Sends one frame with `body` and returns the reply, or nullopt when the
// server closed the connection. A reply to another request, or a frame whose
// body is not a Response, fails the test.
std::optional<proto::Response> CallRaw(RawConnection& c,
                                       const std::vector<uint8_t>& body) {
  std::vector<uint8_t> frame;
  AppendFrame(&frame, FrameKind::kRequest, c.next_id(), body);
  EXPECT_TRUE(c.SendBytes(frame));
  std::optional<Reply> reply = c.Receive();
  EXPECT_NE(c.end(), ReceiveEnd::kBadResponse) << c.error().ToString();
  if (!reply) return std::nullopt;
  EXPECT_EQ(reply->request_id, c.last_id());
  return std::move(reply->response);
}

std::optional<proto::Response> Call(RawConnection& c,
                                    const proto::Request& request) {
  return CallRaw(c, EncodeRequest(request));
}

proto::AddItem Add(std::string key, int64_t amount = 1, int64_t time_ms = 0) {
  proto::AddItem item;
  item.key = std::move(key);
  item.amount = amount;
  item.time_ms = time_ms;
  return item;
}

// A request body with union type `type` and, if with_body, an empty table
// as its body (the layout of protocol/tally.fbs: body_type is field 2, body
// field 3), built by hand because the codec never writes such a thing.
std::vector<uint8_t> RawRequest(uint8_t type, bool with_body) {
  flatbuffers::FlatBufferBuilder fbb;
  flatbuffers::Offset<void> body;
  if (with_body)
    body = flatbuffers::Offset<void>(fbb.EndTable(fbb.StartTable()));
  const auto start = fbb.StartTable();
  if (with_body) fbb.AddOffset(10, body);
  fbb.AddElement<uint8_t>(8, type, 0);
  fbb.Finish(flatbuffers::Offset<void>(fbb.EndTable(start)));
  std::vector<uint8_t> out(fbb.GetBufferPointer(),
                           fbb.GetBufferPointer() + fbb.GetSize());
  out.resize((out.size() + 7) / 8 * 8, 0);
  return out;
}

struct Case {
  std::string name;
  // Runs before the digest is taken (e.g. fills a sum up to the limit).
  std::function<void(RawConnection&)> setup;
  std::function<std::vector<uint8_t>()> body;
  Code whole;  // the whole request's code
  Code item;   // the first item's code (kOk: no items to look at)
};

Code FirstItemCode(const proto::Response& r) {
  if (auto* add = std::get_if<proto::AddResult>(&r.body)) {
    return add->items.empty() ? Code::kOk : add->items[0].code;
  }
  if (auto* q = std::get_if<proto::QueryResult>(&r.body)) {
    return q->items.empty() ? Code::kOk : q->items[0].code;
  }
  if (auto* aq = std::get_if<proto::AddAndQueryResult>(&r.body)) {
    if (!aq->adds.empty() && aq->adds[0].code != Code::kOk) {
      return aq->adds[0].code;
    }
    return aq->queries.empty() ? Code::kOk : aq->queries[0].code;
  }
  if (auto* d = std::get_if<proto::DeleteResult>(&r.body)) {
    return d->items.empty() ? Code::kOk : d->items[0].code;
  }
  return Code::kOk;
}

std::vector<Case> Cases() {
  const int64_t now = SystemClock::Default()->NowMs();
  auto encode = [](proto::Request r) {
    return [r = std::move(r)] { return EncodeRequest(r); };
  };
  auto add_one = [&](proto::AddItem item) {
    return encode(Req(proto::AddRequest{{std::move(item)}}));
  };
  auto query_one = [&](proto::QueryItem item) {
    return encode(Req(proto::QueryRequest{{std::move(item)}}));
  };
  std::vector<Case> cases;
  cases.push_back(
      {"empty key", nullptr, add_one(Add("")), Code::kOk, Code::kInvalidKey});
  cases.push_back({"key over the maximum", nullptr,
                   add_one(Add(std::string(kMaxKeyBytes + 1, 'k'))), Code::kOk,
                   Code::kInvalidKey});
  cases.push_back({"query of an empty key", nullptr,
                   query_one(proto::QueryItem::Last("", 1000)), Code::kOk,
                   Code::kInvalidKey});
  cases.push_back({"count 0", nullptr, add_one([] {
                     proto::AddItem i = Add("k");
                     i.count = 0;
                     return i;
                   }()),
                   Code::kOk, Code::kInvalidArgument});
  cases.push_back({"negative event time", nullptr, add_one(Add("k", 1, -1)),
                   Code::kOk, Code::kInvalidArgument});
  cases.push_back({"member over the maximum", nullptr, add_one([] {
                     proto::AddItem i = Add("k");
                     i.member = std::string(kMaxMemberBytes + 1, 'm');
                     return i;
                   }()),
                   Code::kOk, Code::kInvalidArgument});
  cases.push_back({"empty idempotency id", nullptr, add_one([] {
                     proto::AddItem i = Add("k");
                     i.id = "";
                     return i;
                   }()),
                   Code::kOk, Code::kInvalidArgument});
  cases.push_back({"idempotency id over the maximum", nullptr, add_one([] {
                     proto::AddItem i = Add("k");
                     i.id = std::string(kMaxIdBytes + 1, 'i');
                     return i;
                   }()),
                   Code::kOk, Code::kInvalidArgument});
  // Default policy: lateness 48 h, skew 5 s.
  cases.push_back({"event time too old", nullptr,
                   add_one(Add("k", 1, now - 49 * kHourMs)), Code::kOk,
                   Code::kTimeOutOfRange});
  cases.push_back({"event time too far ahead", nullptr,
                   add_one(Add("k", 1, now + kHourMs)), Code::kOk,
                   Code::kTimeOutOfRange});
  cases.push_back({"event time at the int64 maximum", nullptr,
                   add_one(Add("k", 1, std::numeric_limits<int64_t>::max())),
                   Code::kOk, Code::kTimeOutOfRange});
  cases.push_back(
      {"sum overflowing int64",
       [](RawConnection& c) {
         auto r = Call(c, Req(proto::AddRequest{{Add(
                              "full", std::numeric_limits<int64_t>::max())}}));
         ASSERT_TRUE(r.has_value());
         ASSERT_EQ(FirstItemCode(*r), Code::kOk);
       },
       add_one(Add("full", 1)), Code::kOk, Code::kOverflow});
  cases.push_back({"duplicate idempotency id with a different payload",
                   [](RawConnection& c) {
                     proto::AddItem i = Add("idk", 5);
                     i.id = "once";
                     auto r = Call(c, Req(proto::AddRequest{{i}}));
                     ASSERT_TRUE(r.has_value());
                     ASSERT_EQ(FirstItemCode(*r), Code::kOk);
                   },
                   add_one([] {
                     proto::AddItem i = Add("idk", 6);
                     i.id = "once";
                     return i;
                   }()),
                   Code::kOk, Code::kIdConflict});
  cases.push_back({"unknown aggregate bits", nullptr,
                   query_one(proto::QueryItem::Last("k", 1000, 1u << 20)),
                   Code::kOk, Code::kInvalidArgument});
  cases.push_back({"reversed window", nullptr,
                   query_one(proto::QueryItem::Between("k", now, now - 1)),
                   Code::kOk, Code::kInvalidWindow});
  cases.push_back({"empty absolute window", nullptr,
                   query_one(proto::QueryItem::Between("k", now, now)),
                   Code::kOk, Code::kInvalidWindow});
  cases.push_back({"negative window start", nullptr,
                   query_one(proto::QueryItem::Between("k", -5, now)),
                   Code::kOk, Code::kInvalidWindow});
  cases.push_back(
      {"distinct of a policy that does not track it", nullptr,
       query_one(proto::QueryItem::Last("nd:k", 1000, proto::kAggDistinctBit)),
       Code::kOk, Code::kInvalidArgument});
  cases.push_back({"range with step 0", nullptr,
                   encode(Req(proto::RangeRequest{"k", now - 1000, now, 0, 0})),
                   Code::kInvalidArgument, Code::kOk});
  cases.push_back(
      {"range with too many points", nullptr,
       encode(Req(proto::RangeRequest{"k", now - kDayMs, now, 1, 0})),
       Code::kInvalidArgument, Code::kOk});
  cases.push_back({"scan count over the maximum", nullptr,
                   encode(Req(proto::ScanRequest{0, "", kMaxScanCount + 1})),
                   Code::kInvalidArgument, Code::kOk});
  cases.push_back({"too many items", nullptr,
                   encode(Req(proto::AddRequest{std::vector<proto::AddItem>(
                       kMaxBatchItems + 1, Add("k"))})),
                   Code::kResourceExhausted, Code::kOk});
  cases.push_back({"unknown operation", nullptr,
                   [] { return RawRequest(99, true); }, Code::kProtocolError,
                   Code::kOk});
  cases.push_back({"operation without its body (missing required field)",
                   nullptr, [] { return RawRequest(3, false); },
                   Code::kProtocolError, Code::kOk});
  cases.push_back({"no operation", nullptr, [] { return RawRequest(0, false); },
                   Code::kProtocolError, Code::kOk});
  cases.push_back({"a body that fails the verifier", nullptr,
                   [] { return std::vector<uint8_t>(64, 0xAB); },
                   Code::kProtocolError, Code::kOk});
  return cases;
}

TEST(SemanticValidationTest, EachBadRequestGetsItsCodeAppliesNothing) {
  InProcessServerOptions options;
  options.server.port = 0;
  options.server.threads = 1;
  Policy no_distinct;
  no_distinct.name = "no_distinct";
  no_distinct.prefix = "nd:";
  no_distinct.track_distinct = false;
  Result<PolicySet> policies = PolicySet::Create(Policy(), {no_distinct});
  ASSERT_TRUE(policies.ok()) << policies.status().ToString();
  options.engine.policies = *policies;
  InProcessServer server(options);
  ASSERT_TRUE(server.status().ok()) << server.status().ToString();
  RawConnection connection(server.port());

  int passed = 0;
  const std::vector<Case> cases = Cases();
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    if (c.setup) c.setup(connection);
    const uint64_t digest = server.engine().Digest();
    const uint64_t keys = server.engine().Stats().keys;
    std::optional<proto::Response> r = CallRaw(connection, c.body());
    ASSERT_TRUE(r.has_value()) << "the server closed the connection";
    const bool whole_ok = r->code == c.whole;
    EXPECT_TRUE(whole_ok) << "got " << CodeName(r->code) << ": " << r->message
                          << "; want " << CodeName(c.whole);
    const bool item_ok = c.item == Code::kOk || FirstItemCode(*r) == c.item;
    EXPECT_TRUE(item_ok) << "item got " << CodeName(FirstItemCode(*r))
                         << "; want " << CodeName(c.item);
    const bool nothing_applied = server.engine().Digest() == digest &&
                                 server.engine().Stats().keys == keys;
    EXPECT_TRUE(nothing_applied) << "something was applied";
    std::optional<proto::Response> ping =
        Call(connection, Req(proto::PingRequest{}));
    ASSERT_TRUE(ping.has_value()) << "the connection did not stay usable";
    EXPECT_EQ(ping->code, Code::kOk);
    if (whole_ok && item_ok && nothing_applied) ++passed;
  }
  std::printf("P10: %d of %zu cases pass\n", passed, cases.size());
  server.Stop();
}

// Found while checking reply sizes for L4: a Scan page of 10,000 keys of 256
// bytes was a 2.7 MB reply, over the client's 1 MiB frame limit (the client
// dropped the connection). Pages are now capped; every key still comes back
// exactly once, and every reply fits a client's limit.
TEST(SemanticValidationTest, AScanOfLongKeysFitsTheClientsFrameLimit) {
  InProcessServerOptions options;
  options.server.port = 0;
  options.server.threads = 1;
  InProcessServer server(options);
  ASSERT_TRUE(server.status().ok()) << server.status().ToString();
  constexpr int kKeys = 5000;
  for (int i = 0; i < kKeys; ++i) {
    std::string key = std::to_string(i);
    key.resize(kMaxKeyBytes, 'k');
    AddEvent e;
    e.key = key;
    ASSERT_TRUE(server.engine().Add(e).ok());
  }
  RawConnection connection(server.port());  // 1 MiB limit, as the client
  std::set<std::string> seen;
  uint64_t cursor = 0;
  for (int page = 0; page < 100; ++page) {
    std::optional<proto::Response> r =
        Call(connection, Req(proto::ScanRequest{cursor, "", kMaxScanCount}));
    ASSERT_TRUE(r.has_value()) << "the reply did not fit the client's limit";
    ASSERT_EQ(r->code, Code::kOk) << r->message;
    const auto& scan = std::get<proto::ScanResult>(r->body);
    for (const std::string& k : scan.keys) EXPECT_TRUE(seen.insert(k).second);
    cursor = scan.cursor;
    if (cursor == 0) break;
  }
  EXPECT_EQ(cursor, 0u);
  EXPECT_EQ(seen.size(), size_t{kKeys});
  server.Stop();
}

}  // namespace
}  // namespace tally
