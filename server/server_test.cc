// A real Server on 127.0.0.1 (a port it picks) driven through blocking
// sockets (tests/support/raw_connection.h): the wire behaviours of
// docs/protocol.md end to end.

#include "server/server.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <thread>

#include "protocol/codec.h"
#include "protocol/frame.h"
#include "storage/file_system.h"
#include "storage/journal.h"
#include "storage/recovery.h"
#include "tests/support/raw_connection.h"

namespace tally {
namespace {

using test::RawConnection;
using test::ReceiveEnd;
using test::Reply;
using test::Req;

// The next reply, or nullopt when the server closed the connection; a reply
// that does not decode fails the test.
std::optional<Reply> Receive(RawConnection& c) {
  std::optional<Reply> reply = c.Receive();
  EXPECT_NE(c.end(), ReceiveEnd::kBadFrame) << c.error().ToString();
  EXPECT_NE(c.end(), ReceiveEnd::kBadResponse) << c.error().ToString();
  return reply;
}

// The reply to `request`; none (or another request's) fails the test.
proto::Response Call(RawConnection& c, const proto::Request& request) {
  std::optional<proto::Response> response = c.Call(request);
  EXPECT_TRUE(response.has_value()) << "no reply to request " << c.last_id();
  return response.value_or(proto::Response());
}

proto::AddItem Item(std::string key, int64_t amount = 0,
                    std::optional<std::string> id = std::nullopt) {
  proto::AddItem item;
  item.key = std::move(key);
  item.amount = amount;
  item.member = "card:" + std::to_string(amount % 3);
  item.id = std::move(id);
  return item;
}

// A journal with a real WAL (fsync mode) in a fresh temporary directory.
std::unique_ptr<Journal> MakeJournal(const std::string& dir) {
  RecoveryOptions ro;
  ro.fs = PosixFileSystem();
  ro.data_dir = dir;
  Result<Recovered> recovered = Recover(ro);
  EXPECT_TRUE(recovered.ok()) << recovered.status().ToString();
  JournalOptions jo;
  jo.fs = PosixFileSystem();
  jo.data_dir = dir;
  jo.segment_bytes = 1 << 20;
  auto journal = std::make_unique<Journal>(std::move(*recovered), jo);
  Status s = journal->Start();
  EXPECT_TRUE(s.ok()) << s.ToString();
  return journal;
}

std::string MakeTempDir() {
  std::string dir =
      (std::filesystem::temp_directory_path() / "tally-server-test-XXXXXX")
          .string();
  EXPECT_NE(mkdtemp(dir.data()), nullptr);
  return dir;
}

class ServerTest : public testing::Test {
 protected:
  explicit ServerTest(ServerOptions options = Options())
      : dir_(MakeTempDir()),
        journal_(MakeJournal(dir_)),
        engine_(*journal_->engine()),
        service_(journal_.get(), SystemClock::Default(), ServiceOptions{}),
        server_(&service_, options) {
    Status s = server_.Start();
    EXPECT_TRUE(s.ok()) << s.ToString();
  }
  ~ServerTest() override {
    server_.Stop();
    journal_->Stop();
    std::filesystem::remove_all(dir_);
  }
  static ServerOptions Options() {
    ServerOptions o;
    o.port = 0;
    o.threads = 2;
    o.connection.max_frame_body = 64 << 10;
    return o;
  }
  uint16_t port() const { return server_.port(); }

