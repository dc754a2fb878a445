// SlowLog: the requests that took longer than a threshold, newest first,
// as Redis' SLOWLOG keeps them (docs/operations.md, "SLOWLOG"). A request's
// duration runs from its frame being read to its reply being ready, so a
// mutation's includes its WAL write (and fsync).
//
// The threshold and the length live in atomics with setters so they can be
// changed at run time (CONFIG SET); the ring itself is behind a mutex, which
// only slow requests reach: the request path pays one relaxed load and a
// compare (IsSlow).
//
// Thread safety: every method may be called from any thread.

#ifndef TALLY_SERVER_SLOW_LOG_H_
#define TALLY_SERVER_SLOW_LOG_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <vector>

namespace tally {

struct SlowLogOptions {
  // Microseconds; negative disables the log, 0 logs every request (Redis'
  // slowlog-log-slower-than).
  int64_t log_slower_than_us = 10000;
  int64_t max_len = 128;  // entries kept; older ones are dropped
};

struct SlowLogEntry {
  uint64_t id = 0;  // grows from 0 for the server's life (RESET keeps it)
  int64_t unix_time_s = 0;
  int64_t duration_us = 0;
  std::vector<std::string> args;  // truncated as in Redis
  std::string client_addr;
  std::string client_name;
};

class SlowLog {
 public:
  // Redis' limits: at most 32 arguments (the last one then says how many
  // more there were), each at most 128 bytes (then "... (N more bytes)").
  static constexpr size_t kMaxArgs = 32;
  static constexpr size_t kMaxArgBytes = 128;

  explicit SlowLog(SlowLogOptions options = {});
  SlowLog(const SlowLog&) = delete;
  SlowLog& operator=(const SlowLog&) = delete;

  void set_log_slower_than_us(int64_t us) {
    slower_than_us_.store(us, std::memory_order_relaxed);
  }
  int64_t log_slower_than_us() const {
    return slower_than_us_.load(std::memory_order_relaxed);
  }
  // Shrinking drops the oldest entries at the next Add (Redis does too).
  void set_max_len(int64_t n) { max_len_.store(n, std::memory_order_relaxed); }
  int64_t max_len() const { return max_len_.load(std::memory_order_relaxed); }

  // Whether a request of this duration is logged.
  bool IsSlow(int64_t duration_us) const {
    const int64_t threshold = log_slower_than_us();
    return threshold >= 0 && duration_us >= threshold;
  }
  void Add(const std::vector<std::string>& args, int64_t duration_us,
           std::string client_addr, std::string client_name,
           int64_t unix_time_s);
  // The newest `count` entries, newest first (count < 0: all).
  std::vector<SlowLogEntry> Get(int64_t count) const;
  size_t Len() const;
  void Reset();

  static std::vector<std::string> Truncate(
      const std::vector<std::string>& args);

 private:
  std::atomic<int64_t> slower_than_us_;
  std::atomic<int64_t> max_len_;
  mutable std::mutex mu_;
  std::deque<SlowLogEntry> entries_;  // newest first; guarded by mu_
  uint64_t next_id_ = 0;              // guarded by mu_
};

}  // namespace tally

#endif  // TALLY_SERVER_SLOW_LOG_H_
