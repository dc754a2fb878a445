// The shared helpers of the F3 slow-disk tests (tests/fault/slow_disk_test.cc:
// no false ack and bounded latency; slow_disk_busy_test.cc: the BUSY path;
// slow_disk_interval_test.cc: interval mode): the episode's schedule,
// one-connection clients, the fsync-delay file, INFO persistence parsing and
// a poller of it and of the server's RSS. Header-only; tests only.
// TALLY_F3_FULL=1 stretches the main episode to RELIABILITY.md's 200 ms-5 s
// for 30 s.

#ifndef TALLY_TESTS_FAULT_SLOW_DISK_HARNESS_H_
#define TALLY_TESTS_FAULT_SLOW_DISK_HARNESS_H_

#include <gtest/gtest.h>
#include <sys/types.h>
#include <tally/client.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <variant>
#include <vector>

#include "tests/crash/crash_harness.h"

namespace tally::crash {

using std::chrono::milliseconds;

// TALLY_F3_FULL=1: RELIABILITY.md's full schedule (200 ms-5 s for 30 s);
// by default a short one, so the ctest run stays ~15 s.
inline bool FullScale() { return EnvOr("TALLY_F3_FULL") == "1"; }
inline constexpr int64_t kMinDelayMs = 200;
inline const int64_t kMaxDelayMs = FullScale() ? 5000 : 1000;
inline const milliseconds kSlowFor(FullScale() ? 30'000 : 5000);
// A client waits at most one fsync in flight plus its own group's.
inline const milliseconds kClientTimeout(std::max<int64_t>(10'000,
                                                           4 * kMaxDelayMs));
inline constexpr int kSyncConnections = 6;
// Adds in flight on the pipelining connection.
inline constexpr int kAsyncWindow = 64;
inline constexpr int kKeys = 50;

// "field" of /proc/<pid>/status in KiB, or -1.
inline int64_t ProcStatusKib(pid_t pid, const std::string& field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) {
      return std::atoll(line.c_str() + field.size() + 1);
    }
  }
  return -1;
}

// Replaces the file atomically (the server reads it at every fsync).
inline void WriteFile(const std::string& path, const std::string& text) {
  {
    std::ofstream out(path + ".tmp", std::ios::trunc);
    out << text;
  }
  std::rename((path + ".tmp").c_str(), path.c_str());
}

inline ClientOptions OneConnection(uint16_t port, milliseconds timeout) {
  ClientOptions options;
  options.endpoints = {{"127.0.0.1", port}};
  options.connections_per_endpoint = 1;
  options.default_timeout = timeout;
  options.connect_timeout = milliseconds(2000);
  options.breaker.enabled = false;
  options.retry.max_attempts = 1;  // an outcome per send, nothing hidden
  options.client_name = "f3-slow-disk";
  return options;
}

struct Ack {
  SteadyClock::time_point sent, acked;
  uint64_t lsn = 0;
};

// The options of a tallyd in `dir` run with `flags`, whose fdatasyncs are
// delayed as the file *delay_file (dir/fsync_delay, created empty: no delay
// yet) says.
inline StartOptions SlowDiskStart(const TempDir& dir,
                                  std::vector<std::string> flags,
                                  std::string* delay_file) {
  *delay_file = dir.path() + "/fsync_delay";
  WriteFile(*delay_file, "");
  StartOptions start;
  start.binary = EnvOr("TALLYD");
  start.data_dir = dir.path() + "/data";
  start.flags = std::move(flags);
  start.extra_env = {"TALLY_FAULT_FSYNC_DELAY_FILE=" + *delay_file};
  start.log_path = dir.path() + "/tallyd.log";
  return start;
}

// The outcomes of single adds, recorded from any thread; read once the load
// has stopped.
struct AckLog {
  explicit AckLog(int keys) : acked_per_key(keys, 0) {}
  void Record(SteadyClock::time_point sent, int key,
              const CallResult<proto::AddItemResult>& r) {
    std::lock_guard<std::mutex> lock(mu);
    if (r.ok() && r.value.code == Code::kOk) {
      acks.push_back({sent, SteadyClock::now(), r.value.lsn});
      ++acked_per_key[key];
    } else {
      ++failed;
      if (first_failure.empty()) {
        first_failure = r.ok() ? r.value.message : r.message;
      }
    }
  }

