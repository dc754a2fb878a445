// tally-floor-bench: the physical floor tally's figures are compared against
// (PERFORMANCE.md, "Peers", item 3), measured on this machine in this run.
//
// 1. Loopback TCP round trip: closed-loop ping-pong of a fixed-size message
//    between a client thread and an echo thread over 127.0.0.1, TCP_NODELAY,
//    blocking read/write. Latency runs from the first byte queued to the last
//    byte received. Three placements (unpinned, both threads on CPU 0, client
//    on CPU 0 and echo on CPU 1), because on a VM the cross-core wake-up
//    dominates; then N concurrent pairs, the ceiling of a closed-loop request
//    rate at C = N. No server can answer a request faster than this.
// 2. In-process hash-map lookup+increment over W1's Zipf key stream: with
//    std::unordered_map<std::string, int64_t> and with a flat open-addressing
//    table of uint64 ids. No engine can count events faster per core than this.
//
// Host steal time varies from minute to minute: compare tally against these
// figures from the same run, never across days.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <latch>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "fmt/format.h"
#include "tools/bench/latency_histogram.h"
#include "tools/bench/w1.h"

namespace {

using Clock = std::chrono::steady_clock;
using tally::bench::LatencyHistogram;

struct FloorOptions {
  int message_bytes = 64;
  double seconds = 3.0;
  double warmup_seconds = 0.5;
  int connections = 8;
  uint64_t keys = 1'000'000;
  uint64_t events = 4'000'000;
  uint64_t seed = 1;
};

// One round-trip measurement: `per_sec` is summed over all pairs.
struct RttResult {
  bool ran = false;
  double per_sec = 0;
  double p50_us = 0;
  double p99_us = 0;
  double p999_us = 0;
};

struct MapResult {
  double ops_per_sec = 0;
  double ns_per_op = 0;
  uint64_t distinct_keys = 0;
  bool checked = false;  // Sum of counts == increments made.
};

// Pins the calling thread to `cpu`; cpu < 0 leaves it unpinned.
bool PinThisThread(int cpu) {
  if (cpu < 0) return true;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  return pthread_setaffinity_np(pthread_self(), sizeof(set), &set) == 0;
}

bool CpuAllowed(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) != 0) return false;
  return CPU_ISSET(cpu, &set);
}

