// F6 clock jumps (RELIABILITY.md 3.3, Jepsen bump/strobe): a real tallyd
// runs under libfaketime with FAKETIME_TIMESTAMP_FILE + FAKETIME_NO_CACHE, so
// the test moves its wall clock at run time (CLOCK_MONOTONIC and
// CLOCK_BOOTTIME are left alone, FAKETIME_DONT_FAKE_MONOTONIC, as NTP and
// operators leave them alone): 0,
// -1 h, +1 h, +1 day, then +-262 s strobes every 100 ms around +1 day, under
// adds at the server's time (time_ms = 0) and at client-supplied times (some
// deliberately outside the policy's [now - lateness, now + skew]).
// Pass: no crash; every count and sum read back over a wide window equals
// the sum of the accepted increments (no bucket lost, duplicated or
// corrupted, nothing negative); every rejection is TIME_OUT_OF_RANGE and
// their number equals INFO's rejected_time_out_of_range; the server's time
// as applied to time_ms = 0 adds never goes backwards on a connection; the
// interval-fsync timer keeps firing in every phase (it runs on BootClock,
// CLOCK_BOOTTIME); and D8: a kill -9 and a full WAL replay, without and then
// under a shifted clock, give the live digests. A second test times the idle
// timeout across a +1 day and a -1 h jump: it fires no earlier than its timeout
// and does not stall (BootClock timers). Skips when libfaketime is missing, and
// where it cannot run (jemalloc builds deadlock at start, as in
// replay_determinism_test). ~20 s. TALLYD: the server binary; TALLY_SEED
// replays.

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "tests/crash/crash_harness.h"

namespace tally::crash {
namespace {

using std::chrono::milliseconds;

constexpr int kKeys = 20;
constexpr int64_t kDayMs = 24LL * 3600 * 1000;

std::string FaketimeLibrary() {
  if (const char* env = std::getenv("TALLY_LIBFAKETIME"); env && *env) {
    return env;
  }
  for (const char* candidate :
       {"/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1",
        "/usr/lib/aarch64-linux-gnu/faketime/libfaketimeMT.so.1",
        "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
        "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
        "/usr/lib/faketime/libfaketime.so.1",
        "/usr/local/lib/faketime/libfaketime.so.1"}) {
    if (access(candidate, R_OK) == 0) return candidate;
  }
  return "";
}

int64_t RealNowMs() {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return int64_t{ts.tv_sec} * 1000 + ts.tv_nsec / 1000000;
}

// Replaces the offset file atomically (libfaketime reads it at every call).
void SetOffset(const std::string& path, const std::string& offset) {
  {
    std::ofstream out(path + ".tmp", std::ios::trunc);
    out << offset << "\n";
  }
  std::rename((path + ".tmp").c_str(), path.c_str());
}

ClientOptions OneConnection(uint16_t port) {
  ClientOptions options;
  options.endpoints = {{"127.0.0.1", port}};
  options.connections_per_endpoint = 1;
  options.default_timeout = milliseconds(5000);
  options.connect_timeout = milliseconds(2000);
  options.breaker.enabled = false;
  options.retry.max_attempts = 1;  // one outcome per send
  options.client_name = "f6-clock-jumps";
  return options;
}

struct KeyTotals {
  int64_t count = 0, sum = 0;
};

class ClockJumpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (EnvOr("TALLYD").empty()) GTEST_SKIP() << "TALLYD not set";
    library_ = FaketimeLibrary();
    if (library_.empty()) {
      GTEST_SKIP() << "libfaketime not found (Debian package `faketime`, "
                      "installed by tools/install-deps.sh; or set "
                      "TALLY_LIBFAKETIME)";
    }
    seed_ = TestSeed();
    std::printf("[ seed ] TALLY_SEED=%llu\n",
                static_cast<unsigned long long>(seed_));
    dir_ = std::make_unique<TempDir>("tally-f6");
    ASSERT_FALSE(dir_->path().empty());
    offset_file_ = dir_->path() + "/faketime.rc";
    start_.binary = EnvOr("TALLYD");
    start_.data_dir = dir_->path() + "/data";
    // interval: the fsync timer is one of the timers under test; snapshots
    // off and sweeps far apart so that a replay has nothing to add (as in
    // replay_determinism_test).
    start_.flags = {"--durability=interval:100", "--snapshot_interval_s=0",
                    "--sweep_interval_ms=3600000"};
    start_.log_path = dir_->path() + "/tallyd.log";
  }