  std::string dir_;
  std::unique_ptr<Journal> journal_;
  Engine& engine_;
  Service service_;
  Server server_;
};

TEST_F(ServerTest, HelloAndPingAnswer) {
  RawConnection c(port());
  proto::Response hello = Call(c, Req(proto::HelloRequest{"test", 1}));
  ASSERT_EQ(hello.code, Code::kOk) << hello.message;
  EXPECT_EQ(std::get<proto::HelloResult>(hello.body).protocol_version, 1u);
  EXPECT_EQ(Call(c, Req(proto::PingRequest{})).op(), proto::Op::kPing);
}

// Every add is in the WAL before its reply (fsync mode: synced), and every
// answer says which prefix of the WAL it read.
TEST_F(ServerTest, RepliesCarryTheirWalPositions) {
  RawConnection c(port());
  proto::AddRequest add;
  add.items.push_back(Item("lsn:1", 1));
  add.items.push_back(Item("lsn:1", 2));
  proto::Response added = Call(c, Req(add));
  ASSERT_EQ(added.code, Code::kOk) << added.message;
  const auto& items = std::get<proto::AddResult>(added.body).items;
  ASSERT_EQ(items.size(), 2u);
  EXPECT_GT(items[0].lsn, 0u);
  EXPECT_EQ(items[0].lsn, items[1].lsn);  // one record per request
  EXPECT_LE(items[0].lsn, journal_->durable_lsn());

  proto::Response second = Call(c, Req(add));
  const uint64_t second_lsn =
      std::get<proto::AddResult>(second.body).items[0].lsn;
  EXPECT_GT(second_lsn, items[0].lsn);

  proto::QueryRequest query;
  query.items.push_back(proto::QueryItem::Last("lsn:1", 60'000));
  proto::Response answered = Call(c, Req(query));
  const auto& q = std::get<proto::QueryResult>(answered.body).items[0];
  EXPECT_GE(q.lsn, second_lsn);
  EXPECT_EQ(q.answer.count, 4);

  proto::RangeRequest range;
  range.key = "lsn:1";
  range.to_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                    std::chrono::system_clock::now().time_since_epoch())
                    .count() +
                1000;
  range.from_ms = range.to_ms - 60'000;
  range.step_ms = 60'000;
  proto::Response ranged = Call(c, Req(range));
  ASSERT_EQ(ranged.code, Code::kOk) << ranged.message;
  EXPECT_GE(std::get<proto::RangeResult>(ranged.body).lsn, second_lsn);
}

TEST_F(ServerTest, AddThenQueryOnOneConnectionReadsItsWrites) {
  RawConnection c(port());
  proto::AddRequest add;
  for (int i = 1; i <= 5; ++i) add.items.push_back(Item("user:1", i * 100));
  proto::Response added = Call(c, Req(add));
  ASSERT_EQ(added.code, Code::kOk);
  for (const auto& r : std::get<proto::AddResult>(added.body).items) {
    EXPECT_EQ(r.code, Code::kOk) << r.message;
  }
  proto::QueryRequest q;
  q.items.push_back(proto::QueryItem::Last("user:1", 60'000));
  q.items.push_back(proto::QueryItem::Last("user:never", 60'000));
  proto::Response answer = Call(c, Req(q));
  const auto& items = std::get<proto::QueryResult>(answer.body).items;
  ASSERT_EQ(items.size(), 2u);
  EXPECT_EQ(items[0].answer.count, 5);
  EXPECT_EQ(items[0].answer.sum, 1500);
  EXPECT_EQ(items[0].answer.distinct, 3u);
  EXPECT_EQ(items[1].code, Code::kOk);  // unknown key: zeros, not an error
  EXPECT_EQ(items[1].answer.count, 0);
}

TEST_F(ServerTest, AddAndQuerySeesItsOwnAdds) {
  RawConnection c(port());
  proto::AddAndQueryRequest r;
  r.adds.push_back(Item("card:9", 700));
  r.queries.push_back(proto::QueryItem::Last(
      "card:9", 1000, proto::kAggCountBit | proto::kAggSumBit));
  proto::Response answer = Call(c, Req(r));
  const auto& body = std::get<proto::AddAndQueryResult>(answer.body);
  ASSERT_EQ(body.queries.size(), 1u);
  EXPECT_EQ(body.queries[0].answer.count, 1);
  EXPECT_EQ(body.queries[0].answer.sum, 700);
}

TEST_F(ServerTest, ABadItemFailsOnlyItself) {
  RawConnection c(port());
  proto::AddRequest add;
  add.items = {Item("ok:1", 1), Item("", 1), Item("ok:1", 2)};
  add.items[2].time_ms = 1;  // 1970: far too late
  proto::Response r = Call(c, Req(add));
  ASSERT_EQ(r.code, Code::kOk);
  const auto& items = std::get<proto::AddResult>(r.body).items;
  ASSERT_EQ(items.size(), 3u);
  EXPECT_EQ(items[0].code, Code::kOk);
  EXPECT_EQ(items[1].code, Code::kInvalidKey);
  EXPECT_EQ(items[2].code, Code::kTimeOutOfRange);
  EXPECT_FALSE(items[2].message.empty());
  EXPECT_EQ(engine_.Query("ok:1", Window::Last(60'000))->count, 1);
}

TEST_F(ServerTest, ARetriedEventWithAnIdCountsOnce) {
  RawConnection c(port());
  proto::AddRequest add;
  add.items = {Item("user:7", 50, "evt-1")};
  proto::Response first = Call(c, Req(add));
  proto::Response retry = Call(c, Req(add));
  EXPECT_FALSE(std::get<proto::AddResult>(first.body).items[0].duplicate);
  EXPECT_TRUE(std::get<proto::AddResult>(retry.body).items[0].duplicate);
  EXPECT_EQ(engine_.Query("user:7", Window::Last(60'000))->count, 1);
  add.items[0].amount = 51;  // same id, other event
  proto::Response conflict = Call(c, Req(add));
  EXPECT_EQ(std::get<proto::AddResult>(conflict.body).items[0].code,
            Code::kIdConflict);
}

// Sends `n` pipelined add-and-query requests for `key` in one burst and
// checks the replies come back in order, each query seeing exactly the adds
// before and including its own (`before` adds to `key` came earlier).
void ExpectPipelinedBurstInOrder(RawConnection& c, const std::string& key,
                                 uint64_t n, int64_t before) {
  std::vector<uint8_t> burst;
  for (uint64_t id = 1; id <= n; ++id) {
    proto::AddAndQueryRequest r;
    r.adds.push_back(Item(key, 1));
    r.queries.push_back(
        proto::QueryItem::Last(key, 60'000, proto::kAggCountBit));
    AppendFrame(&burst, FrameKind::kRequest, id, EncodeRequest(Req(r)));
  }
  ASSERT_TRUE(c.SendBytes(burst));
  for (uint64_t id = 1; id <= n; ++id) {
    auto reply = Receive(c);
    ASSERT_TRUE(reply.has_value());
    ASSERT_EQ(reply->request_id, id);
    ASSERT_EQ(std::get<proto::AddAndQueryResult>(reply->response.body)
                  .queries[0]
                  .answer.count,
              before + static_cast<int64_t>(id));
  }
}

TEST_F(ServerTest, PipelinedRequestsAreAnsweredInOrder) {
  RawConnection c(port());
  ExpectPipelinedBurstInOrder(c, "pipe", 2000, 0);
}

// --busy_poll_us: I/O threads poll instead of sleeping while work flows.
// The same answers, in the same order, and Stop() still returns (the
// fixture's destructor) once the polling threads run out of work.
class BusyPollServerTest : public ServerTest {
 protected:
  BusyPollServerTest() : ServerTest(PollingOptions()) {}
  static ServerOptions PollingOptions() {
    ServerOptions o = Options();
    o.busy_poll_us = 200;
    return o;
  }
};

TEST_F(BusyPollServerTest, AnswersInOrderAndStops) {
  RawConnection c(port());
  for (int round = 0; round < 3; ++round) {
    ExpectPipelinedBurstInOrder(c, "poll", 500, round * 500);
    // Idle long enough for the threads to stop polling and sleep; the next
    // round must wake them.
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

TEST_F(ServerTest, AGarbageBodyGetsAnErrorAndTheConnectionStays) {
  RawConnection c(port());
  std::vector<uint8_t> frame;
  const std::vector<uint8_t> garbage(40, 0xAB);
  AppendFrame(&frame, FrameKind::kRequest, 77, garbage);
  ASSERT_TRUE(c.SendBytes(frame));
  auto reply = Receive(c);
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->request_id, 77u);
  EXPECT_EQ(reply->response.code, Code::kProtocolError);
  EXPECT_EQ(Call(c, Req(proto::PingRequest{})).code, Code::kOk);
}

TEST_F(ServerTest, BrokenFramingIsAnsweredThenTheConnectionCloses) {
  RawConnection c(port());
  ASSERT_TRUE(c.SendBytes(std::vector<uint8_t>(64, 'x')));  // no magic
  auto reply = Receive(c);
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->response.code, Code::kProtocolError);
  EXPECT_FALSE(Receive(c).has_value());  // closed
  // Others are unaffected.
  RawConnection other(port());
  EXPECT_EQ(Call(other, Req(proto::PingRequest{})).code, Code::kOk);
}

TEST_F(ServerTest, AnOversizedFrameIsRefusedFromItsHeader) {
  RawConnection c(port());
  std::vector<uint8_t> header(kFrameHeaderSize);
  EncodeFrameHeader({.body_length = 0xFFFFFFFF, .request_id = 5},
                    header.data());
  ASSERT_TRUE(c.SendBytes(header));
  auto reply = Receive(c);
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->response.code, Code::kFrameTooLarge);
  EXPECT_FALSE(Receive(c).has_value());
}

TEST_F(ServerTest, RangeInspectScanDeleteAndInfo) {
  RawConnection c(port());
  proto::AddRequest add;
  for (int i = 0; i < 3; ++i)
    add.items.push_back(Item("scan:" + std::to_string(i), i));
  Call(c, Req(add));
  const int64_t now = SystemClock::Default()->NowMs();
  proto::Response range =
      Call(c, Req(proto::RangeRequest{.key = "scan:1",
                                      .from_ms = now - 60'000,
                                      .to_ms = now + 1000,
                                      .step_ms = 10'000}));
  ASSERT_EQ(range.code, Code::kOk) << range.message;
  int64_t total = 0;
  for (const auto& p : std::get<proto::RangeResult>(range.body).points)
    total += p.answer.count;
  EXPECT_EQ(total, 1);
  proto::Response inspect = Call(c, Req(proto::InspectRequest{"scan:1"}));
  EXPECT_EQ(std::get<proto::InspectResult>(inspect.body).policy, "default");
  EXPECT_EQ(Call(c, Req(proto::InspectRequest{"nope"})).code, Code::kNotFound);
  proto::Response scan = Call(c, Req(proto::ScanRequest{0, "scan:*", 100}));
  EXPECT_EQ(std::get<proto::ScanResult>(scan.body).keys.size(), 3u);
  proto::Response del =
      Call(c, Req(proto::DeleteRequest{{"scan:0", "scan:0"}}));
  const auto& deleted = std::get<proto::DeleteResult>(del.body).items;
  EXPECT_TRUE(deleted[0].existed);
  EXPECT_FALSE(deleted[1].existed);
  proto::Response info = Call(c, Req(proto::InfoRequest{"keyspace"}));
  EXPECT_NE(std::get<proto::InfoResult>(info.body).text.find("keys:2"),
            std::string::npos);
  EXPECT_EQ(Call(c, Req(proto::InfoRequest{"bogus"})).code,
            Code::kInvalidArgument);
}

TEST(ServiceTest, ARequestPastItsDeadlineIsNotExecuted) {
  Recovered memory_only;
  memory_only.engine = std::make_unique<Engine>(EngineOptions{});
  memory_only.dedupe = std::make_unique<DedupeTable>();
  Journal journal(std::move(memory_only), JournalOptions{});
  ASSERT_TRUE(journal.Start().ok());
  Engine& engine = *journal.engine();
  Service service(&journal, SystemClock::Default(), ServiceOptions{});
  proto::AddRequest add;
  add.items.push_back(Item("late", 1));
  proto::Request request = Req(add);
  request.deadline_ms = 5;
  proto::Response r = service.HandleSync(
      request, BootClock::now() - std::chrono::milliseconds(50));
  EXPECT_EQ(r.code, Code::kDeadlineExceeded);
  EXPECT_EQ(engine.Query("late", Window::Last(60'000))->count, 0);
}

// --bind "127.0.0.1,::1" (tallyd's default): one port on both loopbacks,
// picked by the first bind when the port is 0.
class DualStackServerTest : public ServerTest {
 protected:
  DualStackServerTest() : ServerTest(DualStack()) {}
  static ServerOptions DualStack() {
    ServerOptions o = Options();
    o.bind = "127.0.0.1,::1";
    o.ipv6_loopback_optional = true;
    return o;
  }
};

TEST_F(DualStackServerTest, ListensOnBothLoopbacksOnOnePort) {
  const std::vector<std::string> at = server_.listening();
  ASSERT_FALSE(at.empty());
  EXPECT_EQ(at[0], "127.0.0.1");
  RawConnection v4(port());
  EXPECT_EQ(Call(v4, Req(proto::PingRequest{})).code, Code::kOk);
  if (at.size() < 2) GTEST_SKIP() << "no IPv6 on this host: ::1 skipped";
  EXPECT_EQ(at[1], "::1");
  RawConnection v6(port(), {.host = "::1"});
  EXPECT_EQ(Call(v6, Req(proto::PingRequest{})).code, Code::kOk);
}

TEST_F(DualStackServerTest, EveryAddressMustBindAndErrorsNameIt) {
  // The same port again: taken on both addresses.
  ServerOptions taken = DualStack();
  taken.port = port();
  Server again(&service_, taken);
  Status s = again.Start();
  EXPECT_EQ(s.code(), Code::kUnavailable);
  EXPECT_NE(
      s.message().find("cannot listen on 127.0.0.1:" + std::to_string(port())),
      std::string::npos)
      << s.ToString();
  // A bad entry anywhere in the list fails the start, naming it.
  ServerOptions bad = Options();
  bad.bind = "127.0.0.1,not-an-address";
  Server bad_server(&service_, bad);
  s = bad_server.Start();
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_NE(s.message().find("'not-an-address'"), std::string::npos)
      << s.ToString();
}

}  // namespace
}  // namespace tally
