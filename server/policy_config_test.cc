#include "server/policy_config.h"

#include <gtest/gtest.h>

namespace tally {
namespace {

TEST(PolicyConfigTest, ParsesPoliciesWithQuotedTiersAndComments) {
  auto set = ParsePolicyConfig(R"(
# tally policies
default  tiers="1s x 1h, 1m x 24h" lateness=1h skew=2s
ip       prefix=ip:   tiers="1s x 10m, 1m x 2h"  distinct=off   # trailing comment
card     prefix=card: distinct=on
)");
  ASSERT_TRUE(set.ok()) << set.status().ToString();
  const Policy& d = set->default_policy();
  EXPECT_EQ(FormatTiers(d.tiers), "1s x 1h, 1m x 1d");
  EXPECT_EQ(d.max_lateness_ms, kHourMs);
  EXPECT_EQ(d.max_skew_ms, 2 * kSecondMs);
  EXPECT_EQ(set->Match("ip:1.2.3.4").name, "ip");
  EXPECT_FALSE(set->Match("ip:1.2.3.4").track_distinct);
  EXPECT_EQ(set->Match("card:9").tiers, Policy().tiers);  // built-in tiers
  EXPECT_EQ(set->Match("user:1").name, "default");
}

TEST(PolicyConfigTest, EmptyFileMeansBuiltInDefaults) {
  auto set = ParsePolicyConfig("\n# nothing\n");
  ASSERT_TRUE(set.ok());
  EXPECT_EQ(set->default_policy().tiers, Policy().tiers);
}

TEST(PolicyConfigTest, ErrorsNameTheLine) {
  struct Case {
    const char* text;
    const char* needle;
  };
  for (const Case& c : {
           Case{"default tiers=\"1s x 2h\nip prefix=ip: bogus=1", "line 1"},
           Case{"ip prefix=ip: bogus=1", "unknown setting"},
           Case{"\n\nip tiers=\"1m x 1h\"",
                "line 3: policy 'ip' needs prefix="},
           Case{"default prefix=x:", "no prefix"},
           Case{"ip prefix=ip: tiers=\"1h x 1m\"", "line 1"},
           Case{"ip prefix=ip: distinct=maybe", "on or off"},
           Case{"ip prefix=ip: lateness=5w", "unknown unit"},
           Case{"a prefix=x:\nb prefix=x:", "share the prefix"},
           Case{"default\ndefault", "second 'default'"},
           Case{"ip prefix=ip: noequals", "not key=value"},
       }) {
    auto set = ParsePolicyConfig(c.text);
    ASSERT_FALSE(set.ok()) << c.text;
    EXPECT_NE(set.status().message().find(c.needle), std::string_view::npos)
        << set.status().message();
  }
}

TEST(PolicyConfigTest, MissingFileIsAnIoError) {
  EXPECT_EQ(LoadPolicyFile("/nonexistent/tally.policies").status().code(),
            Code::kIoError);
}

TEST(PolicyConfigTest, DiffNamesEveryChangeAndSaysWhenTiersChange) {
  auto running = ParsePolicyConfig(
      "default tiers=\"1s x 2h\"\n"
      "ip prefix=ip: tiers=\"1s x 10m\" distinct=off lateness=1h\n"
      "gone prefix=g:");
  ASSERT_TRUE(running.ok()) << running.status().ToString();
  EXPECT_TRUE(DiffPolicies(*running, *running).empty());
  auto file = ParsePolicyConfig(
      "default tiers=\"1s x 2h\"\n"
      "ip prefix=ip: tiers=\"1s x 1h\" distinct=on lateness=2h skew=1s\n"
      "card prefix=card:");
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  const std::vector<std::string> diff = DiffPolicies(*running, *file);
  std::string all;
  for (const std::string& line : diff) all += line + "\n";
  EXPECT_EQ(diff.size(), 6u) << all;
  EXPECT_NE(all.find("policy 'ip': tiers 1s x 10m -> 1s x 1h (refused "
                     "while a stored key has this policy"),
            std::string::npos)
      << all;
  EXPECT_NE(all.find("policy 'ip': distinct off -> on"), std::string::npos);
  EXPECT_NE(all.find("policy 'ip': lateness 1h -> 2h"), std::string::npos)
      << all;
  EXPECT_NE(all.find("policy 'ip': skew 5s -> 1s"), std::string::npos) << all;
  EXPECT_NE(all.find("policy 'gone' removed"), std::string::npos);
  EXPECT_NE(all.find("policy 'card' added (prefix 'card:'"), std::string::npos);
}

}  // namespace
}  // namespace tally