  std::mutex mu;
  std::atomic<int64_t> attempted{0};
  std::vector<Ack> acks;
  std::vector<int64_t> acked_per_key;
  int64_t failed = 0;
  std::string first_failure;
};

// Synchronous adds of 1 on one connection until `stop` (at most 1,000,000):
// the i-th to key (offset + i) % kKeys, named prefix + key.
inline void SyncAdds(uint16_t port, milliseconds timeout,
                     const std::string& prefix, int offset,
                     const std::atomic<bool>& stop, AckLog* log) {
  Client client(OneConnection(port, timeout));
  for (int i = 0; !stop.load() && i < 1'000'000; ++i) {
    const int key = (offset + i) % kKeys;
    ++log->attempted;
    const auto sent = SteadyClock::now();
    log->Record(sent, key, client.Add(prefix + std::to_string(key), 1));
  }
}

// At most `size` async calls in flight (a pipelining client). Declare it
// before the Client: the client's destructor may still run callbacks.
class InFlightWindow {
 public:
  explicit InFlightWindow(int size) : size_(size) {}
  // Takes a slot, waiting up to 200 ms for one; false if none (the caller
  // checks whether to stop, then tries again).
  bool Acquire() {
    std::unique_lock<std::mutex> lock(mu_);
    if (!cv_.wait_for(lock, milliseconds(200),
                      [&] { return in_flight_ < size_; })) {
      return false;
    }
    ++in_flight_;
    return true;
  }
  // From the call's callback.
  void Release() {
    std::lock_guard<std::mutex> lock(mu_);
    --in_flight_;
    cv_.notify_one();
  }
  // Waits up to `timeout` for every call in flight to complete.
  void Drain(milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, timeout, [&] { return in_flight_ == 0; });
  }

 private:
  const int size_;
  std::mutex mu_;
  std::condition_variable cv_;
  int in_flight_ = 0;
};

inline bool ParseInfo(const std::string& text,
                      std::map<std::string, std::string>* f) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    const size_t colon = line.find(':');
    if (line.empty() || line[0] == '#' || colon == std::string::npos) continue;
    (*f)[line.substr(0, colon)] = line.substr(colon + 1);
  }
  return f->count("durable_lsn") > 0;
}
// INFO persistence and the server's RSS every 20 ms, on its own connection,
// until destroyed.
class InfoPoller {
 public:
  struct Sample {
    SteadyClock::time_point issued;
    uint64_t durable_lsn = 0, queue_bytes = 0, rejected_busy = 0;
  };
  InfoPoller(uint16_t port, pid_t pid) : pid_(pid) {
    rss_peak_kib_ = ProcStatusKib(pid_, "VmRSS");
    thread_ = std::thread([this, port] {
      Client client(OneConnection(port, milliseconds(5000)));
      proto::Request request;
      request.body = proto::InfoRequest{"persistence"};
      while (!stop_.load()) {
        const auto issued = SteadyClock::now();
        CallResult<proto::Response> r = client.Call(request);
        const auto* info =
            r.ok() ? std::get_if<proto::InfoResult>(&r.value.body) : nullptr;
        std::map<std::string, std::string> f;
        if (info != nullptr && ParseInfo(info->text, &f)) {
          Sample s;
          s.issued = issued;
          s.durable_lsn = std::stoull(f["durable_lsn"]);
          s.queue_bytes = std::stoull(f["wal_queue_bytes"]);
          s.rejected_busy = std::stoull(f["rejected_busy"]);
          std::lock_guard<std::mutex> lock(mu_);
          samples_.push_back(s);
        }
        const int64_t rss = ProcStatusKib(pid_, "VmRSS");
        {
          std::lock_guard<std::mutex> lock(mu_);
          rss_peak_kib_ = std::max(rss_peak_kib_, rss);
        }
        std::this_thread::sleep_for(milliseconds(20));
      }
    });
  }
  ~InfoPoller() { Stop(); }
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  // After Stop(): in issue order.
  const std::vector<Sample>& samples() const { return samples_; }
  int64_t rss_peak_kib() const { return rss_peak_kib_; }
  uint64_t queue_peak() const {
    uint64_t peak = 0;
    for (const Sample& s : samples_) peak = std::max(peak, s.queue_bytes);
    return peak;
  }
  // The first sample issued at or after `t`, or null.
  const Sample* FirstAfter(SteadyClock::time_point t) const {
    auto it = std::lower_bound(samples_.begin(), samples_.end(), t,
                               [](const Sample& s, SteadyClock::time_point x) {
                                 return s.issued < x;
                               });
    return it == samples_.end() ? nullptr : &*it;
  }