// Reads or writes exactly `n` bytes; false on EOF or error.
bool ReadFull(int fd, char* buf, size_t n) {
  while (n > 0) {
    const ssize_t r = ::read(fd, buf, n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    buf += r;
    n -= static_cast<size_t>(r);
  }
  return true;
}

bool WriteFull(int fd, const char* buf, size_t n) {
  while (n > 0) {
    const ssize_t r = ::write(fd, buf, n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    buf += r;
    n -= static_cast<size_t>(r);
  }
  return true;
}

void SetNoDelay(int fd) {
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

// Opens `pairs` connected loopback socket pairs (client fd, server fd)
// through a listener on a kernel-picked port. Empty on failure.
std::vector<std::pair<int, int>> ConnectPairs(int pairs, std::string* error) {
  std::vector<std::pair<int, int>> fds;
  const int listener = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  if (listener < 0 ||
      ::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::listen(listener, pairs) != 0 ||
      ::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    *error = fmt::format("listen on 127.0.0.1: {}", std::strerror(errno));
    if (listener >= 0) ::close(listener);
    return {};
  }
  for (int i = 0; i < pairs; ++i) {
    // Loopback connect completes against the backlog before accept runs.
    const int client = ::socket(AF_INET, SOCK_STREAM, 0);
    if (client < 0 || ::connect(client, reinterpret_cast<sockaddr*>(&addr),
                                sizeof(addr)) != 0) {
      *error = fmt::format("connect: {}", std::strerror(errno));
      if (client >= 0) ::close(client);
      break;
    }
    const int server = ::accept(listener, nullptr, nullptr);
    if (server < 0) {
      *error = fmt::format("accept: {}", std::strerror(errno));
      ::close(client);
      break;
    }
    SetNoDelay(client);
    SetNoDelay(server);
    fds.emplace_back(client, server);
  }
  ::close(listener);
  if (static_cast<int>(fds.size()) != pairs) {
    for (auto [c, s] : fds) ::close(c), ::close(s);
    fds.clear();
  }
  return fds;
}

// Runs `pairs` closed-loop ping-pong pairs; every client on `client_cpu`,
// every echo thread on `server_cpu` (-1: unpinned).
std::optional<RttResult> MeasureRtt(const FloorOptions& options, int pairs,
                                    int client_cpu, int server_cpu,
                                    std::string* error) {
  std::vector<std::pair<int, int>> fds = ConnectPairs(pairs, error);
  if (fds.empty()) return std::nullopt;

  const size_t size = static_cast<size_t>(options.message_bytes);
  std::vector<LatencyHistogram> histograms(pairs);
  std::vector<uint64_t> counts(pairs, 0);
  std::atomic<bool> failed{false};
  std::latch start(pairs);
  Clock::time_point measure_from, measure_to;
  std::once_flag clock_set;
  std::vector<std::thread> threads;

  for (int i = 0; i < pairs; ++i) {
    const int server_fd = fds[i].second;
    threads.emplace_back([&, server_fd] {
      if (!PinThisThread(server_cpu)) failed = true;
      std::vector<char> buf(size);
      while (ReadFull(server_fd, buf.data(), size) &&
             WriteFull(server_fd, buf.data(), size)) {
      }
      ::close(server_fd);
    });
  }
  for (int i = 0; i < pairs; ++i) {
    const int client_fd = fds[i].first;
    threads.emplace_back([&, i, client_fd] {
      if (!PinThisThread(client_cpu)) failed = true;
      std::vector<char> out(size, 'x'), in(size);
      start.arrive_and_wait();
      std::call_once(clock_set, [&] {
        const auto now = Clock::now();
        measure_from =
            now + std::chrono::duration_cast<Clock::duration>(
                      std::chrono::duration<double>(options.warmup_seconds));
        measure_to =
            measure_from + std::chrono::duration_cast<Clock::duration>(
                               std::chrono::duration<double>(options.seconds));
      });
      LatencyHistogram& histogram = histograms[i];
      uint64_t count = 0;
      for (;;) {
        const auto t0 = Clock::now();
        if (t0 >= measure_to) break;
        if (!WriteFull(client_fd, out.data(), size) ||
            !ReadFull(client_fd, in.data(), size)) {
          failed = true;
          break;
        }
        if (t0 >= measure_from) {
          histogram.Record(static_cast<uint64_t>(
              std::chrono::duration_cast<std::chrono::nanoseconds>(
                  Clock::now() - t0)
                  .count()));
          ++count;
        }
      }
      counts[i] = count;
      ::shutdown(client_fd, SHUT_RDWR);  // Ends the echo thread's loop.
      ::close(client_fd);
    });
  }
  for (std::thread& t : threads) t.join();
  if (failed) {
    *error = "pinning or a round trip failed";
    return std::nullopt;
  }

  LatencyHistogram all;
  uint64_t total = 0;
  for (int i = 0; i < pairs; ++i) {
    all.Merge(histograms[i]);
    total += counts[i];
  }
  RttResult result;
  result.ran = true;
  result.per_sec = static_cast<double>(total) / options.seconds;
  result.p50_us = static_cast<double>(all.ValueAtPercentile(50)) / 1e3;
  result.p99_us = static_cast<double>(all.ValueAtPercentile(99)) / 1e3;
  result.p999_us = static_cast<double>(all.ValueAtPercentile(99.9)) / 1e3;
  return result;
}

// Times `pass` (one sweep over the pre-generated events) after one untimed
// sweep, repeating until `seconds` have passed.
template <typename Pass>
MapResult TimePasses(double seconds, uint64_t events, Pass pass) {
  pass();  // Populates the map: the timed sweeps are steady state.
  uint64_t ops = 0;
  const auto t0 = Clock::now();
  double elapsed = 0;
  do {
    pass();
    ops += events;
    elapsed = std::chrono::duration<double>(Clock::now() - t0).count();
  } while (elapsed < seconds);
  MapResult result;
  result.ops_per_sec = static_cast<double>(ops) / elapsed;
  result.ns_per_op = elapsed * 1e9 / static_cast<double>(ops);
  return result;
}

// Heterogeneous lookup, so the hot path hashes the key's bytes in place and
// copies them only on insert.
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const {
    return std::hash<std::string_view>{}(s);
  }
};

MapResult MeasureUnorderedMap(const FloorOptions& options,
                              const std::vector<uint64_t>& ids) {
  // Keys laid out in fixed 24-byte slots: byte 0 the length, then the bytes.
  constexpr size_t kSlot = 24;
  std::vector<char> keys(ids.size() * kSlot);
  for (size_t i = 0; i < ids.size(); ++i) {
    char buf[32];
    const std::string_view key = tally::bench::W1::Key(ids[i], buf);
    keys[i * kSlot] = static_cast<char>(key.size());
    std::memcpy(&keys[i * kSlot + 1], key.data(), key.size());
  }
  std::unordered_map<std::string, int64_t, StringHash, std::equal_to<>> map;
  uint64_t increments = 0;
  MapResult result = TimePasses(options.seconds, ids.size(), [&] {
    for (size_t i = 0; i < ids.size(); ++i) {
      const char* slot = &keys[i * kSlot];
      const std::string_view key(slot + 1, static_cast<uint8_t>(slot[0]));
      auto it = map.find(key);
      if (it == map.end()) it = map.emplace(std::string(key), 0).first;
      ++it->second;
    }
    increments += ids.size();
  });
  int64_t sum = 0;
  for (const auto& [key, count] : map) sum += count;
  result.distinct_keys = map.size();
  result.checked = static_cast<uint64_t>(sum) == increments;
  return result;
}

// Linear probing over a power-of-two array of (id, count) slots; ~0 marks an
// empty slot (W1 ids are < keys). Sized for a load factor <= 1/2.
class FlatCounter {
 public:
  explicit FlatCounter(uint64_t max_keys) {
    uint64_t capacity = 16;
    while (capacity < 2 * max_keys) capacity *= 2;
    slots_.assign(capacity, Slot{kEmpty, 0});
    mask_ = capacity - 1;
  }

  void Increment(uint64_t id) {
    for (uint64_t i = Mix(id) & mask_;; i = (i + 1) & mask_) {
      Slot& slot = slots_[i];
      if (slot.id == id) {
        ++slot.count;
        return;
      }
      if (slot.id == kEmpty) {
        slot = Slot{id, 1};
        ++size_;
        return;
      }
    }
  }

  uint64_t size() const { return size_; }
  int64_t Sum() const {
    int64_t sum = 0;
    for (const Slot& slot : slots_) sum += slot.count;
    return sum;
  }

 private:
  struct Slot {
    uint64_t id;
    int64_t count;
  };
  static constexpr uint64_t kEmpty = ~uint64_t{0};

  // The murmur3 / splitmix64 finalizer: every input bit reaches the low bits.
  static uint64_t Mix(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
  }

  std::vector<Slot> slots_;
  uint64_t mask_ = 0;
  uint64_t size_ = 0;
};

MapResult MeasureFlatMap(const FloorOptions& options,
                         const std::vector<uint64_t>& ids) {
  FlatCounter table(options.keys);
  uint64_t increments = 0;
  MapResult result = TimePasses(options.seconds, ids.size(), [&] {
    for (uint64_t id : ids) table.Increment(id);
    increments += ids.size();
  });
  result.distinct_keys = table.size();
  result.checked = static_cast<uint64_t>(table.Sum()) == increments;
  return result;
}

void PrintRttRow(std::string_view name, const RttResult& r) {
  if (!r.ran) {
    fmt::print("  {:<28} {:>12}\n", name, "skipped");
    return;
  }
  fmt::print("  {:<28} {:>12.0f} {:>9.1f} {:>9.1f} {:>9.1f}\n", name, r.per_sec,
             r.p50_us, r.p99_us, r.p999_us);
}

void AddRtt(nlohmann::json& j, const std::string& prefix, const RttResult& r) {
  if (!r.ran) {
    j[prefix + "_per_sec"] = nullptr;
    j[prefix + "_p50_us"] = nullptr;
    j[prefix + "_p99_us"] = nullptr;
    j[prefix + "_p999_us"] = nullptr;
    return;
  }
  j[prefix + "_per_sec"] = r.per_sec;
  j[prefix + "_p50_us"] = r.p50_us;
  j[prefix + "_p99_us"] = r.p99_us;
  j[prefix + "_p999_us"] = r.p999_us;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "tally-floor-bench: loopback round trip and in-process hash-map "
      "floors (PERFORMANCE.md, Peers, item 3)"};
  FloorOptions options;
  bool json = false;
  app.add_option("--message-bytes", options.message_bytes,
                 "Bytes per ping and per echo (default 64: about one small "
                 "tally request)")
      ->check(CLI::Range(1, 1 << 20));
  app.add_option("--seconds", options.seconds,
                 "Measured seconds per round-trip placement and per map "
                 "(default 3: enough samples for a stable p999)")
      ->check(CLI::Range(0.1, 3600.0));
  app.add_option("--warmup", options.warmup_seconds,
                 "Untimed seconds before each round-trip measurement "
                 "(default 0.5)")
      ->check(CLI::Range(0.0, 600.0));
  app.add_option("--connections,-c", options.connections,
                 "Concurrent ping-pong pairs for the multi-connection row "
                 "(default 8: W1's C = 8)")
      ->check(CLI::Range(1, 1024));
  app.add_option("--keys,-k", options.keys,
                 "W1 key space K for the map floor (default 1,000,000: W1)")
      ->check(CLI::Range(uint64_t{1}, uint64_t{1} << 32));
  app.add_option("--events", options.events,
                 "Pre-generated W1 ids swept per map pass (default 4,000,000: "
                 "far larger than the caches)")
      ->check(CLI::Range(uint64_t{1}, uint64_t{1} << 30));
  app.add_option("--seed", options.seed, "Random seed for the W1 id stream");
  app.add_flag("--json", json, "Print one final JSON object after the table");
  CLI11_PARSE(app, argc, argv);

  const bool two_cpus = CpuAllowed(0) && CpuAllowed(1);
  std::string error;
  auto rtt = [&](int pairs, int client_cpu, int server_cpu) {
    std::optional<RttResult> r =
        MeasureRtt(options, pairs, client_cpu, server_cpu, &error);
    if (!r) {
      std::cerr << "tally-floor-bench: " << error << "\n";
      std::exit(1);
    }
    return *r;
  };
  const RttResult unpinned = rtt(1, -1, -1);
  const RttResult same_cpu = CpuAllowed(0) ? rtt(1, 0, 0) : RttResult{};
  const RttResult cross_cpu = two_cpus ? rtt(1, 0, 1) : RttResult{};
  const RttResult multi = rtt(options.connections, -1, -1);

  tally::bench::W1 w1(tally::bench::W1Config{.keys = options.keys});
  std::mt19937_64 rng(options.seed);
  std::vector<uint64_t> ids(options.events);
  for (uint64_t& id : ids) id = w1.DrawId(rng);
  const MapResult unordered = MeasureUnorderedMap(options, ids);
  const MapResult flat = MeasureFlatMap(options, ids);
  const bool ok = unordered.checked && flat.checked;

  fmt::print(
      "tally-floor-bench: {} B messages, closed loop, {:.1f} s per row, "
      "{} CPUs\n",
      options.message_bytes, options.seconds,
      std::thread::hardware_concurrency());
  fmt::print("  {:<28} {:>12} {:>9} {:>9} {:>9}\n", "loopback round trip",
             "trips/s", "p50 µs", "p99 µs", "p999 µs");
  PrintRttRow("unpinned", unpinned);
  PrintRttRow("same CPU (0, 0)", same_cpu);
  PrintRttRow("cross CPU (0, 1)", cross_cpu);
  PrintRttRow(fmt::format("{} connections, unpinned", options.connections),
              multi);
  fmt::print("  {:<28} {:>12} {:>9} {:>9}\n", "W1 map lookup+increment",
             "M ops/s", "ns/op", "keys");
  fmt::print("  {:<28} {:>12.2f} {:>9.1f} {:>9}\n", "unordered_map<string>",
             unordered.ops_per_sec / 1e6, unordered.ns_per_op,
             unordered.distinct_keys);
  fmt::print("  {:<28} {:>12.2f} {:>9.1f} {:>9}\n", "flat open addressing",
             flat.ops_per_sec / 1e6, flat.ns_per_op, flat.distinct_keys);
  if (!ok) fmt::print("  selfcheck FAILED: map counts do not add up\n");

  if (json) {
    nlohmann::json j;
    j["message_bytes"] = options.message_bytes;
    j["seconds"] = options.seconds;
    j["closed_loop"] = true;
    AddRtt(j, "rtt_unpinned", unpinned);
    AddRtt(j, "rtt_same_cpu", same_cpu);
    AddRtt(j, "rtt_cross_cpu", cross_cpu);
    j["rtt_multi_connections"] = options.connections;
    j["rtt_multi_per_sec"] = multi.per_sec;
    j["rtt_multi_p50_us"] = multi.p50_us;
    j["rtt_multi_p99_us"] = multi.p99_us;
    j["map_keys"] = options.keys;
    j["map_unordered_ops_per_sec"] = unordered.ops_per_sec;
    j["map_unordered_ns_per_op"] = unordered.ns_per_op;
    j["map_flat_ops_per_sec"] = flat.ops_per_sec;
    j["map_flat_ns_per_op"] = flat.ns_per_op;
    j["selfcheck"] = ok ? "ok" : "map counts do not add up";
    std::cout << j.dump() << std::endl;
  }
  return ok ? 0 : 1;
}
