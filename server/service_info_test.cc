// INFO's per-command sections (clients, commandstats, errorstats,
// latencystats) and the allocator fields, through a real server and client.

#include <gtest/gtest.h>

#include <string>

#include "client/tally/client.h"
#include "server/in_process_server.h"

namespace tally {
namespace {

class ServiceInfoTest : public ::testing::Test {
 protected:
  ServiceInfoTest() : server_(Options()), client_(ClientFor(server_.port())) {
    EXPECT_TRUE(server_.status().ok()) << server_.status().ToString();
  }

  static InProcessServerOptions Options() {
    InProcessServerOptions o;
    o.server.port = 0;
    o.server.threads = 1;
    return o;
  }
  static ClientOptions ClientFor(uint16_t port) {
    ClientOptions o;
    o.endpoints = {Endpoint{.host = "127.0.0.1", .port = port}};
    o.default_timeout = std::chrono::seconds(10);
    o.connect_timeout = std::chrono::milliseconds(5000);
    o.retry.max_attempts = 1;
    return o;
  }

  CallResult<proto::Response> Info(const std::string& section) {
    proto::Request request;
    request.body = proto::InfoRequest{section};
    return client_.Call(request);
  }
  std::string InfoText(const std::string& section) {
    CallResult<proto::Response> r = Info(section);
    EXPECT_TRUE(r.ok()) << r.message;
    if (!r.ok()) return "";
    return std::get<proto::InfoResult>(r.value.body).text;
  }

  InProcessServer server_;
  Client client_;
};

bool HasLine(const std::string& text, const std::string& prefix) {
  return text.find("\n" + prefix) != std::string::npos ||
         text.rfind(prefix, 0) == 0;
}

TEST_F(ServiceInfoTest, CommandStatsCountCallsFailuresAndLatency) {
  ASSERT_TRUE(client_.Add("user:1", 5).ok());
  ASSERT_TRUE(client_.Add("user:1", 7).ok());
  ASSERT_TRUE(client_.Query("user:1", 60'000).ok());
  EXPECT_EQ(Info("no_such_section").code, Code::kInvalidArgument);

  const std::string commands = InfoText("commandstats");
  EXPECT_TRUE(HasLine(commands, "# Commandstats\n"));
  EXPECT_TRUE(HasLine(commands, "cmdstat_add:calls=2,")) << commands;
  EXPECT_TRUE(HasLine(commands, "cmdstat_query:calls=1,")) << commands;
  // The failed INFO is counted; this INFO is not (recorded once answered).
  EXPECT_NE(commands.find("cmdstat_info:calls=1,"), std::string::npos)
      << commands;
  EXPECT_NE(commands.find(",failed_calls=1\n"), std::string::npos) << commands;
  EXPECT_EQ(InfoText("commandstats").find("cmdstat_info:calls=1,"),
            std::string::npos);  // now 2 calls

  const std::string errors = InfoText("errorstats");
  EXPECT_TRUE(HasLine(errors, "errorstat_INVALID_ARGUMENT:count=1\n"))
      << errors;

  const std::string latency = InfoText("latencystats");
  EXPECT_TRUE(HasLine(latency, "latency_percentiles_usec_add:p50=")) << latency;
  EXPECT_NE(latency.find(",p99.9="), std::string::npos);
}

TEST_F(ServiceInfoTest, ConfigResetstatForgetsCommandStats) {
  ASSERT_TRUE(client_.Add("user:1", 5).ok());
  ASSERT_NE(InfoText("commandstats").find("cmdstat_add:"), std::string::npos);
  proto::Request reset;
  reset.body = proto::AdminRequest{.args = {"CONFIG", "RESETSTAT"}};
  CallResult<proto::Response> r = client_.Call(reset);
  ASSERT_TRUE(r.ok()) << r.message;
  // Only the RESETSTAT itself is left: it is recorded when its reply is
  // queued, after the reset (and an INFO never counts itself).
  const std::string commands = InfoText("commandstats");
  EXPECT_EQ(commands.find("cmdstat_add:"), std::string::npos) << commands;
  EXPECT_EQ(commands.find("cmdstat_info:"), std::string::npos) << commands;
  EXPECT_TRUE(HasLine(commands, "cmdstat_admin:calls=1,")) << commands;
}

TEST_F(ServiceInfoTest, ClientsAndMemorySections) {
  const std::string clients = InfoText("clients");
  EXPECT_TRUE(HasLine(clients, "connected_clients:")) << clients;
  EXPECT_TRUE(HasLine(clients, "total_connections_received:"));
  EXPECT_TRUE(HasLine(clients, "rejected_connections:0"));
  EXPECT_TRUE(HasLine(clients, "inflight_requests:1"));  // this INFO
  // Test binaries link no jemalloc: the allocator says so and its figures
  // are omitted, never zeros.
  const std::string memory = InfoText("memory");
  EXPECT_TRUE(HasLine(memory, "allocator:libc")) << memory;
  EXPECT_FALSE(HasLine(memory, "allocator_allocated:"));
}

TEST_F(ServiceInfoTest, AllHasTheNewSectionsAndKeepsTheOld) {
  const std::string all = InfoText("");
  for (const char* section :
       {"# Server", "# Clients", "# Memory", "# Keyspace", "# Stats",
        "# Limits", "# Persistence", "# Commandstats", "# Errorstats",
        "# Latencystats"}) {
    EXPECT_NE(all.find(section), std::string::npos) << section;
  }
  EXPECT_EQ(all.find("# Debug"), std::string::npos);
  CallResult<proto::Response> bad = Info("nope");
  EXPECT_NE(bad.message.find("commandstats, errorstats, latencystats"),
            std::string::npos)
      << bad.message;
}

}  // namespace
}  // namespace tally
