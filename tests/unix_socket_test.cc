// tallyd --unix_socket end to end (RELIABILITY.md 4.1, "an optional Unix
// socket (mode 0700 directory) for local admin"): a real tallyd child
// (tests/security_harness.h), libtally and `tally -s` over the socket, the
// socket's mode, the directory rules that refuse to start, stale-socket
// removal, and the file gone after a clean stop.

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <boost/asio.hpp>
#include <cstring>
#include <filesystem>
#include <string>

#include "tests/security_harness.h"

namespace tally::security_test {
namespace {

namespace asio = boost::asio;
namespace fs = std::filesystem;

class UnixSocketTest : public SecurityTest {
 protected:
  void SetUp() override {
    SecurityTest::SetUp();
    run_ = dir_ + "/run";
    socket_ = run_ + "/tally.sock";
  }
  // tallyd on TCP port 0 and the Unix socket, without tokens unless asked.
  bool Start(std::vector<std::string> extra = {}) {
    server_ = std::make_unique<TallydProcess>();
    extra.push_back("--unix_socket=" + socket_);
    return server_->Start({.binary = TALLYD_BIN,
                           .flags = std::move(extra),
                           .data_dir = dir_ + "/data",
                           .log_file = log_file()});
  }
  // tallyd must refuse to start; its log, which says why.
  std::string StartRefused() {
    if (Start()) {
      ADD_FAILURE() << "tallyd started";
      return "";
    }
    EXPECT_EQ(server_->Stop(), 1);  // kExitStartup
    return ReadAll(log_file());
  }
  std::string Cli(const std::string& args) const {
    return std::string(TALLY_BIN) + " -s " + socket_ + " " + args;
  }
  static ClientOptions OptionsFor(const std::string& path) {
    ClientOptions o;
    o.endpoints = {Endpoint{.host = "unix:" + path}};
    o.default_timeout = std::chrono::seconds(5);
    o.connect_timeout = milliseconds(2000);
    o.breaker.enabled = false;
    return o;
  }

