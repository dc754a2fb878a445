#include "storage/hot_keys.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <thread>

namespace tally {
namespace {

// exp() of more than this would lose the small counts' precision against
// the large ones (and overflow near 709): rebase the landmark first.
constexpr double kMaxExponent = 30;

}  // namespace

HotKeys::HotKeys(HotKeysOptions options)
    : options_(options),
      per_stripe_(std::max<size_t>(1, options.capacity / kStripes)),
      threshold_(options.sample_every == 0
                     ? 0
                     : (uint64_t{1} << 32) / options.sample_every) {
  options_.window_ms = std::max<int64_t>(1, options_.window_ms);
  for (Stripe& s : stripes_) {
    s.entries.reserve(per_stripe_);
    s.index.reserve(per_stripe_ * 2);
  }
}

uint64_t HotKeys::SeedThread() {
  // Distinct per thread and never 0 (xorshift's fixed point).
  static std::atomic<uint64_t> next{0x9E3779B97F4A7C15ULL};
  uint64_t seed = next.fetch_add(0x9E3779B97F4A7C15ULL) ^
                  std::hash<std::thread::id>{}(std::this_thread::get_id());
  return seed == 0 ? 1 : seed;
}

void HotKeys::Rebase(Stripe& stripe, int64_t now_ms) const {
  const double factor =
      std::exp(-static_cast<double>(now_ms - stripe.landmark_ms) /
               static_cast<double>(options_.window_ms));
  for (Entry& e : stripe.entries) {
    e.count *= factor;
    e.error *= factor;
  }
  stripe.landmark_ms = now_ms;
}

void HotKeys::Record(std::string_view key, int64_t now_ms) {
  Stripe& stripe = stripes_[std::hash<std::string_view>{}(key) % kStripes];
  std::lock_guard lock(stripe.mu);
  if (!stripe.started) {
    stripe.landmark_ms = now_ms;
    stripe.started = true;
  }
  double exponent = static_cast<double>(now_ms - stripe.landmark_ms) /
                    static_cast<double>(options_.window_ms);
  if (exponent > kMaxExponent) {
    Rebase(stripe, now_ms);
    exponent = 0;
  }
  const double weight = std::exp(exponent);
  if (auto it = stripe.index.find(key); it != stripe.index.end()) {
    stripe.entries[it->second].count += weight;
    return;
  }
  if (stripe.entries.size() < per_stripe_) {
    stripe.index.emplace(std::string(key),
                         static_cast<uint32_t>(stripe.entries.size()));
    stripe.entries.push_back({std::string(key), weight, 0});
    return;
  }
  // Full: the new key takes the smallest entry's place and count (which
  // becomes its error bound). A linear scan: only on a sampled add of a key
  // not tracked, over per_stripe_ (32 by default) entries.
  auto smallest = std::min_element(
      stripe.entries.begin(), stripe.entries.end(),
      [](const Entry& a, const Entry& b) { return a.count < b.count; });
  const auto slot = static_cast<uint32_t>(smallest - stripe.entries.begin());
  stripe.index.erase(smallest->key);
  smallest->key.assign(key);
  smallest->error = smallest->count;
  smallest->count += weight;
  stripe.index.emplace(smallest->key, slot);
}

std::vector<HotKey> HotKeys::Top(size_t n, int64_t now_ms) const {
  std::vector<HotKey> all;
  const double window_s = static_cast<double>(options_.window_ms) / 1000.0;
  const double per_sample = static_cast<double>(options_.sample_every);
  for (const Stripe& stripe : stripes_) {
    std::lock_guard lock(stripe.mu);
    if (!stripe.started) continue;
    const double decay =
        std::exp(-static_cast<double>(now_ms - stripe.landmark_ms) /
                 static_cast<double>(options_.window_ms));
    for (const Entry& e : stripe.entries) {
      all.push_back({.key = e.key,
                     .adds_per_sec = e.count * decay * per_sample / window_s,
                     .error_per_sec = e.error * decay * per_sample / window_s});
    }
  }
  const size_t keep = std::min(n, all.size());
  std::partial_sort(all.begin(), all.begin() + static_cast<ptrdiff_t>(keep),
                    all.end(), [](const HotKey& a, const HotKey& b) {
                      if (a.adds_per_sec != b.adds_per_sec) {
                        return a.adds_per_sec > b.adds_per_sec;
                      }
                      return a.key < b.key;
                    });
  all.resize(keep);
  return all;
}

void HotKeys::Reset() {
  for (Stripe& stripe : stripes_) {
    std::lock_guard lock(stripe.mu);
    stripe.entries.clear();
    stripe.index.clear();
    stripe.started = false;
  }
}

}  // namespace tally