 private:
  const pid_t pid_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::vector<Sample> samples_;
  int64_t rss_peak_kib_ = 0;
  std::thread thread_;
};

// INFO persistence on a new connection into *f; false if there was no
// answer or it lacked durable_lsn.
inline bool FinalInfo(uint16_t port, std::map<std::string, std::string>* f) {
  Client client(OneConnection(port, milliseconds(5000)));
  proto::Request request;
  request.body = proto::InfoRequest{"persistence"};
  CallResult<proto::Response> r = client.Call(request);
  const auto* info =
      r.ok() ? std::get_if<proto::InfoResult>(&r.value.body) : nullptr;
  return info != nullptr && ParseInfo(info->text, f);
}

// No false acks: the first INFO sample issued after an ack must name a
// durable_lsn covering the ack's LSN (an ack before its fsync would show a
// lower one). checked: the acks followed by a sample.
struct DurabilityCheck {
  int64_t checked = 0, violations = 0;
};
inline DurabilityCheck CheckAcksDurable(const std::vector<Ack>& acks,
                                        const InfoPoller& poller) {
  DurabilityCheck result;
  for (const Ack& a : acks) {
    if (const InfoPoller::Sample* s = poller.FirstAfter(a.acked)) {
      ++result.checked;
      if (s->durable_lsn < a.lsn) ++result.violations;
    }
  }
  return result;
}

// The final state: each key's count over the last hour equals its
// acknowledged adds; *read_total and *acked_total are their sums. Call under
// ASSERT_NO_FATAL_FAILURE (a failed query stops the test).
inline void ExpectCountsEqualAcks(
    uint16_t port, const std::vector<int64_t>& acked_per_key,
    const std::function<std::string(int)>& key_name, int64_t* read_total,
    int64_t* acked_total) {
  *read_total = 0;
  *acked_total = 0;
  Client client(OneConnection(port, milliseconds(5000)));
  for (int k = 0; k < static_cast<int>(acked_per_key.size()); ++k) {
    CallResult<proto::Aggregates> q = client.Query(key_name(k), 3'600'000);
    ASSERT_TRUE(q.ok()) << q.message;
    EXPECT_EQ(q.value.count, acked_per_key[k]) << "key " << key_name(k);
    *read_total += q.value.count;
    *acked_total += acked_per_key[k];
  }
}

// The end of a run, once the load has stopped: the final counts checked
// against the acks (ExpectCountsEqualAcks), INFO persistence (it must
// answer), the server's peak RSS (VmHWM), then SIGTERM; timed_out: it had
// not exited after 30 s. Call under ASSERT_NO_FATAL_FAILURE.
struct RunEnd {
  int64_t read_total = 0, acked_total = 0;
  std::map<std::string, std::string> info;
  int64_t hwm_kib = 0;
  bool timed_out = false;
};
inline void EndRun(TallydProcess& server,
                   const std::vector<int64_t>& acked_per_key,
                   const std::function<std::string(int)>& key_name,
                   RunEnd* end) {
  ASSERT_NO_FATAL_FAILURE(ExpectCountsEqualAcks(server.port(), acked_per_key,
                                                key_name, &end->read_total,
                                                &end->acked_total));
  ASSERT_TRUE(FinalInfo(server.port(), &end->info));
  end->hwm_kib = ProcStatusKib(server.pid(), "VmHWM");
  double stop_seconds = 0;
  server.Terminate(milliseconds(30'000), &stop_seconds, &end->timed_out);
}

}  // namespace tally::crash

#endif  // TALLY_TESTS_FAULT_SLOW_DISK_HARNESS_H_
