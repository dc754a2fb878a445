// durability_bench: what the WAL costs, measured on the disk under --dir
// (docs/benchmarks.md, "Durability"). Not a unit test: numbers, no asserts.
//
//   durability_bench fsync   --dir D                  fdatasync latency of D's
//                                                     disk (4 KiB appends)
//   durability_bench journal --dir D --durability M --producers P --seconds S
//                            [--events E]             acknowledged adds/s
//                                                     through the Journal
//   durability_bench replay  --dir D --records R      WAL replay records/s
//   durability_bench recover --dir D                  recovery of an existing
//                                                     directory only
//   durability_bench restart --dir D --keys N         restart time from a
//                            [--wal-records W]        snapshot of N keys plus
//                                                     a WAL tail of W records
//
// Each prints one line of JSON. The data directory is wiped before and after.

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "storage/file_system.h"
#include "storage/journal.h"
#include "storage/recovery.h"
#include "storage/wal_record.h"

namespace tally {
namespace {

using Clock = std::chrono::steady_clock;

struct Args {
  std::string command, dir, durability = "fsync";
  int producers = 1;
  double seconds = 5;
  uint64_t records = 2'000'000, keys = 1'000'000, wal_records = 100'000;
  int events = 1;  // adds per record
};

double Pct(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * v.size()))];
}

std::string Key(uint64_t i) { return "user:" + std::to_string(i); }

Recovered Fresh(const std::string& dir) {
  RecoveryOptions ro;
  ro.fs = PosixFileSystem();
  ro.data_dir = dir;
  ro.engine.hash_seed = 42;
  Result<Recovered> r = Recover(ro);
  if (!r.ok()) {
    std::fprintf(stderr, "recover: %s\n", r.status().ToString().c_str());
    std::exit(1);
  }
  return std::move(*r);
}

JournalOptions Options(const std::string& dir, const std::string& mode) {
  JournalOptions o;
  o.fs = PosixFileSystem();
  o.data_dir = dir;
  Result<Durability> d = ParseDurability(mode);
  if (!d.ok()) {
    std::fprintf(stderr, "%s\n", d.status().ToString().c_str());
    std::exit(2);
  }
  o.durability = *d;
  o.snapshot_at_stop = false;
  o.sweep_interval_ms = 0;
  return o;
}

// Submits and waits, like a producer with one request in flight.
Status SubmitAndWait(Journal& j, std::string payload) {
  std::mutex m;
  std::condition_variable cv;
  bool done = false;
  Status result;
  j.Submit(wal::RecordType::kAddBatch, std::move(payload), false,
           [&](uint64_t, Status s, std::vector<wal::ItemOutcome>&&) {
             std::lock_guard<std::mutex> l(m);
             result = s;
             done = true;
             cv.notify_one();
           });
  std::unique_lock<std::mutex> l(m);
  cv.wait(l, [&] { return done; });
  return result;
}

std::string AddPayload(std::mt19937_64& rng, uint64_t keys, int events) {
  std::vector<std::string> names;
  std::vector<wal::AddOp> ops;
  names.reserve(events);
  for (int i = 0; i < events; ++i) names.push_back(Key(rng() % keys));
  for (int i = 0; i < events; ++i) {
    wal::AddOp op;
    op.key = names[i];
    op.amount = static_cast<int64_t>(rng() % 10000);
    ops.push_back(op);
  }
  std::string payload;
  wal::EncodeAddBatch(ops, &payload);
  return payload;
}

int FsyncLatency(const Args& a) {
  std::filesystem::create_directories(a.dir);
  const std::string path = a.dir + "/fsync_probe";
  const int fd = open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0600);
  if (fd < 0 || fallocate(fd, 0, 0, 64 << 20) != 0) {
    std::perror("fsync probe");
    return 1;
  }
  std::vector<char> block(4096, 'x');
  std::vector<double> us;
  for (int i = 0; i < 2000; ++i) {
    if (pwrite(fd, block.data(), block.size(), off_t{i} * 4096) !=
        static_cast<ssize_t>(block.size())) {
      std::perror("pwrite");
      return 1;
    }
    const auto t0 = Clock::now();
    fdatasync(fd);
    us.push_back(
        std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
  }
  close(fd);
  unlink(path.c_str());
  std::printf(
      "{\"bench\":\"fdatasync_4k\",\"samples\":%zu,\"p50_us\":%.1f,"
      "\"p99_us\":%.1f,\"max_us\":%.1f}\n",
      us.size(), Pct(us, 0.5), Pct(us, 0.99), Pct(us, 1.0));
  return 0;
}