  std::vector<std::string> FaketimeEnv(const std::string& faketime) const {
    std::vector<std::string> env = {
        "LD_PRELOAD=" + library_, "FAKETIME_DONT_FAKE_MONOTONIC=1",
        "ASAN_OPTIONS=" + EnvOr("ASAN_OPTIONS") + ":verify_asan_link_order=0"};
    if (faketime.empty()) {
      env.push_back("FAKETIME_TIMESTAMP_FILE=" + offset_file_);
      env.push_back("FAKETIME_NO_CACHE=1");
    } else {
      env.push_back("FAKETIME=" + faketime);
    }
    return env;
  }

  // False (and the test skipped) when the preload deadlocks before main.
  // A fresh start takes well under 10 s (the jemalloc deadlock shows as a
  // timeout); a replay of the whole WAL may take longer (TSan: ~1 ms per
  // record).
  bool StartUnderFaketime(TallydProcess& server, const std::string& faketime,
                          std::chrono::seconds ready_timeout) {
    StartOptions start = start_;
    start.extra_env = FaketimeEnv(faketime);
    start.ready_timeout = ready_timeout;
    if (server.Start(start)) return true;
    std::ifstream in(start.log_path);
    std::stringstream log;
    log << in.rdbuf();
    if (log.str().find("libfaketime: Cannot recover") != std::string::npos) {
      clash_ = true;
    } else {
      ADD_FAILURE() << "tallyd did not start under libfaketime: "
                    << server.exit_status().ToString() << "\n"
                    << log.str();
    }
    return false;
  }

  // A fresh start under libfaketime at the offset file's time; *started
  // says whether the test can go on. Skips the test when libfaketime
  // deadlocks with jemalloc; otherwise a failed start has already failed it
  // (StartUnderFaketime says why).
  void StartFresh(TallydProcess& server, bool* started) {
    *started = StartUnderFaketime(server, "", std::chrono::seconds(10));
    if (!*started && clash_) {
      GTEST_SKIP() << "libfaketime deadlocks with jemalloc before main; run "
                      "this test in a build without jemalloc (tools/build.sh "
                      "asan or tsan)";
    }
  }

  std::string library_;
  uint64_t seed_ = 0;
  std::unique_ptr<TempDir> dir_;
  std::string offset_file_;
  StartOptions start_;
  bool clash_ = false;
};

int64_t InfoInt(uint16_t port, const std::string& section,
                const std::string& field) {
  auto info = Info(port, section);
  auto it = info.find(field);
  return it == info.end() ? -1 : std::atoll(it->second.c_str());
}

