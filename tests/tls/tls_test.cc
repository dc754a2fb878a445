// TLS between libtally and tallyd (RELIABILITY.md L5 and S6), against a
// real Server in-process on 127.0.0.1 (a port it picks). The PKI is
// generated at test time by tests/tls/make_pki.sh (openssl CLI) into a
// fresh temporary directory: a CA, a server cert for localhost/127.0.0.1,
// one for a wrong host name, an expired one, client certs from the CA and
// from an unrelated CA.
//
// No timing thresholds: every wait is bounded generously (the machine is
// shared and may run ASan) and the tests check outcomes (refused, closed).

#include <gtest/gtest.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>

#include <array>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "client/tally/client.h"
#include "protocol/codec.h"
#include "protocol/frame.h"
#include "server/in_process_server.h"

namespace tally {
namespace {

namespace asio = boost::asio;
namespace ssl = asio::ssl;
using asio::ip::tcp;

class TlsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::string dir =
        (std::filesystem::temp_directory_path() / "tally-tls-XXXXXX").string();
    ASSERT_NE(mkdtemp(dir.data()), nullptr);
    pki_ = new std::string(dir);
    const std::string command =
        "bash " TALLY_MAKE_PKI " " + dir + " >" + dir + "/make_pki.log 2>&1";
    ASSERT_EQ(std::system(command.c_str()), 0)
        << "cannot generate the test PKI: see " << dir << "/make_pki.log";
  }
  static void TearDownTestSuite() {
    if (pki_ != nullptr) std::filesystem::remove_all(*pki_);
    delete pki_;
    pki_ = nullptr;
  }
  static std::string Pki(const std::string& file) { return *pki_ + "/" + file; }

  // Server options for a TLS server presenting `name`.{pem,key}.
  static InProcessServerOptions ServerWith(const std::string& name) {
    InProcessServerOptions o;
    o.server.port = 0;
    o.server.threads = 2;
    if (!name.empty()) {
      o.server.tls.cert_file = Pki(name + ".pem");
      o.server.tls.key_file = Pki(name + ".key");
    }
    return o;
  }

  static ClientOptions TlsClient(uint16_t port) {
    ClientOptions o;
    o.endpoints = {Endpoint{.host = "127.0.0.1", .port = port}};
    // Generous: room for a handshake under ASan on a loaded machine.
    o.default_timeout = std::chrono::seconds(5);
    o.connect_timeout = std::chrono::milliseconds(2000);
    o.retry.max_attempts = 1;  // surface the first failure as it is
    o.breaker.enabled = false;
    o.tls.enabled = true;
    o.tls.ca_file = Pki("ca.pem");
    return o;
  }

  static std::string* pki_;
};

std::string* TlsTest::pki_ = nullptr;

// A failed call: its status, with the message for diagnostics.
template <typename T>
void ExpectRefused(const CallResult<T>& r, const std::string& needle) {
  GTEST_LOG_(INFO) << "refused: " << r.message;
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.code, Code::kUnavailable) << r.message;
  EXPECT_NE(r.message.find(needle), std::string::npos)
      << "message: " << r.message << "\nwanted: " << needle;
}

// --- L5: the client library ------------------------------------------------

