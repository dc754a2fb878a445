// The EngineTest fixture shared by the engine's unit tests
// (engine_test.cc: add and query; engine_keyspace_test.cc: inspect, sweep,
// delete and scan): an Engine on a ManualClock at kT0, 16 shards, the
// default policy plus any prefixed ones. Header-only; tests only.

#ifndef TALLY_STORAGE_ENGINE_TEST_UTIL_H_
#define TALLY_STORAGE_ENGINE_TEST_UTIL_H_

#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <string_view>
#include <utility>
#include <vector>

#include "storage/clock.h"
#include "storage/engine.h"

namespace tally::engine_testing {

inline constexpr int64_t kT0 = 1'700'000'000'000;  // a whole second

class EngineTest : public testing::Test {
 protected:
  EngineTest() : clock_(kT0) { Reset({}); }

  void Reset(std::vector<Policy> prefixed, uint32_t distinct_limit = 1000) {
    EngineOptions options;
    options.clock = &clock_;
    options.hash_seed = 42;
    options.shard_bits = 4;
    options.distinct_exact_limit = distinct_limit;
    auto policies = PolicySet::Create(Policy(), std::move(prefixed));
    EXPECT_TRUE(policies.ok()) << policies.status().ToString();
    options.policies = *policies;
    engine_ = std::make_unique<Engine>(std::move(options));
  }

  Status Add(std::string_view key, int64_t t = kNow, int64_t amount = 0,
             std::string_view member = {}, int64_t count = 1) {
    AddEvent e;
    e.key = key;
    e.time_ms = t;
    e.amount = amount;
    e.count = count;
    e.has_member = !member.empty();
    e.member = member;
    return engine_->Add(e).status();
  }

  Answer Last(std::string_view key, int64_t length_ms) {
    Result<Answer> a = engine_->Query(key, Window::Last(length_ms));
    EXPECT_TRUE(a.ok()) << a.status().ToString();
    return a.ok() ? *a : Answer();
  }

  ManualClock clock_;
  std::unique_ptr<Engine> engine_;
};

}  // namespace tally::engine_testing

#endif  // TALLY_STORAGE_ENGINE_TEST_UTIL_H_
