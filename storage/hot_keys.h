// HotKeys: the keys with the highest recent add rate (HOTKEYS, redis-cli's
// --hotkeys), for spotting an attack or a hot partition while it happens.
//
// Built for the add path: the caller asks ShouldSample() on every add (a
// thread-local xorshift and a compare, no shared write) and only a sampled
// add (1 in sample_every) calls Record, which takes the mutex of one of
// kStripes stripes chosen by the key's hash. With the default of 1 in 64 and
// a handful of I/O threads, two threads rarely meet on a stripe.
//
// Each stripe is a Space-Saving table (Metwally et al., "Efficient
// computation of frequent and top-k elements in data streams", 2005) whose
// counts decay exponentially with time constant window_ms, kept with
// forward decay (Cormode et al., 2009): a sample at time t weighs
// exp((t - L) / window) against the stripe's landmark L, so entries compare
// without decaying each one, and a read multiplies by exp(-(now - L) /
// window). A key whose rate is above 1 / per_stripe_capacity of its stripe's
// sampled rate is always in the table; a key that enters a full table takes
// the place (and the count, as its error bound) of the smallest entry.
//
// A steady rate r gives a decayed count of r * window (in samples), so the
// reported rate is count * sample_every / window: an estimate, a decayed
// average over about the last window, that reaches 63% of a new steady rate
// after one window. Keys live in one stripe, so stripes merge by sorting.
//
// Storage-neutral: keys are bytes, times are milliseconds the caller gives
// (any monotonic clock); no protocol types.
//
// Thread safety: every method may be called from any thread.

#ifndef TALLY_STORAGE_HOT_KEYS_H_
#define TALLY_STORAGE_HOT_KEYS_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace tally {

struct HotKeysOptions {
  // Record 1 in this many adds; 0 turns the tracker off, 1 records all.
  uint32_t sample_every = 64;
  // The decay's time constant: rates are averages over about this long.
  int64_t window_ms = 60'000;
  // Keys tracked in all (split evenly over the stripes).
  size_t capacity = 512;
};

struct HotKey {
  std::string key;
  double adds_per_sec = 0;  // estimated, decayed (see the file comment)
  // How much of adds_per_sec may be inherited from evicted keys (the
  // Space-Saving error); the true rate is at least adds_per_sec - error.
  double error_per_sec = 0;
};

class HotKeys {
 public:
  static constexpr size_t kStripes = 16;

  explicit HotKeys(HotKeysOptions options = {});
  HotKeys(const HotKeys&) = delete;
  HotKeys& operator=(const HotKeys&) = delete;

  // Whether this add should be recorded: true about once in sample_every
  // calls, at random (a fixed period could lock onto a client's fixed batch
  // order). Never true when the tracker is off.
  bool ShouldSample() const {
    if (threshold_ == 0) return false;
    thread_local uint64_t state = 0;
    if (state == 0) state = SeedThread();
    state ^= state << 13;  // xorshift64
    state ^= state >> 7;
    state ^= state << 17;
    return (state >> 32) < threshold_;
  }

  // Records one sampled add of `key` at `now_ms` (it stands for sample_every
  // adds).
  void Record(std::string_view key, int64_t now_ms);

  // The `n` keys with the highest estimated rate at `now_ms`, highest first.
  std::vector<HotKey> Top(size_t n, int64_t now_ms) const;

  // Forgets everything.
  void Reset();

  const HotKeysOptions& options() const { return options_; }

 private:
  struct Entry {
    std::string key;
    double count = 0;  // forward-decayed weights, against the landmark
    double error = 0;  // count inherited when the key replaced another
  };
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const {
      return std::hash<std::string_view>{}(s);
    }
  };
  struct Stripe {
    mutable std::mutex mu;
    int64_t landmark_ms = 0;
    bool started = false;
    std::vector<Entry> entries;
    std::unordered_map<std::string, uint32_t, Hash, std::equal_to<>> index;
  };

  static uint64_t SeedThread();
  // Rescales `stripe`'s counts to a landmark at now_ms. REQUIRES: stripe.mu.
  void Rebase(Stripe& stripe, int64_t now_ms) const;

  HotKeysOptions options_;
  size_t per_stripe_;
  uint64_t threshold_;  // sample when the top 32 random bits are below it
  std::array<Stripe, kStripes> stripes_;
};

}  // namespace tally

#endif  // TALLY_STORAGE_HOT_KEYS_H_
