#include "tools/bench/w1.h"

#include <charconv>
#include <chrono>
#include <cstring>

namespace tally::bench {

int64_t WallMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

int64_t WallSecondMs() { return WallMs() / 1000 * 1000; }

W1::W1(const W1Config& config) : config_(config), zipf_(config.keys) {}

uint64_t W1::DrawId(std::mt19937_64& rng) const {
  const double u = static_cast<double>(rng() >> 11) * 0x1.0p-53;
  return W1IdForRank(zipf_.Sample(u), config_.keys);
}

W1Event W1::MakeEvent(uint64_t id, int64_t ts_ms, std::mt19937_64& rng) const {
  const uint64_t r = rng();
  return {id, ts_ms, static_cast<int64_t>((r >> 3) % 100'000) + 1,
          id * 8 + (r & 7)};
}

int64_t W1::HistoryTime(uint64_t i) const {
  const int64_t span = (config_.w2 ? 30 : 1) * int64_t{86'400'000};
  // i * span < 2^64 for H <= 1e9 (the flag's limit).
  return config_.t0_ms - span +
         static_cast<int64_t>(i * static_cast<uint64_t>(span) /
                              config_.history);
}

std::vector<std::pair<const char*, W1Window>> W1::Windows(
    int64_t now_ms) const {
  std::vector<std::pair<const char*, W1Window>> windows = {
      {"w60", W60(now_ms)}, {"w1h", W1h(now_ms)}, {"w24h", W24h(now_ms)}};
  if (config_.w2) windows.emplace_back("w30d", W30d(now_ms));
  return windows;
}

std::string_view W1::Key(uint64_t id, char* buf) {
  std::memcpy(buf, "user:", 5);
  char* end = std::to_chars(buf + 5, buf + 32, id).ptr;
  return {buf, static_cast<size_t>(end - buf)};
}

std::string_view W1::Member(uint64_t member, char* buf) {
  char* end = std::to_chars(buf, buf + 32, member).ptr;
  return {buf, static_cast<size_t>(end - buf)};
}

}  // namespace tally::bench
