// Configured caps of tallyd (RELIABILITY.md F4, F5; docs/hardening.md):
// key length and batch size refused with the existing codes, byte sizes in
// flags, the frame decoder giving its buffer back, the memory cap (new keys
// refused, existing ones still counting, the same state after replay) and
// descriptor exhaustion (a tallyd child under a low RLIMIT_NOFILE; TALLYD
// names the binary). The connection limits P3-P9 are in
// tests/limits_test.cc. Figures are printed ("figure ...") for
// docs/hardening.md, never asserted against a wall-clock threshold.

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "protocol/frame.h"
#include "server/flags.h"
#include "server/in_process_server.h"
#include "server/process_stats.h"
#include "tests/limits_harness.h"
#include "tests/support/tallyd_process.h"

namespace tally {
namespace {

using namespace limits_test;  // NOLINT(build/namespaces): the harness

// --- key length and batch size
// ---------------------------------------------------

TEST(LimitsTest, ConfiguredKeyAndBatchLimitsRefuseWithTheExistingCodes) {
  InProcessServerOptions options = Options();
  options.service.max_key_bytes = 16;
  options.service.max_batch_items = 3;
  InProcessServer server(options);
  ASSERT_TRUE(server.status().ok());
  Client client(server.port());
  proto::AddRequest add;
  add.items.resize(2);
  add.items[0].key = std::string(16, 'a');
  add.items[1].key = std::string(17, 'b');
  auto r = client.Call(Req(add));
  ASSERT_TRUE(r.has_value());
  ASSERT_EQ(r->code, Code::kOk);
  const auto& items = std::get<proto::AddResult>(r->body).items;
  EXPECT_EQ(items[0].code, Code::kOk);
  EXPECT_EQ(items[1].code, Code::kInvalidKey);
  EXPECT_NE(items[1].message.find("--max_key_bytes"), std::string::npos);
  auto q = client.Call(Query(std::string(17, 'b')));
  ASSERT_TRUE(q.has_value());
  EXPECT_EQ(std::get<proto::QueryResult>(q->body).items[0].code,
            Code::kInvalidKey);
  add.items.resize(4);
  for (auto& item : add.items) item.key = "k";
  r = client.Call(Req(add));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->code, Code::kResourceExhausted);
  EXPECT_EQ(server.engine().Stats().adds, 1u);  // nothing else applied
  EXPECT_GT(client.TimedPing(), -1);            // the connection stays
  EXPECT_EQ(InfoField(client, "rejected_key_too_long"), 2u);
  EXPECT_EQ(InfoField(client, "rejected_batch_too_large"), 1u);
}

TEST(LimitsTest, ByteSizesParseWithSuffixes) {
  EXPECT_EQ(*ParseByteSize("0"), 0);
  EXPECT_EQ(*ParseByteSize("123"), 123);
  EXPECT_EQ(*ParseByteSize("64k"), 64 << 10);
  EXPECT_EQ(*ParseByteSize("64M"), int64_t{64} << 20);
  EXPECT_EQ(*ParseByteSize("2G"), int64_t{2} << 30);
  EXPECT_FALSE(ParseByteSize("").ok());
  EXPECT_FALSE(ParseByteSize("M").ok());
  EXPECT_FALSE(ParseByteSize("-1").ok());
  EXPECT_FALSE(ParseByteSize("1.5G").ok());
  EXPECT_FALSE(ParseByteSize("99999999999999999G").ok());
}

TEST(LimitsTest, DecoderShrinkFreesTheBufferOnlyWhenDrained) {
  FrameDecoder decoder(kDefaultMaxFrameBody, FrameKind::kRequest);
  const std::vector<uint8_t> frame = RequestFrame(1, Req(proto::PingRequest{}));
  ASSERT_EQ(decoder.Append({frame.data(), 10}), 10u);
  const size_t held = decoder.capacity();
  EXPECT_GT(held, 0u);
  decoder.Shrink();  // a partial frame: kept
  EXPECT_EQ(decoder.capacity(), held);
  ASSERT_EQ(decoder.Append({frame.data() + 10, frame.size() - 10}),
            frame.size() - 10);
  Result<std::optional<Frame>> next = decoder.Next();
  ASSERT_TRUE(next.ok() && next->has_value());
  decoder.Shrink();  // drained: freed
  EXPECT_EQ(decoder.capacity(), 0u);
  ASSERT_EQ(decoder.Append(frame), frame.size());  // and usable again
  next = decoder.Next();
  ASSERT_TRUE(next.ok() && next->has_value());
  EXPECT_EQ((*next)->header.request_id, 1u);
}

// --- F5: memory cap
// ---------------------------------------------------------------

TEST(LimitsTest, EngineMemoryBytesTracksStats) {
  ManualClock clock(1'700'000'000'000);
  EngineOptions options;
  options.clock = &clock;
  Engine engine(options);
  EXPECT_EQ(engine.memory_bytes(), engine.Stats().bytes);
  for (int i = 0; i < 2000; ++i) {
    const std::string key = "key:" + std::to_string(i);
    AddEvent e;
    e.key = key;
    ASSERT_TRUE(engine.Add(e).ok());
    if (i % 500 == 0) {
      EXPECT_EQ(engine.memory_bytes(), engine.Stats().bytes);
    }
  }
  EXPECT_EQ(engine.memory_bytes(), engine.Stats().bytes);
  for (int i = 0; i < 1000; ++i) engine.Delete("key:" + std::to_string(i));
  EXPECT_EQ(engine.memory_bytes(), engine.Stats().bytes);
  EXPECT_TRUE(engine.Contains("key:1500"));
  EXPECT_FALSE(engine.Contains("key:1"));
  clock.Advance(int64_t{500} * 24 * 3600 * 1000);  // past every retention
  engine.Sweep();
  EXPECT_EQ(engine.Stats().keys, 0u);
  EXPECT_EQ(engine.memory_bytes(), engine.Stats().bytes);
}

TEST(LimitsTest, F5MemoryCapRefusesNewKeysKeepsCountingAndReplaysTheSame) {
  const std::string dir = std::filesystem::temp_directory_path() /
                          ("tally-limits-f5-" + std::to_string(getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  InProcessServerOptions options = Options();
  options.data_dir = dir;
  options.durability.mode = DurabilityMode::kOs;
  // TALLY_F5_MAX_MEMORY=64M runs RELIABILITY.md's full-size figure.
  options.service.max_memory = 512 << 10;
  if (const char* env = std::getenv("TALLY_F5_MAX_MEMORY")) {
    if (Result<int64_t> cap = ParseByteSize(env); cap.ok() && *cap > 0) {
      options.service.max_memory = *cap;
    }
  }
  constexpr int kBatch = 500;
  uint64_t digest = 0, keys_at_cap = 0;
  {
    InProcessServer server(options);
    ASSERT_TRUE(server.status().ok()) << server.status().ToString();
    Client client(server.port());
    const int64_t rss_start = ProcessRssBytes();
    uint64_t accepted = 0, refused = 0;
    for (int b = 0; b < 100'000 && refused == 0; ++b) {
      proto::AddRequest batch;
      for (int k = 0; k < kBatch; ++k) {
        proto::AddItem item;
        item.key = "f5:" + std::to_string(b * kBatch + k);
        batch.items.push_back(std::move(item));
      }
      auto r = client.Call(Req(batch));
      ASSERT_TRUE(r.has_value());
      ASSERT_EQ(r->code, Code::kOk) << r->message;
      for (const auto& item : std::get<proto::AddResult>(r->body).items) {
        if (item.code == Code::kResourceExhausted) {
          EXPECT_NE(item.message.find("OOM: max_memory reached"),
                    std::string::npos);
          ++refused;
        } else {
          ASSERT_EQ(item.code, Code::kOk) << item.message;
          ++accepted;
        }
      }
    }
    ASSERT_GT(refused, 0u);
    ASSERT_GT(accepted, 0u);
    keys_at_cap = server.engine().Stats().keys;
    EXPECT_EQ(keys_at_cap, accepted);
    const int64_t rss_growth = ProcessRssBytes() - rss_start;
    // Existing keys keep counting; reads keep working; new keys stay out.
    for (int round = 0; round < 3; ++round) {
      auto r = client.Call(Add("f5:0", 10));
      ASSERT_EQ(std::get<proto::AddResult>(r->body).items[0].code, Code::kOk);
      auto n = client.Call(Add("f5:new:" + std::to_string(round)));
      EXPECT_EQ(std::get<proto::AddResult>(n->body).items[0].code,
                Code::kResourceExhausted);
    }
    auto q = client.Call(Query("f5:0"));
    ASSERT_TRUE(q.has_value());
    EXPECT_EQ(std::get<proto::QueryResult>(q->body).items[0].answer.count, 4);
    EXPECT_FALSE(server.engine().Contains("f5:new:0"));
    EXPECT_EQ(InfoField(client, "rejected_max_memory"), refused + 3);
    const int64_t bytes = server.engine().memory_bytes();
    std::printf(
        "figure F5 max_memory=%lld keys_at_cap=%llu engine_bytes=%lld "
        "bytes_per_key=%.0f rejected=%llu rss_growth=%lld "
        "rss_growth_over_cap=%.2f (server and client in one process)\n",
        static_cast<long long>(options.service.max_memory),
        static_cast<unsigned long long>(keys_at_cap),
        static_cast<long long>(bytes),
        static_cast<double>(bytes) / static_cast<double>(keys_at_cap),
        static_cast<unsigned long long>(refused + 3),
        static_cast<long long>(rss_growth),
        static_cast<double>(rss_growth) /
            static_cast<double>(options.service.max_memory));
    // Soft by at most one batch of new keys (decided per request).
    EXPECT_LE(bytes, options.service.max_memory + kBatch * 256);
    digest = server.engine().Digest();
  }
  // Replay (no cap now): the same keys, the same state, nothing refused.
  options.service.max_memory = 0;
  {
    InProcessServer server(options);
    ASSERT_TRUE(server.status().ok()) << server.status().ToString();
    EXPECT_EQ(server.engine().Stats().keys, keys_at_cap);
    EXPECT_EQ(server.engine().Digest(), digest);
    EXPECT_FALSE(server.engine().Contains("f5:new:0"));
  }
  std::filesystem::remove_all(dir);
}

// --- F4: descriptor exhaustion (a tallyd child)
// -------------------------------

TEST(LimitsTest, F4DescriptorExhaustionRefusesCleanlyWithoutSpinning) {
  if (std::getenv("TALLYD") == nullptr) GTEST_SKIP() << "TALLYD not set";
  if (RaiseNofile(800) < 800) GTEST_SKIP() << "RLIMIT_NOFILE below 800 here";
  test::TallydProcess server;
  ASSERT_TRUE(server.Start({.binary = std::getenv("TALLYD"),
                            .flags = {"--threads=2", "--durability=os"},
                            .log_file = "",  // its log in the test's output
                            .max_open_files = 256}))
      << server.output();
  Client first(server.port());
  ASSERT_GT(first.TimedPing(), -1);
  const uint64_t max_connections = InfoField(first, "max_connections");
  EXPECT_EQ(max_connections, 256u - 64u);  // clamped, logged at start

  constexpr int kHeld = 600;
  const double cpu_before = server.CpuSeconds();
  const auto start = SteadyClock::now();
  std::vector<std::unique_ptr<Client>> held;
  for (int i = 0; i < kHeld; ++i) {
    held.push_back(std::make_unique<Client>(server.port()));
    ASSERT_TRUE(held.back()->ok()) << i;
  }
  // Hold them for 2 s, then count: served ones answer, refused ones were
  // told and closed.
  std::this_thread::sleep_for(std::chrono::seconds(2));
  const double cpu = server.CpuSeconds() - cpu_before;
  const double seconds = Ms(SteadyClock::now() - start) / 1000;
  int served = 0, refused = 0;
  for (auto& c : held) {
    auto r = c->Call(Req(proto::PingRequest{}));
    if (r && r->code == Code::kOk) {
      ++served;
    } else {
      ++refused;
    }
  }
  EXPECT_EQ(served, static_cast<int>(max_connections) - 1);  // `first` too
  EXPECT_EQ(refused, kHeld - served);
  // The WAL still takes writes (its descriptors were reserved).
  auto add = first.Call(Add("f4"));
  ASSERT_TRUE(add.has_value());
  EXPECT_EQ(std::get<proto::AddResult>(add->body).items[0].code, Code::kOk);
  const uint64_t retries = InfoField(first, "accept_retries");
  EXPECT_EQ(retries, 0u) << "accept hit EMFILE despite the reserve";
  EXPECT_EQ(InfoField(first, "rejected_max_connections"),
            static_cast<uint64_t>(refused));
  std::printf(
      "figure F4 nofile=256 held=%d served=%d refused=%d "
      "cpu_percent_of_one_core=%.1f accept_retries=%llu\n",
      kHeld + 1, served + 1, refused, 100 * cpu / seconds,
      static_cast<unsigned long long>(retries));
  // Recovery once the client lets go.
  const auto release = SteadyClock::now();
  held.clear();
  EXPECT_TRUE(
      WaitFor([&] { return InfoField(first, "connections_current") == 1; }));
  std::vector<std::unique_ptr<Client>> again;
  for (int i = 0; i < 100; ++i) {
    again.push_back(std::make_unique<Client>(server.port()));
    ASSERT_GT(again.back()->TimedPing(), -1) << i;
  }
  std::printf("figure F4 recovery_ms=%.1f\n", Ms(SteadyClock::now() - release));
}

}  // namespace
}  // namespace tally