int JournalThroughput(const Args& a) {
  Journal j(Fresh(a.dir), Options(a.dir, a.durability));
  if (Status s = j.Start(); !s.ok()) {
    std::fprintf(stderr, "%s\n", s.ToString().c_str());
    return 1;
  }
  std::atomic<bool> stop{false};
  std::vector<std::vector<double>> lat(a.producers);
  std::vector<uint64_t> ok(a.producers);
  std::vector<std::thread> threads;
  const auto t0 = Clock::now();
  for (int p = 0; p < a.producers; ++p) {
    threads.emplace_back([&, p] {
      std::mt19937_64 rng(p + 1);
      while (!stop.load(std::memory_order_relaxed)) {
        std::string payload = AddPayload(rng, 1'000'000, a.events);
        const auto s0 = Clock::now();
        if (SubmitAndWait(j, std::move(payload)).ok()) ok[p] += a.events;
        lat[p].push_back(
            std::chrono::duration<double, std::micro>(Clock::now() - s0)
                .count());
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(a.seconds));
  stop = true;
  for (auto& t : threads) t.join();
  const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  std::vector<double> all;
  uint64_t total = 0;
  for (int p = 0; p < a.producers; ++p) {
    all.insert(all.end(), lat[p].begin(), lat[p].end());
    total += ok[p];
  }
  const JournalStats st = j.Stats();
  j.Stop();
  std::printf(
      "{\"bench\":\"journal\",\"durability\":\"%s\",\"producers\":%d,"
      "\"events_per_record\":%d,\"acked_adds_per_s\":%.0f,\"ack_p50_us\":%.1f,"
      "\"ack_p99_us\":%.1f,\"mean_group_records\":%.1f,\"fsyncs\":%llu,"
      "\"fsync_p50_us\":%.1f,\"fsync_p99_us\":%.1f}\n",
      a.durability.c_str(), a.producers, a.events, total / secs, Pct(all, 0.5),
      Pct(all, 0.99), st.mean_group_records,
      static_cast<unsigned long long>(st.syncs), st.sync_p50_us,
      st.sync_p99_us);
  return 0;
}

// Fills a journal quickly (os mode, many producers' worth of records from
// one thread, asynchronously) with `records` records of `events` adds.
void Fill(Journal& j, uint64_t records, uint64_t keys, int events,
          uint64_t first_key = 0, bool sequential_keys = false) {
  std::mt19937_64 rng(7);
  std::atomic<uint64_t> outstanding{0};
  uint64_t next_key = first_key;
  for (uint64_t r = 0; r < records; ++r) {
    std::string payload;
    if (sequential_keys) {
      std::vector<std::string> names;
      std::vector<wal::AddOp> ops;
      for (int i = 0; i < events; ++i) names.push_back(Key(next_key++));
      for (int i = 0; i < events; ++i) {
        wal::AddOp op;
        op.key = names[i];
        op.amount = 1;
        ops.push_back(op);
      }
      wal::EncodeAddBatch(ops, &payload);
    } else {
      payload = AddPayload(rng, keys, events);
    }
    while (outstanding.load() > 4096) std::this_thread::yield();
    outstanding.fetch_add(1);
    j.Submit(wal::RecordType::kAddBatch, std::move(payload), false,
             [&](uint64_t, Status, std::vector<wal::ItemOutcome>&&) {
               outstanding.fetch_sub(1);
             });
  }
  while (outstanding.load() > 0) std::this_thread::yield();
}

int Replay(const Args& a) {
  {
    Journal j(Fresh(a.dir), Options(a.dir, "os"));
    if (!j.Start().ok()) return 1;
    Fill(j, a.records, 1'000'000, a.events);
    j.Stop();
  }
  RecoveryOptions ro;
  ro.fs = PosixFileSystem();
  ro.data_dir = a.dir;
  const auto t0 = Clock::now();
  Result<Recovered> r = Recover(ro);
  const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  if (!r.ok()) {
    std::fprintf(stderr, "%s\n", r.status().ToString().c_str());
    return 1;
  }
  std::printf(
      "{\"bench\":\"replay\",\"records\":%llu,\"events_per_record\":%d,"
      "\"seconds\":%.3f,\"records_per_s\":%.0f,\"bytes\":%llu,\"keys\":%llu}\n",
      static_cast<unsigned long long>(r->report.records_replayed), a.events,
      secs, r->report.records_replayed / secs,
      static_cast<unsigned long long>(r->report.bytes_replayed),
      static_cast<unsigned long long>(r->engine->Stats().keys));
  return 0;
}

int Restart(const Args& a) {
  double snapshot_seconds = 0, pause_seconds = 0;
  uint64_t snapshot_bytes = 0;
  {
    Journal j(Fresh(a.dir), Options(a.dir, "os"));
    if (!j.Start().ok()) return 1;
    // Every key once (64 per record), then a snapshot, then a WAL tail.
    Fill(j, (a.keys + 63) / 64, a.keys, 64, 0, true);
    if (Status s = j.SnapshotNow(); !s.ok()) {
      std::fprintf(stderr, "snapshot: %s\n", s.ToString().c_str());
      return 1;
    }
    const JournalStats st = j.Stats();
    snapshot_seconds = st.last_snapshot_seconds;
    pause_seconds = st.last_snapshot_pause_seconds;
    snapshot_bytes = st.last_snapshot_bytes;
    Fill(j, a.wal_records, a.keys, 1);
    j.Stop();
  }
  RecoveryOptions ro;
  ro.fs = PosixFileSystem();
  ro.data_dir = a.dir;
  const auto t0 = Clock::now();
  Result<Recovered> r = Recover(ro);
  const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  if (!r.ok()) {
    std::fprintf(stderr, "%s\n", r.status().ToString().c_str());
    return 1;
  }
  std::printf(
      "{\"bench\":\"restart\",\"keys\":%llu,\"snapshot_bytes\":%llu,"
      "\"snapshot_seconds\":%.3f,\"snapshot_pause_seconds\":%.3f,"
      "\"wal_records\":%llu,"
      "\"restart_seconds\":%.3f}\n",
      static_cast<unsigned long long>(r->engine->Stats().keys),
      static_cast<unsigned long long>(snapshot_bytes), snapshot_seconds,
      pause_seconds,
      static_cast<unsigned long long>(r->report.records_replayed), secs);
  return 0;
}

}  // namespace
}  // namespace tally

int main(int argc, char** argv) {
  tally::Args a;
  if (argc < 2) {
    std::fprintf(stderr,
                 "usage: durability_bench fsync|journal|replay|restart --dir D "
                 "[options]\n");
    return 2;
  }
  a.command = argv[1];
  for (int i = 2; i + 1 < argc; i += 2) {
    const std::string f = argv[i], v = argv[i + 1];
    if (f == "--dir")
      a.dir = v;
    else if (f == "--durability")
      a.durability = v;
    else if (f == "--producers")
      a.producers = std::stoi(v);
    else if (f == "--seconds")
      a.seconds = std::stod(v);
    else if (f == "--records")
      a.records = std::stoull(v);
    else if (f == "--keys")
      a.keys = std::stoull(v);
    else if (f == "--wal-records")
      a.wal_records = std::stoull(v);
    else if (f == "--events")
      a.events = std::stoi(v);
    else {
      std::fprintf(stderr, "unknown flag %s\n", f.c_str());
      return 2;
    }
  }
  if (a.dir.empty()) {
    std::fprintf(stderr, "--dir is required\n");
    return 2;
  }
  // "recover" times a recovery of an existing directory (kept by
  // TALLY_BENCH_KEEP=1 from an earlier run), e.g. under perf.
  if (a.command != "recover") std::filesystem::remove_all(a.dir);
  int rc = 2;
  if (a.command == "recover") {
    tally::RecoveryOptions ro;
    ro.fs = tally::PosixFileSystem();
    ro.data_dir = a.dir;
    const auto t0 = std::chrono::steady_clock::now();
    tally::Result<tally::Recovered> r = tally::Recover(ro);
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
            .count();
    if (!r.ok()) return 1;
    std::printf("{\"bench\":\"recover\",\"records\":%llu,\"seconds\":%.3f}\n",
                static_cast<unsigned long long>(r->report.records_replayed),
                secs);
    return 0;
  }
  if (a.command == "fsync")
    rc = tally::FsyncLatency(a);
  else if (a.command == "journal")
    rc = tally::JournalThroughput(a);
  else if (a.command == "replay")
    rc = tally::Replay(a);
  else if (a.command == "restart")
    rc = tally::Restart(a);
  // TALLY_BENCH_KEEP=1 keeps the data directory (to profile tools on it).
  if (std::getenv("TALLY_BENCH_KEEP") == nullptr) {
    std::filesystem::remove_all(a.dir);
  }
  return rc;
}