TEST_F(TlsTest, AddAndQueryOverTls) {
  InProcessServer server(ServerWith("server"));
  ASSERT_TRUE(server.status().ok()) << server.status().ToString();
  Client client(TlsClient(server.port()));  // verifies IP SAN 127.0.0.1
  CallResult<proto::AddItemResult> add = client.Add("user:1", 250);
  ASSERT_TRUE(add.ok()) << add.message;
  CallResult<proto::Aggregates> q = client.Query("user:1", 60'000);
  ASSERT_TRUE(q.ok()) << q.message;
  EXPECT_EQ(q.value.count, 1);
  EXPECT_EQ(q.value.sum, 250);
}

TEST_F(TlsTest, VerifiesTheServerNameGivenForSni) {
  InProcessServer server(ServerWith("server"));
  ASSERT_TRUE(server.status().ok()) << server.status().ToString();
  ClientOptions o = TlsClient(server.port());
  o.tls.server_name = "localhost";  // DNS SAN, sent as SNI
  Client client(o);
  CallResult<proto::AddItemResult> add = client.Add("user:1", 1);
  EXPECT_TRUE(add.ok()) << add.message;

  o.tls.server_name = "other.example";
  Client wrong(o);
  ExpectRefused(wrong.Add("user:1", 1), "hostname mismatch");
}

TEST_F(TlsTest, RefusesAServerCertFromAnotherCa) {
  InProcessServer server(ServerWith("server"));
  ASSERT_TRUE(server.status().ok()) << server.status().ToString();
  ClientOptions o = TlsClient(server.port());
  o.tls.ca_file = Pki("other_ca.pem");
  Client client(o);
  ExpectRefused(client.Add("user:1", 1), "unable to get local issuer");
}

TEST_F(TlsTest, RefusesAServerCertForAnotherHost) {
  InProcessServer server(ServerWith("wrong_host"));
  ASSERT_TRUE(server.status().ok()) << server.status().ToString();
  Client client(TlsClient(server.port()));
  ExpectRefused(client.Add("user:1", 1), "mismatch");
}

TEST_F(TlsTest, RefusesAnExpiredServerCert) {
  InProcessServer server(ServerWith("expired"));
  ASSERT_TRUE(server.status().ok()) << server.status().ToString();
  Client client(TlsClient(server.port()));
  ExpectRefused(client.Add("user:1", 1), "certificate has expired");
}

TEST_F(TlsTest, RefusesAPlaintextServer) {
  InProcessServer server(ServerWith(""));
  ASSERT_TRUE(server.status().ok()) << server.status().ToString();
  Client client(TlsClient(server.port()));
  // The server answers the ClientHello with a tally error frame and closes;
  // the client reports a failed handshake by its deadline, never hangs.
  ExpectRefused(client.Add("user:1", 1), "TLS handshake failed");
}

TEST_F(TlsTest, HandshakeAgainstASilentServerEndsByTheConnectTimeout) {
  asio::io_context io;
  tcp::acceptor silent(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"),
                                         0));  // listens, never accepts
  ClientOptions o = TlsClient(silent.local_endpoint().port());
  o.connect_timeout = std::chrono::milliseconds(200);
  Client client(o);
  CallResult<proto::AddItemResult> r = client.Add("user:1", 1);
  EXPECT_FALSE(r.ok());
  EXPECT_NE(r.message.find("connect timeout"), std::string::npos) << r.message;
}

TEST_F(TlsTest, ClientConfigErrorsNameTheFile) {
  ClientOptions o = TlsClient(1);
  o.tls.ca_file = Pki("no-such-ca.pem");
  Client client(o);
  CallResult<proto::AddItemResult> r = client.Add("user:1", 1);
  EXPECT_EQ(r.code, Code::kInvalidArgument) << r.message;
  EXPECT_NE(r.message.find("no-such-ca.pem"), std::string::npos) << r.message;

  ClientOptions half = TlsClient(1);
  half.tls.cert_file = Pki("client.pem");  // no key_file
  EXPECT_EQ(Client(half).Add("user:1", 1).code, Code::kInvalidArgument);
}

TEST_F(TlsTest, MutualTlsRequiresAClientCertFromTheClientCa) {
  InProcessServerOptions so = ServerWith("server");
  so.server.tls.client_ca_file = Pki("ca.pem");
  so.server.tls.require_client_cert = true;
  InProcessServer server(so);
  ASSERT_TRUE(server.status().ok()) << server.status().ToString();

  // Without a certificate: refused (verify_fail_if_no_peer_cert). With TLS
  // 1.3 the client learns it on its first read, so the call fails either way.
  Client anonymous(TlsClient(server.port()));
  CallResult<proto::AddItemResult> r = anonymous.Add("user:1", 1);
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.code, Code::kUnavailable) << r.message;

  ClientOptions stranger = TlsClient(server.port());
  stranger.tls.cert_file = Pki("other_client.pem");
  stranger.tls.key_file = Pki("other_client.key");
  EXPECT_FALSE(Client(stranger).Add("user:1", 1).ok());

  ClientOptions o = TlsClient(server.port());
  o.tls.cert_file = Pki("client.pem");
  o.tls.key_file = Pki("client.key");
  Client client(o);
  CallResult<proto::AddItemResult> ok = client.Add("user:1", 1);
  EXPECT_TRUE(ok.ok()) << ok.message;
  CallResult<proto::Aggregates> q = client.Query("user:1", 60'000);
  ASSERT_TRUE(q.ok()) << q.message;
  EXPECT_EQ(q.value.count, 1);  // only the authenticated client's add
}