TEST_F(ClockJumpTest, JumpsAndStrobesLoseNothingAndTimeNeverGoesBack) {
  SetOffset(offset_file_, "+0");
  TallydProcess server;
  bool running = false;
  StartFresh(server, &running);
  if (!running) return;
  const uint16_t port = server.port();
  // The fake clock is in effect: +1 h moves INFO's server_time_ms.
  SetOffset(offset_file_, "+1h");
  const int64_t shifted = InfoInt(port, "server", "server_time_ms");
  SetOffset(offset_file_, "+0");
  ASSERT_GT(shifted - RealNowMs(), 3'000'000)
      << "libfaketime did not move tallyd's clock at run time";
  const int64_t rejected_before =
      InfoInt(port, "stats", "rejected_time_out_of_range");

  std::atomic<bool> stop{false};
  std::mutex mu;
  std::vector<KeyTotals> accepted(kKeys);
  int64_t adds_ok = 0, rejected_time = 0, other_failures = 0;
  int64_t backwards = 0;  // server time applied to a later add went back
  std::string first_other;
  std::vector<std::thread> threads;
  // Two connections add at the server's time: the applied time_ms the
  // server answers is its clock (max(last, now)); on one connection, a
  // later add never gets an earlier time.
  for (int c = 0; c < 2; ++c) {
    threads.emplace_back([&, c] {
      Client client(OneConnection(port));
      std::mt19937_64 rng(seed_ + c);
      int64_t last_time = 0;
      for (int i = 0; !stop.load() && i < 1'000'000; ++i) {
        const int key = static_cast<int>(rng() % kKeys);
        const int64_t amount = static_cast<int64_t>(rng() % 100) + 1;
        CallResult<proto::AddItemResult> r =
            client.Add("f6:" + std::to_string(key), amount);
        std::lock_guard<std::mutex> lock(mu);
        if (r.ok() && r.value.code == Code::kOk) {
          ++adds_ok;
          accepted[key].count += 1;
          accepted[key].sum += amount;
          if (r.value.time_ms < last_time) ++backwards;
          last_time = std::max(last_time, r.value.time_ms);
        } else if (r.ok() && r.value.code == Code::kTimeOutOfRange) {
          ++rejected_time;  // not expected at the server's own time
        } else {
          ++other_failures;
          if (first_other.empty())
            first_other = r.ok() ? r.value.message : r.message;
        }
      }
    });
  }
  // Two connections add at client-supplied (real) times, in range or far
  // out of it: which ones the server accepts depends on its jumped clock.
  for (int c = 2; c < 4; ++c) {
    threads.emplace_back([&, c] {
      Client client(OneConnection(port));
      std::mt19937_64 rng(seed_ + c);
      const int64_t offsets[] = {0,         -1'000,      -1'800'000,
                                 3'600'000, -3 * kDayMs, 2 * kDayMs,
                                 -kDayMs,   262'000,     -262'000};
      for (int i = 0; !stop.load() && i < 1'000'000; ++i) {
        const int key = static_cast<int>(rng() % kKeys);
        const int64_t amount = static_cast<int64_t>(rng() % 100) + 1;
        const int64_t t =
            RealNowMs() + offsets[rng() % (sizeof(offsets) / sizeof(*offsets))];
        Batch batch;
        batch.Add("f6:" + std::to_string(key), amount, std::nullopt, t);
        CallResult<BatchResult> r = client.Execute(batch);
        std::lock_guard<std::mutex> lock(mu);
        if (!r.ok() || r.value.adds.size() != 1) {
          ++other_failures;
          if (first_other.empty()) first_other = r.message;
          continue;
        }
        const proto::AddItemResult& item = r.value.adds[0];
        if (item.code == Code::kOk) {
          ++adds_ok;
          accepted[key].count += 1;
          accepted[key].sum += amount;
        } else if (item.code == Code::kTimeOutOfRange) {
          ++rejected_time;
        } else {
          ++other_failures;
          if (first_other.empty()) first_other = item.message;
        }
      }
    });
  }

  // The clock schedule; the interval-fsync count must grow in every phase.
  struct Phase {
    const char* name;
    int64_t fsyncs = 0;
  };
  std::vector<Phase> phases;
  auto run_phase = [&](const char* name, const std::string& offset,
                       milliseconds how_long) {
    SetOffset(offset_file_, offset);
    const int64_t f0 = InfoInt(port, "persistence", "fsyncs");
    std::this_thread::sleep_for(how_long);
    phases.push_back({name, InfoInt(port, "persistence", "fsyncs") - f0});
  };
  const auto t0 = SteadyClock::now();
  run_phase("+0", "+0", milliseconds(1000));
  run_phase("-1h", "-1h", milliseconds(2000));
  run_phase("+1h", "+1h", milliseconds(2000));
  run_phase("+1d", "+1d", milliseconds(2000));
  {
    // Strobe +-262 s around +1 day every 100 ms for 5 s.
    const int64_t f0 = InfoInt(port, "persistence", "fsyncs");
    for (int i = 0; i < 50; ++i) {
      SetOffset(offset_file_, i % 2 == 0 ? "+86662" : "+86138");
      std::this_thread::sleep_for(milliseconds(100));
    }
    phases.push_back({"strobe", InfoInt(port, "persistence", "fsyncs") - f0});
  }
  stop = true;
  for (std::thread& t : threads) t.join();
  const double load_seconds =
      std::chrono::duration<double>(SteadyClock::now() - t0).count();
  ASSERT_TRUE(server.running()) << "tallyd died under clock jumps";

  // Read back over a window wide enough for every accepted time.
  const int64_t now = RealNowMs();
  int64_t mismatches = 0;
  {
    Client client(OneConnection(port));
    for (int k = 0; k < kKeys; ++k) {
      Batch batch;
      batch.QueryBetween("f6:" + std::to_string(k), now - 10 * kDayMs,
                         now + 10 * kDayMs);
      CallResult<BatchResult> r = client.Execute(batch);
      ASSERT_TRUE(r.ok()) << r.message;
      ASSERT_EQ(r.value.queries.size(), 1u);
      const proto::QueryItemResult& q = r.value.queries[0];
      ASSERT_EQ(q.code, Code::kOk) << q.message;
      EXPECT_GE(q.answer.count, 0);
      EXPECT_EQ(q.answer.count, accepted[k].count) << "key f6:" << k;
      EXPECT_EQ(q.answer.sum, accepted[k].sum) << "key f6:" << k;
      if (q.answer.count != accepted[k].count ||
          q.answer.sum != accepted[k].sum) {
        ++mismatches;
      }
    }
  }
  const int64_t rejected_server =
      InfoInt(port, "stats", "rejected_time_out_of_range") - rejected_before;

  // D8 after the jumps: kill -9, replay the WAL with the real clock, then
  // under a clock a day behind; both give the live digests.
  // Each start logs its policies (one WAL record) once recovery is done:
  // `starts` later starts have applied that many more LSNs.
  auto digests = [&](uint16_t p, uint64_t starts) {
    auto info = Info(p, "debug");
    const std::string& lsn = info["applied_lsn"];
    return info["engine_digest"] + "/" + info["dedupe_digest"] + "/" +
           (lsn.empty() ? lsn : std::to_string(std::stoull(lsn) - starts));
  };
  const std::string live = digests(port, 0);
  server.Kill9();
  StartOptions plain = start_;
  ASSERT_TRUE(server.Start(plain)) << server.exit_status().ToString();
  const std::string replayed = digests(server.port(), 1);
  server.Kill9();
  std::string replayed_shifted;
  if (StartUnderFaketime(server, "-1d", std::chrono::seconds(120))) {
    replayed_shifted = digests(server.port(), 2);
    server.Kill9();
  }

  std::printf(
      "[ figures ] F6 clock jumps: %.1f s of load, offsets 0, -1h, +1h, +1d, "
      "then +-262 s strobes every 100 ms around +1d for 5 s\n",
      load_seconds);
  std::printf(
      "[ figures ] F6 adds accepted=%lld rejected_by_time(client)=%lld "
      "rejected_time_out_of_range(INFO delta)=%lld other_failures=%lld; "
      "keys whose read != accepted: %lld; server time went back: %lld\n",
      static_cast<long long>(adds_ok), static_cast<long long>(rejected_time),
      static_cast<long long>(rejected_server),
      static_cast<long long>(other_failures),
      static_cast<long long>(mismatches), static_cast<long long>(backwards));
  std::string fsync_line;
  for (const Phase& p : phases) {
    fsync_line += std::string(" ") + p.name + "=" + std::to_string(p.fsyncs);
  }
  std::printf("[ figures ] F6 interval fsyncs per phase:%s\n",
              fsync_line.c_str());
  std::printf("[ figures ] F6 digests live=%s replay=%s replay(-1d)=%s\n",
              live.c_str(), replayed.c_str(), replayed_shifted.c_str());

  EXPECT_EQ(other_failures, 0) << first_other;
  EXPECT_GT(adds_ok, 0);
  EXPECT_GT(rejected_time, 0) << "no client time was out of range: the test "
                                 "did not exercise the check";
  EXPECT_EQ(rejected_time, rejected_server);
  EXPECT_EQ(mismatches, 0);
  EXPECT_EQ(backwards, 0) << "the server's time went backwards";
  for (const Phase& p : phases) {
    EXPECT_GT(p.fsyncs, 0) << "the fsync timer stalled in phase " << p.name;
  }
  EXPECT_FALSE(live.empty());
  EXPECT_EQ(replayed, live);
  if (!clash_) {
    EXPECT_EQ(replayed_shifted, live);
  }
}

