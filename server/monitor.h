// MONITOR (docs/operations.md, "MONITOR"; docs/protocol.md, "Admin (12)"):
// a connection that sends MONITOR [SAMPLE ratio] [MATCH glob] becomes a
// stream of the requests every other connection runs, one line each:
//
//   1700000000.123456 [7 127.0.0.1:50312] add "user:42"
//
// MonitorHub fans each request out to the attached MonitorSinks. While none
// is attached the request path pays one relaxed atomic load (active()).
// With monitors attached, each request is sampled per monitor with
// probability `ratio`, its first key matched against the glob (fnmatch(3);
// a request without a key does not match a MATCH), and the line formatted
// once for all the monitors that want it.
//
// Bounded: a sink holds at most `max_bytes` of lines, counting what its
// connection has not yet written; beyond that events are dropped and
// counted, and the next line delivered is preceded by one saying how many
// were lost. A monitor that cannot keep up never grows memory.
//
// Thread safety: MonitorHub and MonitorSink may be used from any thread;
// the sink's `wake` function must be thread-safe (it posts to the monitor
// connection's strand, which then calls Take).

#ifndef TALLY_SERVER_MONITOR_H_
#define TALLY_SERVER_MONITOR_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/result.h"
#include "server/command_summary.h"

namespace tally {

struct MonitorFilter {
  double sample = 1.0;  // 0..1: the share of requests shown
  std::string match;    // fnmatch(3) glob over the first key; "" = all

  // MONITOR's arguments after the name: [SAMPLE ratio] [MATCH glob], in
  // any order. INVALID_ARGUMENT naming the syntax otherwise.
  static Result<MonitorFilter> Parse(std::span<const std::string> args);

  // Whether a request with this first key (has_key false: none) passes,
  // given a uniform draw u in [0, 1).
  bool Accepts(bool has_key, std::string_view key, double u) const;
};

class MonitorSink {
 public:
  // `unwritten` reports the bytes the monitor's connection still has to
  // write (counted against max_bytes); `wake` asks the connection to Take.
  MonitorSink(uint64_t connection_id, MonitorFilter filter, size_t max_bytes,
              std::function<uint64_t()> unwritten, std::function<void()> wake);

  uint64_t connection_id() const { return connection_id_; }
  const MonitorFilter& filter() const { return filter_; }

  // Queues a line, or drops and counts it when over max_bytes. Wakes the
  // connection when the queue was empty.
  void Push(const std::string& line);
  // The queued lines, in order, preceded by a note of how many were
  // dropped since the last Take, if any. `now_line_prefix` starts that
  // note (the timestamp).
  std::vector<std::string> Take(std::string_view now_line_prefix);
  uint64_t dropped_total() const;

 private:
  const uint64_t connection_id_;
  const MonitorFilter filter_;
  const size_t max_bytes_;
  const std::function<uint64_t()> unwritten_;
  const std::function<void()> wake_;
  mutable std::mutex mu_;
  std::vector<std::string> queue_;  // guarded by mu_
  size_t queued_bytes_ = 0;         // guarded by mu_
  uint64_t dropped_ = 0;            // since the last Take; guarded by mu_
  uint64_t dropped_total_ = 0;      // guarded by mu_
  bool woken_ = false;              // a Take is due; guarded by mu_
};

class MonitorHub {
 public:
  MonitorHub() = default;
  MonitorHub(const MonitorHub&) = delete;
  MonitorHub& operator=(const MonitorHub&) = delete;

  // The request path's check: one relaxed load.
  bool active() const { return active_.load(std::memory_order_relaxed) > 0; }
  size_t size() const;

  void Add(std::shared_ptr<MonitorSink> sink);
  void Remove(const MonitorSink* sink);

  // Offers one request, run by connection `source` (addr `source_addr`) at
  // `unix_us`, to every monitor but the source's own.
  void Feed(uint64_t source, std::string_view source_addr,
            const CommandSummary& command, int64_t unix_us);

  // "1700000000.123456" for a Unix time in microseconds.
  static std::string Timestamp(int64_t unix_us);
  // The whole line Feed sends: timestamp, [id addr], then the words (the
  // op bare, its arguments quoted).
  static std::string FormatLine(uint64_t source, std::string_view source_addr,
                                const CommandSummary& command, int64_t unix_us);

 private:
  std::atomic<int> active_{0};
  mutable std::mutex mu_;
  // Copied on write, so Feed iterates without the lock.
  std::shared_ptr<const std::vector<std::shared_ptr<MonitorSink>>>
      sinks_;  // guarded by mu_
};

}  // namespace tally

#endif  // TALLY_SERVER_MONITOR_H_