// --- S6: the server ---------------------------------------------------------

// Handshakes with a client context limited to [min, max]; returns the
// negotiated version, or 0 when the handshake fails.
int HandshakeWithVersions(uint16_t port, int min_version, int max_version,
                          std::string* error) {
  asio::io_context io;
  ssl::context context(ssl::context::tls_client);
  // Let the client offer old versions at all (Debian's default security
  // level refuses them on the client side already).
  SSL_CTX_set_security_level(context.native_handle(), 0);
  SSL_CTX_set_cipher_list(context.native_handle(), "DEFAULT:@SECLEVEL=0");
  SSL_CTX_set_min_proto_version(context.native_handle(), min_version);
  SSL_CTX_set_max_proto_version(context.native_handle(), max_version);
  context.set_verify_mode(ssl::verify_none);
  ssl::stream<tcp::socket> stream(io, context);
  boost::system::error_code ec;
  stream.lowest_layer().connect(
      tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), ec);
  if (ec) {
    *error = "connect: " + ec.message();
    return 0;
  }
  // Bounded: a server that never answers fails the read after 20 s.
  timeval tv{.tv_sec = 20, .tv_usec = 0};
  setsockopt(stream.lowest_layer().native_handle(), SOL_SOCKET, SO_RCVTIMEO,
             &tv, sizeof(tv));
  stream.handshake(ssl::stream_base::client, ec);
  if (ec) {
    *error = ec.message();
    return 0;
  }
  return SSL_version(stream.native_handle());
}

TEST_F(TlsTest, ServerRefusesTls10And11AndAccepts12And13) {
  InProcessServer server(ServerWith("server"));
  ASSERT_TRUE(server.status().ok()) << server.status().ToString();
  std::string error;
  EXPECT_EQ(
      HandshakeWithVersions(server.port(), TLS1_VERSION, TLS1_VERSION, &error),
      0);
  EXPECT_FALSE(error.empty());
  error.clear();
  EXPECT_EQ(HandshakeWithVersions(server.port(), TLS1_VERSION, TLS1_1_VERSION,
                                  &error),
            0);
  EXPECT_FALSE(error.empty());
  EXPECT_EQ(HandshakeWithVersions(server.port(), TLS1_2_VERSION, TLS1_2_VERSION,
                                  &error),
            TLS1_2_VERSION)
      << error;
  EXPECT_EQ(HandshakeWithVersions(server.port(), TLS1_2_VERSION, TLS1_3_VERSION,
                                  &error),
            TLS1_3_VERSION)
      << error;  // 1.3 preferred when both sides can
}