// A TCP connection to tallyd on loopback; -1 on failure.
int ConnectTo(uint16_t port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// Seconds from `started` until tallyd closes `fd` (EOF or a reset; a reply
// before the close is read and dropped). -1: still open after `limit`.
double SecondsUntilClosed(int fd, SteadyClock::time_point started,
                          std::chrono::seconds limit) {
  struct timeval tv = {static_cast<time_t>(limit.count()), 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  char buf[256];
  for (;;) {
    const ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n > 0) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return -1;
    if (n < 0 && errno == EINTR) continue;
    return std::chrono::duration<double>(SteadyClock::now() - started).count();
  }
}

// The connection timers across wall-clock jumps. Each phase opens two
// connections at the real clock: one that sends the first byte of a frame
// and nothing more (the frame deadline, 1 s), one that sends nothing (the
// idle timeout, 2 s); then it moves tallyd's CLOCK_REALTIME by +1 day (a
// timer on the wall clock would fire at once: the frame deadline's wake-up
// would find both due and close the idle connection a second early, the
// burst) or by -1 h (a timer on the wall clock would wait an hour: the
// stall), and times both closes on the test's steady_clock. Each must come
// no earlier than its limit (exact: tallyd starts counting after `started`)
// and within a generous 60 s. The timers are on BootClock (CLOCK_BOOTTIME),
// so neither happens. Under FAKETIME_DONT_FAKE_MONOTONIC=1 libfaketime
// leaves CLOCK_MONOTONIC and CLOCK_BOOTTIME alone (libfaketime 0.9.10 fakes
// CLOCK_BOOTTIME together with CLOCK_MONOTONIC when that is unset, and then
// this test fails), so it proves that no timer reads CLOCK_REALTIME; what
// BOOTTIME adds over MONOTONIC (counting suspended time) needs a suspend
// to show.
TEST_F(ClockJumpTest, ConnectionTimersFireOnTimeAcrossWallClockJumps) {
  constexpr int kFrameSeconds = 1, kIdleSeconds = 2;
  start_.flags.push_back("--frame_timeout_ms=" +
                         std::to_string(kFrameSeconds * 1000));
  start_.flags.push_back("--idle_timeout_s=" + std::to_string(kIdleSeconds));
  SetOffset(offset_file_, "+0");
  TallydProcess server;
  bool running = false;
  StartFresh(server, &running);
  if (!running) return;
  const uint16_t port = server.port();
  SetOffset(offset_file_, "+1h");
  ASSERT_GT(InfoInt(port, "server", "server_time_ms") - RealNowMs(), 3'000'000)
      << "libfaketime did not move tallyd's clock at run time";
  SetOffset(offset_file_, "+0");

  struct Phase {
    const char* offset;
    double frame_closed_after = -1, idle_closed_after = -1;
  };
  std::vector<Phase> phases = {{"+1d"}, {"-1h"}};
  for (Phase& phase : phases) {
    SetOffset(offset_file_, "+0");
    const int64_t idle_before = InfoInt(port, "limits", "closed_idle_timeout");
    const int64_t frame_before =
        InfoInt(port, "limits", "closed_frame_timeout");
    const auto started = SteadyClock::now();
    const int partial = ConnectTo(port);
    ASSERT_GE(partial, 0) << std::strerror(errno);
    ASSERT_EQ(send(partial, "T", 1, 0), 1);  // the magic's first byte
    const int idle = ConnectTo(port);
    ASSERT_GE(idle, 0) << std::strerror(errno);
    // Jump once tallyd has both (their clocks started at accept and at the
    // byte): INFO's own connection is the third.
    for (int i = 0;
         i < 250 && InfoInt(port, "clients", "connected_clients") < 3; ++i) {
      std::this_thread::sleep_for(milliseconds(20));
    }
    SetOffset(offset_file_, phase.offset);  // tallyd's wall clock jumps
    phase.frame_closed_after =
        SecondsUntilClosed(partial, started, std::chrono::seconds(60));
    phase.idle_closed_after =
        SecondsUntilClosed(idle, started, std::chrono::seconds(60));
    close(partial);
    close(idle);
    SetOffset(offset_file_, "+0");
    EXPECT_EQ(InfoInt(port, "limits", "closed_frame_timeout") - frame_before, 1)
        << "phase " << phase.offset;
    EXPECT_EQ(InfoInt(port, "limits", "closed_idle_timeout") - idle_before, 1)
        << "phase " << phase.offset;
  }
  ASSERT_TRUE(server.running()) << "tallyd died under clock jumps";
  server.Kill9();

  std::string line;
  for (const Phase& p : phases) {
    char buf[96];
    std::snprintf(buf, sizeof buf, " %s: frame %.2f s, idle %.2f s;", p.offset,
                  p.frame_closed_after, p.idle_closed_after);
    line += buf;
  }
  std::printf(
      "[ figures ] F6 frame deadline %d s and idle timeout %d s, closed after "
      "(wall clock jumped after connect):%s\n",
      kFrameSeconds, kIdleSeconds, line.c_str());
  for (const Phase& p : phases) {
    if (p.frame_closed_after == -1) {
      ADD_FAILURE() << "the frame deadline stalled after a jump of "
                    << p.offset;
    } else {
      EXPECT_GE(p.frame_closed_after, kFrameSeconds)
          << "the frame deadline fired early after a jump of " << p.offset;
    }
    if (p.idle_closed_after == -1) {
      ADD_FAILURE() << "the idle timeout stalled after a jump of " << p.offset;
    } else {
      EXPECT_GE(p.idle_closed_after, kIdleSeconds)
          << "the idle timeout fired early (in a burst) after a jump of "
          << p.offset;
    }
  }
}

}  // namespace
}  // namespace tally::crash
