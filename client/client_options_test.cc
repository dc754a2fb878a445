#include <gtest/gtest.h>

#include "client/tally/client.h"

namespace tally {
namespace {

using std::chrono::microseconds;
using std::chrono::milliseconds;

TEST(ClientOptionsTest, FullUri) {
  Result<ClientOptions> o = ClientOptions::FromUri(
      "tally://h1:7379,h2:7380?timeout=5ms&connect_timeout=100ms&pool_size=3"
      "&max_in_flight=64&retries=2&fallback=last_known");
  ASSERT_TRUE(o.ok()) << o.status().ToString();
  ASSERT_EQ(o->endpoints.size(), 2u);
  EXPECT_EQ(o->endpoints[0].host, "h1");
  EXPECT_EQ(o->endpoints[0].port, 7379);
  EXPECT_EQ(o->endpoints[1].host, "h2");
  EXPECT_EQ(o->endpoints[1].port, 7380);
  EXPECT_EQ(o->default_timeout, microseconds(5000));
  EXPECT_EQ(o->connect_timeout, milliseconds(100));
  EXPECT_EQ(o->connections_per_endpoint, 3);
  EXPECT_EQ(o->max_in_flight, 64);
  EXPECT_EQ(o->retry.max_attempts, 3);  // retries after the first
  EXPECT_EQ(o->fallback, Fallback::kLastKnown);
}

TEST(ClientOptionsTest, DefaultsPortsAndIpv6) {
  Result<ClientOptions> o =
      ClientOptions::FromUri("tally://10.0.0.1,[::1]:9000,[fe80::2]");
  ASSERT_TRUE(o.ok()) << o.status().ToString();
  ASSERT_EQ(o->endpoints.size(), 3u);
  EXPECT_EQ(o->endpoints[0].port, 7379);
  EXPECT_EQ(o->endpoints[1].host, "::1");
  EXPECT_EQ(o->endpoints[1].port, 9000);
  EXPECT_EQ(o->endpoints[2].host, "fe80::2");
  EXPECT_EQ(o->endpoints[2].port, 7379);
  EXPECT_EQ(o->fallback, Fallback::kError);
}

TEST(ClientOptionsTest, UnixSocketHost) {
  Result<ClientOptions> o = ClientOptions::FromUri(
      "tally://unix:/run/tally/tally.sock,h2:7380?timeout=5ms");
  ASSERT_TRUE(o.ok()) << o.status().ToString();
  ASSERT_EQ(o->endpoints.size(), 2u);
  EXPECT_EQ(o->endpoints[0].host, "unix:/run/tally/tally.sock");
  EXPECT_EQ(EndpointName(o->endpoints[0]), "unix:/run/tally/tally.sock");
  EXPECT_EQ(EndpointName(o->endpoints[1]), "h2:7380");
  for (const char* bad : {"tally://unix:", "tally://unix:relative.sock"}) {
    Result<ClientOptions> r = ClientOptions::FromUri(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.status().message().find("absolute path"), std::string::npos)
        << r.status().message();
  }
}

TEST(ClientOptionsTest, NoHostKeepsTheDefaultEndpoint) {
  Result<ClientOptions> o = ClientOptions::FromUri("tally://?timeout=2s");
  ASSERT_TRUE(o.ok()) << o.status().ToString();
  ASSERT_EQ(o->endpoints.size(), 1u);
  EXPECT_EQ(o->endpoints[0].host, "127.0.0.1");
  EXPECT_EQ(o->default_timeout, microseconds(2'000'000));
  Result<ClientOptions> slash = ClientOptions::FromUri("tally://h:1/");
  ASSERT_TRUE(slash.ok());
  EXPECT_EQ(slash->endpoints[0].port, 1);
}

TEST(ClientOptionsTest, DurationsUnitsAndOtherParams) {
  Result<ClientOptions> o = ClientOptions::FromUri(
      "tally://h?timeout=750us&fallback=default&client_name=risk/3"
      "&auto_ids=0&breaker=0&retries=0");
  ASSERT_TRUE(o.ok()) << o.status().ToString();
  EXPECT_EQ(o->default_timeout, microseconds(750));
  EXPECT_EQ(o->fallback, Fallback::kDefaultValue);
  EXPECT_EQ(o->client_name, "risk/3");
  EXPECT_FALSE(o->auto_idempotency_ids);
  EXPECT_FALSE(o->breaker.enabled);
  EXPECT_EQ(o->retry.max_attempts, 1);
}

TEST(ClientOptionsTest, Errors) {
  for (const char* bad : {
           "redis://h:1",                   // scheme
           "h1:7379",                       // no scheme
           "tally://h:0",                   // port range
           "tally://h:65536",               //
           "tally://h:x",                   // port syntax
           "tally://h:",                    // empty port
           "tally://h1,,h2",                // empty host
           "tally://[::1",                  // bracket
           "tally://h?timeout=5",           // unit missing
           "tally://h?timeout=5h",          // unknown unit
           "tally://h?timeout=0ms",         // not positive
           "tally://h?pool_size=0",         //
           "tally://h?max_in_flight=-1",    //
           "tally://h?retries=x",           //
           "tally://h?fallback=maybe",      //
           "tally://h?colour=blue",         // unknown parameter
           "tally://h?timeout",             // no value
           "tally://h?retries=1&retries=2"  // twice
       }) {
    Result<ClientOptions> o = ClientOptions::FromUri(bad);
    EXPECT_FALSE(o.ok()) << bad;
    if (!o.ok()) {
      EXPECT_EQ(o.status().code(), Code::kInvalidArgument) << bad;
    }
  }
}

TEST(ClientOptionsTest, Names) {
  EXPECT_EQ(DegradedName(Degraded::kShortCircuited), "short_circuited");
  EXPECT_EQ(DegradedName(Degraded::kNo), "no");
  EXPECT_EQ(CircuitStateName(CircuitState::kHalfOpen), "half_open");
  EXPECT_EQ(CircuitStateName(CircuitState::kForcedOpen), "forced_open");
}

TEST(BatchTest, BuildsAddsThenQueriesInOrder) {
  Batch b;
  EXPECT_TRUE(b.empty());
  b.Add("user:1", 1250, "card:9", 0, 1, "evt-1")
      .Add("user:2")
      .Query("user:1", 60'000)
      .Query("card:9", 3'600'000, proto::kAggDistinctBit, 1'700'000'000'000)
      .QueryBetween("user:2", 1000, 2000, proto::kAggSumBit);
  EXPECT_FALSE(b.empty());
  ASSERT_EQ(b.adds().size(), 2u);
  EXPECT_EQ(b.adds()[0].key, "user:1");
  EXPECT_EQ(b.adds()[0].amount, 1250);
  EXPECT_EQ(b.adds()[0].member, "card:9");
  EXPECT_EQ(b.adds()[0].id, "evt-1");
  EXPECT_EQ(b.adds()[1].count, 1);
  EXPECT_FALSE(b.adds()[1].member.has_value());
  EXPECT_FALSE(b.adds()[1].id.has_value());
  ASSERT_EQ(b.queries().size(), 3u);
  EXPECT_EQ(b.queries()[0], proto::QueryItem::Last("user:1", 60'000));
  EXPECT_EQ(b.queries()[1].aggs, proto::kAggDistinctBit);
  EXPECT_EQ(b.queries()[1].at_ms, 1'700'000'000'000);
  EXPECT_EQ(b.queries()[2],
            proto::QueryItem::Between("user:2", 1000, 2000, proto::kAggSumBit));
}

TEST(BatchTest, KeysAreBinarySafe) {
  Batch b;
  const std::string key("a\0b", 3);
  b.Add(key).Query(key, 1000);
  EXPECT_EQ(b.adds()[0].key.size(), 3u);
  EXPECT_EQ(b.queries()[0].key, key);
}

}  // namespace
}  // namespace tally