// The openssl CLI, as an operator would check a deployment. Returns the
// exit status of `openssl s_client <args>` (bounded by timeout(1)).
int SClient(uint16_t port, const std::string& args, const std::string& log) {
  const std::string command =
      "timeout 30 openssl s_client -connect 127.0.0.1:" + std::to_string(port) +
      " " + args + " </dev/null >" + log + " 2>&1";
  const int status = std::system(command.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST_F(TlsTest, OpensslSClientSeesOnlyTls12And13) {
  const std::string help = Pki("s_client_help.txt");
  ASSERT_EQ(std::system(("openssl s_client -help >" + help + " 2>&1").c_str()),
            0);
  InProcessServer server(ServerWith("server"));
  ASSERT_TRUE(server.status().ok()) << server.status().ToString();
  const std::string verify = "-CAfile " + Pki("ca.pem") +
                             " -verify_return_error -servername localhost";
  EXPECT_EQ(SClient(server.port(), "-tls1_2 " + verify, Pki("s12.log")), 0);
  EXPECT_EQ(SClient(server.port(), "-tls1_3 " + verify, Pki("s13.log")), 0);
  for (const std::string version : {"-tls1", "-tls1_1"}) {
    const std::string probe = "grep -q -- '^ *" + version + " ' " + help;
    if (std::system(probe.c_str()) != 0) {
      GTEST_LOG_(INFO) << "local openssl cannot offer " << version
                       << "; skipped (the C++ check covers it)";
      continue;
    }
    // SECLEVEL=0 so the client really offers the old version.
    EXPECT_NE(SClient(server.port(),
                      version + " -cipher DEFAULT@SECLEVEL=0 " + verify,
                      Pki("old.log")),
              0)
        << version << " was accepted";
  }
}

// A raw TCP client against the TLS port: connects, sends `bytes`, and reads
// until the server closes. True when closed (EOF or reset); false when the
// bounded read (20 s) ran out first.
bool ServerCloses(uint16_t port, const std::vector<uint8_t>& bytes,
                  std::vector<uint8_t>* received) {
  asio::io_context io;
  tcp::socket socket(io);
  socket.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  timeval tv{.tv_sec = 20, .tv_usec = 0};
  setsockopt(socket.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  if (!bytes.empty()) asio::write(socket, asio::buffer(bytes));
  std::array<uint8_t, 4096> buffer;
  for (int i = 0; i < 1000; ++i) {
    boost::system::error_code ec;
    const size_t n = socket.read_some(asio::buffer(buffer), ec);
    received->insert(received->end(), buffer.begin(), buffer.begin() + n);
    if (ec == asio::error::eof || ec == asio::error::connection_reset) {
      return true;
    }
    if (ec) return false;  // would block: the 20 s bound
  }
  return false;
}

TEST_F(TlsTest, HandshakeTimeoutClosesAClientThatSendsNoClientHello) {
  InProcessServerOptions o = ServerWith("server");
  o.server.connection.tls_handshake_timeout = std::chrono::milliseconds(300);
  InProcessServer server(o);
  ASSERT_TRUE(server.status().ok()) << server.status().ToString();
  std::vector<uint8_t> received;
  EXPECT_TRUE(ServerCloses(server.port(), {}, &received));
  EXPECT_TRUE(received.empty());
}

TEST_F(TlsTest, PlaintextFrameToTheTlsPortIsClosedUnanswered) {
  InProcessServer server(ServerWith("server"));
  ASSERT_TRUE(server.status().ok()) << server.status().ToString();
  proto::Request hello;
  hello.body = proto::HelloRequest{.client_name = "plaintext",
                                   .protocol_version = kProtocolVersion};
  std::vector<uint8_t> frame;
  AppendFrame(&frame, FrameKind::kRequest, 1, EncodeRequest(hello));
  std::vector<uint8_t> received;
  EXPECT_TRUE(ServerCloses(server.port(), frame, &received));
  // At most a TLS alert (content type 21), never a tally reply.
  if (!received.empty()) {
    EXPECT_EQ(received[0], 21);
  }
}

TEST_F(TlsTest, ServerRefusesToStartWithBadTlsFiles) {
  auto start_error = [](InProcessServerOptions o) {
    InProcessServer server(std::move(o));
    return server.status().ToString();
  };
  InProcessServerOptions missing = ServerWith("server");
  missing.server.tls.cert_file = Pki("absent.pem");
  EXPECT_NE(start_error(missing).find("absent.pem"), std::string::npos);

  InProcessServerOptions no_key = ServerWith("server");
  no_key.server.tls.key_file.clear();
  EXPECT_NE(start_error(no_key).find("--tls_key_file"), std::string::npos);

  InProcessServerOptions mismatch = ServerWith("server");
  mismatch.server.tls.key_file = Pki("wrong_host.key");
  EXPECT_NE(start_error(mismatch).find("mismatch"), std::string::npos)
      << start_error(mismatch);

  InProcessServerOptions no_ca = ServerWith("server");
  no_ca.server.tls.require_client_cert = true;
  EXPECT_NE(start_error(no_ca).find("--tls_client_ca_file"), std::string::npos);

  // A key other users can read: refused, with the fix.
  const std::string open_key = Pki("open.key");
  std::filesystem::copy_file(Pki("server.key"), open_key);
  ASSERT_EQ(chmod(open_key.c_str(), 0644), 0);
  InProcessServerOptions readable = ServerWith("server");
  readable.server.tls.key_file = open_key;
  EXPECT_NE(start_error(readable).find("chmod 600"), std::string::npos);
  // Group-readable only: accepted with a warning.
  ASSERT_EQ(chmod(open_key.c_str(), 0640), 0);
  EXPECT_EQ(start_error(readable), "OK");
}

}  // namespace
}  // namespace tally