  std::string run_;
  std::string socket_;
};

// A socket file nobody listens on: bound, then closed without unlink (what
// a killed server leaves).
bool MakeStaleSocket(const std::string& path) {
  const int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  if (fd < 0) return false;
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::strncpy(address.sun_path, path.c_str(), sizeof(address.sun_path) - 1);
  const bool bound = bind(fd, reinterpret_cast<const sockaddr*>(&address),
                          sizeof(address)) == 0;
  close(fd);
  return bound;
}

TEST_F(UnixSocketTest, ServesTheClientAndCliAndRemovesTheSocketAtStop) {
  ASSERT_EQ(mkdir(run_.c_str(), 0700), 0);
  ASSERT_TRUE(Start()) << ReadAll(log_file());

  struct stat st {};
  ASSERT_EQ(lstat(socket_.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_NE(ReadAll(log_file()).find("unix:" + socket_), std::string::npos);

  {
    Client client(OptionsFor(socket_));
    Batch batch;
    batch.Add("user:42", 1250, "card:1").Add("user:42", 750, "card:2");
    CallResult<BatchResult> added = client.Execute(batch);
    ASSERT_TRUE(added.ok()) << added.message;
    Batch query;
    query.Query("user:42", 60'000);
    CallResult<BatchResult> r = client.Execute(query);
    ASSERT_TRUE(r.ok()) << r.message;
    ASSERT_EQ(r.value.queries.size(), 1u);
    EXPECT_EQ(r.value.queries[0].answer.count, 2);
  }

  // The CLI, as redis-cli -s: the same counters, and CLIENT LIST names the
  // connection by the socket's path.
  RunResult add = Shell(Cli("ADD user:42"));
  EXPECT_EQ(add.exit_code, 0) << add.out;
  RunResult query = Shell(Cli("--json QUERY user:42 WINDOW 1m"));
  EXPECT_EQ(query.exit_code, 0) << query.out;
  EXPECT_NE(query.out.find("\"count\":3"), std::string::npos) << query.out;
  RunResult list = Shell(Cli("CLIENT LIST"));
  EXPECT_EQ(list.exit_code, 0) << list.out;
  EXPECT_NE(list.out.find("addr=unix:" + socket_ + " laddr=unix:" + socket_),
            std::string::npos)
      << list.out;
  // The TCP port still serves alongside.
  RunResult tcp = Shell(std::string(TALLY_BIN) + " -p " +
                        std::to_string(server_->port()) + " PING");
  EXPECT_EQ(tcp.out, "PONG\n");

  EXPECT_EQ(server_->Stop(), 0);
  EXPECT_FALSE(fs::exists(fs::symlink_status(socket_)));
  EXPECT_TRUE(fs::is_directory(run_));
}

TEST_F(UnixSocketTest, SameSessionRulesAsTcpAndAdminAllowed) {
  ASSERT_EQ(mkdir(run_.c_str(), 0700), 0);
  ASSERT_TRUE(Start({"--token_file=" + token_file_})) << ReadAll(log_file());
  // No token: refused as over TCP.
  RunResult anonymous = Shell(Cli("DBSIZE"));
  EXPECT_EQ(anonymous.exit_code, 1) << anonymous.out;
  EXPECT_NE(anonymous.out.find("AUTH_REQUIRED"), std::string::npos)
      << anonymous.out;
  // A reader may not run admin commands, wherever it connects from.
  RunResult reader = Shell(Cli("--token " + kReader + " CLIENT LIST"));
  EXPECT_NE(reader.out.find("NO_PERMISSION"), std::string::npos) << reader.out;
  // An admin token runs admin operations over the socket, as from loopback.
  RunResult admin = Shell(Cli("--token " + kAdmin + " INFO debug"));
  EXPECT_EQ(admin.exit_code, 0) << admin.out;
  EXPECT_EQ(admin.out.find("NO_PERMISSION"), std::string::npos) << admin.out;
  ExpectNoSecretInLog();
}

TEST_F(UnixSocketTest, MaxConnectionsCountsBothListeners) {
  ASSERT_EQ(mkdir(run_.c_str(), 0700), 0);
  ASSERT_TRUE(Start({"--max_connections=2"})) << ReadAll(log_file());
  // The first two connections ever (one each way) are held open; a third,
  // on the socket, is refused.
  ClientOptions options = OptionsFor(socket_);
  options.connections_per_endpoint = 1;
  Client held_unix(options);
  Batch query;
  query.Query("k", 60'000);
  ASSERT_TRUE(held_unix.Execute(query).ok());
  ClientOptions tcp_options = options;
  tcp_options.endpoints = {
      Endpoint{.host = "127.0.0.1", .port = server_->port()}};
  Client held_tcp(tcp_options);
  ASSERT_TRUE(held_tcp.Execute(query).ok());
  // Read without writing (a client's write may meet the close first): the
  // refusal frame, then the end of the stream.
  asio::io_context io;
  asio::local::stream_protocol::socket third(io);
  third.connect(asio::local::stream_protocol::endpoint(socket_));
  FrameDecoder decoder(kDefaultMaxFrameBody, FrameKind::kResponse);
  std::optional<Frame> frame;
  while (!frame) {
    std::span<uint8_t> room = decoder.Prepare(4096);
    boost::system::error_code ec;
    const size_t n =
        third.read_some(asio::buffer(room.data(), room.size()), ec);
    ASSERT_FALSE(ec) << ec.message();
    decoder.Commit(n);
    Result<std::optional<Frame>> next = decoder.Next();
    ASSERT_TRUE(next.ok());
    frame = std::move(*next);
  }
  Result<proto::Response> refused = DecodeResponse(frame->body);
  ASSERT_TRUE(refused.ok());
  EXPECT_EQ(refused->code, Code::kResourceExhausted);
  EXPECT_EQ(refused->message, "max connections (2) reached");
}

TEST_F(UnixSocketTest, CreatesAMissingDirectoryWithMode0700) {
  ASSERT_TRUE(Start()) << ReadAll(log_file());
  struct stat st {};
  ASSERT_EQ(lstat(run_.c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  EXPECT_EQ(Shell(Cli("PING")).out, "PONG\n");
}

TEST_F(UnixSocketTest, RefusesToStartInAnUnsafeDirectory) {
  ASSERT_EQ(mkdir(run_.c_str(), 0700), 0);
  for (const mode_t mode : {0777, 0750, 0701}) {
    ASSERT_EQ(chmod(run_.c_str(), mode), 0);
    const std::string log = StartRefused();
    char octal[8];
    std::snprintf(octal, sizeof(octal), "%04o", static_cast<unsigned>(mode));
    EXPECT_NE(log.find("has mode " + std::string(octal)), std::string::npos)
        << log;
    EXPECT_FALSE(fs::exists(fs::symlink_status(socket_)));
    fs::remove(log_file());
  }
  ASSERT_EQ(chmod(run_.c_str(), 0700), 0);
  if (geteuid() == 0) {
    // Owned by someone else (nobody): refused even at 0700.
    ASSERT_EQ(chown(run_.c_str(), 65534, 65534), 0);
    const std::string log = StartRefused();
    EXPECT_NE(log.find("is owned by uid 65534"), std::string::npos) << log;
    fs::remove(log_file());
    ASSERT_EQ(chown(run_.c_str(), 0, 0), 0);
  }
  // A symbolic link to a good directory is not accepted either.
  const std::string link = dir_ + "/link";
  fs::create_directory_symlink(run_, link);
  socket_ = link + "/tally.sock";
  const std::string log = StartRefused();
  EXPECT_NE(log.find("is a symbolic link"), std::string::npos) << log;
}

TEST_F(UnixSocketTest, ReplacesAStaleSocketButNeverALiveOneOrAFile) {
  ASSERT_EQ(mkdir(run_.c_str(), 0700), 0);
  // Not a socket: left alone, and tallyd does not start.
  { std::ofstream(socket_) << "precious"; }
  std::string log = StartRefused();
  EXPECT_NE(log.find("is not a socket"), std::string::npos) << log;
  EXPECT_EQ(ReadAll(socket_), "precious");
  fs::remove(socket_);
  fs::remove(log_file());

  // A dead server's socket: replaced.
  ASSERT_TRUE(MakeStaleSocket(socket_));
  ASSERT_TRUE(Start()) << ReadAll(log_file());
  EXPECT_EQ(Shell(Cli("PING")).out, "PONG\n");

  // A live server's socket: a second tallyd refuses it and leaves it be.
  TallydProcess second;
  fs::create_directory(dir_ + "/second");
  const std::string second_log = dir_ + "/second/tallyd.log";
  EXPECT_FALSE(second.Start({.binary = TALLYD_BIN,
                             .flags = {"--unix_socket=" + socket_},
                             .data_dir = dir_ + "/second/data",
                             .log_file = second_log}));
  EXPECT_EQ(second.Stop(), 1);
  log = ReadAll(second_log);
  EXPECT_NE(log.find("a server is listening on it"), std::string::npos) << log;
  EXPECT_EQ(Shell(Cli("PING")).out, "PONG\n");
  EXPECT_EQ(server_->Stop(), 0);
  EXPECT_FALSE(fs::exists(fs::symlink_status(socket_)));
}

}  // namespace
}  // namespace tally::security_test
