#include "protocol/codec.h"

#include <flatbuffers/flatbuffers.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "protocol/frame.h"
#include "protocol/messages.h"

namespace tally {
namespace {

using namespace std::string_literals;

// Binary keys with NUL and high bytes: keys are bytes, not C strings.
const std::string kKeyA = "user:\0\x01\xff"s;
const std::string kKeyB = "\0"s;
const std::string kMember = "card\0\x80"s;

proto::Request Req(decltype(proto::Request::body) body) {
  proto::Request r;
  r.deadline_ms = 250;
  r.wait_durable = true;
  r.body = std::move(body);
  return r;
}

proto::Response Resp(decltype(proto::Response::body) body) {
  proto::Response r;
  r.body = std::move(body);
  return r;
}

proto::AddItem FullAdd() {
  return {.key = kKeyA,
          .time_ms = 1700000000123,
          .count = 3,
          .amount = -4500,
          .member = kMember,
          .id = "id\0x"s};
}

proto::Aggregates SomeAnswer(int64_t seed) {
  return {.count = 10 + seed,
          .sum = -20 - seed,
          .min = -7,
          .max = 99,
          .avg = -2.5,
          .distinct = 4000000000ull,
          .exact = false,
          .distinct_error = 0.0081,
          .covered_from_ms = 1000,
          .covered_to_ms = 61000,
          .resolution_ms = 1000};
}

// Every request type, with fields away from their defaults.
std::vector<proto::Request> AllRequests() {
  std::vector<proto::Request> all;
  all.push_back(Req(proto::HelloRequest{.client_name = "risk-engine/3.2",
                                        .protocol_version = 7}));
  all.push_back(Req(proto::PingRequest{}));
  proto::AddItem minimal{.key = kKeyB};  // every optional field absent
  proto::AddItem empty_member{.key = "k", .member = ""};
  all.push_back(
      Req(proto::AddRequest{.items = {FullAdd(), minimal, empty_member}}));
  all.push_back(Req(proto::QueryRequest{
      .items = {proto::QueryItem::Last(kKeyA, 3600000, 63, 1700000000000),
                proto::QueryItem::Between(kKeyB, 5, 10, 1),
                proto::QueryItem{}}}));
  all.push_back(Req(proto::AddAndQueryRequest{
      .adds = {FullAdd()},
      .queries = {proto::QueryItem::Last(kKeyA, 60000, 33)}}));
  all.push_back(Req(proto::RangeRequest{.key = kKeyA,
                                        .from_ms = 1,
                                        .to_ms = 1000001,
                                        .step_ms = 1000,
                                        .aggs = 3}));
  all.push_back(Req(proto::InspectRequest{.key = kKeyA}));
  all.push_back(Req(proto::ScanRequest{
      .cursor = 0xfedcba9876543210ull, .pattern = "user:*\0"s, .count = 50}));
  all.push_back(Req(proto::DeleteRequest{.keys = {kKeyA, kKeyB, "plain"}}));
  all.push_back(Req(proto::InfoRequest{.section = "engine"}));
  all.push_back(Req(proto::AuthRequest{.token = "0123456789abcdef"}));
  all.push_back(Req(proto::AdminRequest{.args = {"SLOWLOG", "GET", "10"}}));
  return all;
}

std::vector<proto::Response> AllResponses() {
  std::vector<proto::Response> all;
  all.push_back(Resp(proto::HelloResult{.server_name = "tallyd",
                                        .server_version = "0.1.0",
                                        .protocol_version = 1,
                                        .server_time_ms = 1700000000000}));
  all.push_back(Resp(proto::PingResult{}));
  proto::AddItemResult ok{.time_ms = 123, .duplicate = true, .lsn = 77};
  proto::AddItemResult bad{.code = Code::kTimeOutOfRange,
                           .message = "event 3 s in the future",
                           .time_ms = 0};
  all.push_back(Resp(proto::AddResult{.items = {ok, bad}}));
  proto::QueryItemResult q{.answer = SomeAnswer(1), .lsn = 9};
  proto::QueryItemResult q_bad{.code = Code::kInvalidWindow,
                               .message = "empty"};
  proto::QueryItemResult q_zero;  // an unseen key: zeros, exact
  all.push_back(Resp(proto::QueryResult{.items = {q, q_bad, q_zero}}));
  all.push_back(Resp(proto::AddAndQueryResult{.adds = {ok}, .queries = {q}}));
  all.push_back(Resp(
      proto::RangeResult{.points = {{.start_ms = 0, .answer = SomeAnswer(2)},
                                    {.start_ms = 1000, .answer = {}}},
                         .lsn = 5}));
  all.push_back(Resp(proto::InspectResult{
      .key = kKeyA,
      .policy = "payments",
      .track_distinct = true,
      .max_lateness_ms = 172800000,
      .max_skew_ms = 5000,
      .raw = false,
      .raw_events = 0,
      .tiers = {{.resolution_ms = 1000,
                 .retention_ms = 7200000,
                 .buckets = 12,
                 .sketches = 1,
                 .first_bucket_ms = 1000,
                 .last_bucket_ms = 13000,
                 .bytes = 4096},
                {.resolution_ms = 60000, .retention_ms = 172800000}},
      .bytes = 8192}));
  all.push_back(Resp(proto::ScanResult{.cursor = 17, .keys = {kKeyA, kKeyB}}));
  all.push_back(Resp(proto::DeleteResult{
      .items = {{.existed = true},
                {.code = Code::kInvalidKey, .message = "key is empty"}}}));
  all.push_back(Resp(proto::InfoResult{.text = "keys:3\nbytes:4096\n"}));
  all.push_back(Resp(proto::AuthResult{.token_id = "risk", .role = "writer"}));
  proto::AdminReply map = proto::AdminReply::Map();
  map.Put("calls", proto::AdminReply::Integer(-3))
      .Put("none", proto::AdminReply::Nil())
      .Put("log", proto::AdminReply::Array({proto::AdminReply::StatusWord("OK"),
                                            proto::AdminReply::Text("a\0b"s),
                                            proto::AdminReply::Array()}));
  all.push_back(Resp(proto::AdminResult{.reply = map}));
  all.push_back(Resp(proto::AdminResult{}));
  all.push_back(proto::Response::Error(Status(Code::kBusy, "overloaded")));
  return all;
}

TEST(CodecTest, EveryRequestRoundTrips) {
  std::vector<proto::Request> all = AllRequests();
  ASSERT_EQ(all.size(), static_cast<size_t>(proto::Op::kAdmin));
  for (const proto::Request& request : all) {
    std::vector<uint8_t> body = EncodeRequest(request);
    EXPECT_EQ(body.size() % 8, 0u) << proto::OpName(request.op());
    Result<proto::Request> decoded = DecodeRequest(body);
    ASSERT_TRUE(decoded.ok())
        << proto::OpName(request.op()) << ": " << decoded.status().ToString();
    EXPECT_TRUE(*decoded == request) << proto::OpName(request.op());
    EXPECT_EQ(decoded->op(), request.op());
  }
}

TEST(CodecTest, EveryResponseRoundTrips) {
  for (const proto::Response& response : AllResponses()) {
    std::vector<uint8_t> body = EncodeResponse(response);
    EXPECT_EQ(body.size() % 8, 0u);
    Result<proto::Response> decoded = DecodeResponse(body);
    ASSERT_TRUE(decoded.ok())
        << proto::OpName(response.op()) << ": " << decoded.status().ToString();
    EXPECT_TRUE(*decoded == response) << proto::OpName(response.op());
  }
}

// The worked example of docs/protocol.md ("A Ping, byte by byte"). If a
// FlatBuffers upgrade lays the (still valid) buffer out differently, update
// the document together with this test; the bytes must decode forever.
const std::vector<uint8_t> kDocumentedPingFrame = {
    0x54, 0x41, 0x4c, 0x59, 0x01, 0x01, 0x00, 0x00,  // "TALY" v1 request
    0x28, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // body 40, reserved
    0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // request_id 1
    0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // root -> 20, pad
    0x0c, 0x00, 0x0c, 0x00, 0x00, 0x00, 0x00, 0x00,  // Request vtable
    0x07, 0x00, 0x08, 0x00, 0x0c, 0x00, 0x00, 0x00,  // ..., Request table
    0x00, 0x00, 0x00, 0x02, 0x08, 0x00, 0x00, 0x00,  // body_type 2, body
    0x04, 0x00, 0x04, 0x00, 0x04, 0x00, 0x00, 0x00,  // PingRequest
};

TEST(CodecTest, PingFrameIsTheDocumentedBytes) {
  proto::Request ping;
  ping.body = proto::PingRequest{};
  std::vector<uint8_t> frame;
  AppendFrame(&frame, FrameKind::kRequest, 1, EncodeRequest(ping));
  EXPECT_EQ(frame, kDocumentedPingFrame);

  FrameDecoder decoder(kDefaultMaxFrameBody, FrameKind::kRequest);
  ASSERT_EQ(decoder.Append(kDocumentedPingFrame), kDocumentedPingFrame.size());
  Result<std::optional<Frame>> next = decoder.Next();
  ASSERT_TRUE(next.ok() && next->has_value());
  EXPECT_EQ((*next)->header.request_id, 1u);
  Result<proto::Request> decoded = DecodeRequest((*next)->body);
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_EQ(decoded->op(), proto::Op::kPing);
  EXPECT_EQ(decoded->deadline_ms, 0u);
  EXPECT_FALSE(decoded->wait_durable);
}

TEST(CodecTest, AbsentAndEmptyMemberStayDistinct) {
  proto::Request request = Req(proto::AddRequest{
      .items = {{.key = "a"}, {.key = "b", .member = "", .id = std::nullopt}}});
  Result<proto::Request> decoded = DecodeRequest(EncodeRequest(request));
  ASSERT_TRUE(decoded.ok());
  const auto& items = std::get<proto::AddRequest>(decoded->body).items;
  EXPECT_FALSE(items[0].member.has_value());
  ASSERT_TRUE(items[1].member.has_value());
  EXPECT_EQ(*items[1].member, "");
  EXPECT_EQ(items[0].count, 1);  // the schema default
}

TEST(CodecTest, MisalignedBodyDecodes) {
  std::vector<uint8_t> body = EncodeRequest(AllRequests()[2]);
  std::vector<uint8_t> shifted(body.size() + 1);
  std::copy(body.begin(), body.end(), shifted.begin() + 1);
  Result<proto::Request> decoded = DecodeRequest(std::span(shifted).subspan(1));
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_TRUE(*decoded == AllRequests()[2]);
}

TEST(CodecTest, RequestWithoutOperationIsProtocolError) {
  Result<proto::Request> decoded =
      DecodeRequest(EncodeRequest(proto::Request{}));
  EXPECT_EQ(decoded.status().code(), Code::kProtocolError);
}

TEST(CodecTest, OkResponseWithoutBodyIsProtocolError) {
  Result<proto::Response> decoded =
      DecodeResponse(EncodeResponse(proto::Response{}));
  EXPECT_EQ(decoded.status().code(), Code::kProtocolError);
}

TEST(CodecTest, UnknownResponseCodeIsKeptAsItsNumber) {
  proto::Response r =
      proto::Response::Error(Status(static_cast<Code>(999), "new"));
  Result<proto::Response> decoded = DecodeResponse(EncodeResponse(r));
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(static_cast<uint16_t>(decoded->code), 999);
  EXPECT_FALSE(decoded->status().ok());
}

TEST(CodecTest, EmptyAndOversizeBodiesAreRejectedBeforeVerification) {
  EXPECT_EQ(DecodeRequest({}).status().code(), Code::kProtocolError);
  std::vector<uint8_t> body = EncodeRequest(AllRequests()[0]);
  EXPECT_EQ(DecodeRequest(body, body.size() - 1).status().code(),
            Code::kFrameTooLarge);
  EXPECT_EQ(DecodeResponse(body, 8).status().code(), Code::kFrameTooLarge);
}

// A Request table written field by field, to send what tally's encoder never
// would. Field ids: deadline_ms 4, wait_durable 6, body_type 8, body 10.
std::vector<uint8_t> HandBuiltRequest(uint8_t body_type, bool with_body) {
  flatbuffers::FlatBufferBuilder fbb;
  flatbuffers::Offset<void> body = 0;
  if (with_body)
    body = flatbuffers::Offset<void>(fbb.EndTable(fbb.StartTable()));
  const auto start = fbb.StartTable();
  if (with_body) fbb.AddOffset(10, body);
  fbb.AddElement<uint8_t>(8, body_type, 0);
  fbb.Finish(flatbuffers::Offset<void>(fbb.EndTable(start)));
  return std::vector<uint8_t>(fbb.GetBufferPointer(),
                              fbb.GetBufferPointer() + fbb.GetSize());
}

TEST(CodecTest, UnknownOperationIsProtocolErrorNamingIt) {
  Result<proto::Request> decoded = DecodeRequest(HandBuiltRequest(99, true));
  ASSERT_FALSE(decoded.ok());
  EXPECT_EQ(decoded.status().code(), Code::kProtocolError);
  EXPECT_NE(decoded.status().message().find("unknown request type 99"),
            std::string_view::npos)
      << decoded.status().message();
}

TEST(CodecTest, KnownOperationWithoutItsBodyIsProtocolError) {
  Result<proto::Request> decoded = DecodeRequest(
      HandBuiltRequest(static_cast<uint8_t>(proto::Op::kAdd), false));
  EXPECT_EQ(decoded.status().code(), Code::kProtocolError);
  // A Ping table is an empty table: fine as the body of a Ping.
  EXPECT_TRUE(DecodeRequest(HandBuiltRequest(2, true)).ok());
}

TEST(CodecTest, AdminRequestArgumentsAreBounded) {
  proto::AdminRequest admin;
  admin.args.resize(kMaxAdminArgs, "x");
  EXPECT_TRUE(DecodeRequest(EncodeRequest(Req(admin))).ok());
  admin.args.emplace_back("x");
  Result<proto::Request> decoded = DecodeRequest(EncodeRequest(Req(admin)));
  EXPECT_EQ(decoded.status().code(), Code::kInvalidArgument);
}

TEST(CodecTest, TooManyItemsIsResourceExhausted) {
  proto::AddRequest add;
  add.items.resize(kMaxBatchItems, proto::AddItem{.key = "k"});
  EXPECT_TRUE(DecodeRequest(EncodeRequest(Req(add))).ok());
  add.items.emplace_back(proto::AddItem{.key = "k"});
  EXPECT_EQ(DecodeRequest(EncodeRequest(Req(add))).status().code(),
            Code::kResourceExhausted);

  proto::QueryRequest query;
  query.items.resize(kMaxBatchItems + 1, proto::QueryItem::Last("k", 1000));
  EXPECT_EQ(DecodeRequest(EncodeRequest(Req(query))).status().code(),
            Code::kResourceExhausted);

  proto::AddAndQueryRequest both;
  both.adds.resize(kMaxBatchItems / 2 + 1, proto::AddItem{.key = "k"});
  both.queries.resize(kMaxBatchItems / 2, proto::QueryItem::Last("k", 1000));
  EXPECT_EQ(DecodeRequest(EncodeRequest(Req(both))).status().code(),
            Code::kResourceExhausted);

  proto::DeleteRequest del;
  del.keys.resize(kMaxBatchItems + 1, "k");
  EXPECT_EQ(DecodeRequest(EncodeRequest(Req(del))).status().code(),
            Code::kResourceExhausted);
}

TEST(CodecTest, SharedVectorAmplificationIsRejected) {
  // 10,000 Delete keys that all point at one 64 KiB Bytes table: ~100 KB on
  // the wire, 655 MB if every key were copied.
  flatbuffers::FlatBufferBuilder fbb;
  std::vector<uint8_t> big(64 * 1024, 'x');
  auto data = fbb.CreateVector(big);
  auto bytes_start = fbb.StartTable();
  fbb.AddOffset(4, data);
  flatbuffers::Offset<void> shared(fbb.EndTable(bytes_start));
  std::vector<flatbuffers::Offset<void>> keys(kMaxBatchItems, shared);
  auto keys_vec = fbb.CreateVector(keys);
  auto del_start = fbb.StartTable();
  fbb.AddOffset(4, keys_vec);
  flatbuffers::Offset<void> del(fbb.EndTable(del_start));
  auto start = fbb.StartTable();
  fbb.AddOffset(10, del);
  fbb.AddElement<uint8_t>(8, static_cast<uint8_t>(proto::Op::kDelete), 0);
  fbb.Finish(flatbuffers::Offset<void>(fbb.EndTable(start)));
  std::span<const uint8_t> body(fbb.GetBufferPointer(), fbb.GetSize());
  ASSERT_LT(body.size(), kDefaultMaxFrameBody);
  Result<proto::Request> decoded = DecodeRequest(body);
  ASSERT_FALSE(decoded.ok());
  EXPECT_EQ(decoded.status().code(), Code::kProtocolError)
      << decoded.status().ToString();
}

// A request with something in every field kind, for the corruption tests.
std::vector<uint8_t> RichRequestBody() {
  proto::AddAndQueryRequest r;
  r.adds = {FullAdd(), proto::AddItem{.key = kKeyB, .count = 2}};
  r.queries = {proto::QueryItem::Last(kKeyA, 60000, 63),
               proto::QueryItem::Between(kKeyB, 1, 2, 1)};
  return EncodeRequest(Req(r));
}

TEST(CodecTest, EveryTruncationFailsOrLosesOnlyPadding) {
  // The verifier checks every referenced byte is inside the body, so a prefix
  // either fails or lost only unreferenced padding and decodes unchanged.
  std::vector<uint8_t> body = RichRequestBody();
  Result<proto::Request> whole = DecodeRequest(body);
  ASSERT_TRUE(whole.ok());
  const proto::Request original = *whole;
  int failed = 0;
  for (size_t n = 0; n < body.size(); ++n) {
    // A copy of exactly n bytes, so ASan sees any read past the end.
    std::vector<uint8_t> prefix(body.begin(), body.begin() + n);
    Result<proto::Request> decoded = DecodeRequest(prefix);
    if (decoded.ok()) {
      EXPECT_TRUE(*decoded == original) << n << "-byte prefix";
    } else {
      ++failed;
    }
  }
  EXPECT_GE(failed, static_cast<int>(body.size()) - 8);
  const proto::Response response = AllResponses()[6];
  std::vector<uint8_t> encoded = EncodeResponse(response);
  for (size_t n = 0; n < encoded.size(); ++n) {
    std::vector<uint8_t> prefix(encoded.begin(), encoded.begin() + n);
    Result<proto::Response> decoded = DecodeResponse(prefix);
    if (decoded.ok()) {
      EXPECT_TRUE(*decoded == response) << n;
    }
  }
}

TEST(CodecTest, RandomBitFlipsNeverCrash) {
  std::mt19937_64 rng(20240501);
  const std::vector<uint8_t> request = RichRequestBody();
  const std::vector<uint8_t> response = EncodeResponse(AllResponses()[6]);
  int request_ok = 0;
  int response_ok = 0;
  for (int round = 0; round < 4000; ++round) {
    std::vector<uint8_t> body = round % 2 == 0 ? request : response;
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int i = 0; i < flips; ++i) {
      const size_t bit = rng() % (body.size() * 8);
      body[bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
    }
    if (round % 2 == 0) {
      Result<proto::Request> decoded = DecodeRequest(body);
      if (decoded.ok()) {
        ++request_ok;
        // Whatever decodes must re-encode.
        EXPECT_TRUE(DecodeRequest(EncodeRequest(*decoded)).ok());
      }
    } else {
      Result<proto::Response> decoded = DecodeResponse(body);
      if (decoded.ok()) ++response_ok;
    }
  }
  // Flips in scalar fields still decode: the test exercises both outcomes.
  EXPECT_GT(request_ok, 0);
  EXPECT_GT(response_ok, 0);
}

TEST(CodecTest, RandomBytesNeverCrash) {
  std::mt19937_64 rng(7);
  for (int round = 0; round < 2000; ++round) {
    std::vector<uint8_t> body(1 + rng() % 200);
    for (uint8_t& b : body) b = static_cast<uint8_t>(rng());
    (void)DecodeRequest(body);
    (void)DecodeResponse(body);
  }
}

}  // namespace
}  // namespace tally
