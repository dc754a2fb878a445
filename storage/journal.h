// Journal: the single writer of tally's state. Every mutation (adds,
// deletes, sweeps) is a WAL record; the journal's thread takes the queued
// records in groups, writes each group with one write(), applies the group
// to the engine in LSN order through wal::ApplyRecord (exactly what recovery
// does), syncs when the durability mode asks, and only then completes the
// callers (RELIABILITY.md 1.1, 1.2). One thread, no delay added to grow
// groups: while it syncs one group, the next one queues.
//
// Durability modes (docs/operations.md):
//   fsync        complete after fdatasync of the group (default)
//   interval:N   complete after write(); fdatasync every N ms
//   os           complete after write(); the kernel flushes
// A record is written before its completion in every mode, so a killed
// process never loses a completed mutation. A request may ask for
// wait_durable: its group is synced before it completes, whatever the mode.
//
// Errors (RELIABILITY.md 1.7): a failed fdatasync is fatal (on_sync_failure,
// default: print and abort; never retried). A failed write or ENOSPC
// completes the group's callers with NOT_PERSISTED, applies nothing, and
// puts the journal in "write failed" state: mutations are refused at once
// for probe_interval_ms, then the next group tries again, and success ends
// the state. Queries never go through the journal and keep working.
//
// Snapshots: every snapshot_interval_ms (and at Stop()), the writer thread
// serializes the engine and idempotency table between two groups (a
// consistent cut at the last written LSN) and a second thread writes the
// file; then snapshots beyond the newest two and WAL segments wholly below
// the older of the two are deleted (the previous snapshot stays usable).
//
// Without a WAL (wal_dir empty: --unsafe-no-wal, benchmarks only) Submit
// applies the record on the caller's thread and completes at once.
//
// Thread safety: Submit, Stats and the accessors are thread-safe.

#ifndef TALLY_STORAGE_JOURNAL_H_
#define TALLY_STORAGE_JOURNAL_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "protocol/result.h"
#include "storage/boot_clock.h"
#include "storage/clock.h"
#include "storage/dedupe_table.h"
#include "storage/engine.h"
#include "storage/file_system.h"
#include "storage/recovery.h"
#include "storage/snapshot.h"
#include "storage/wal_record.h"
#include "storage/wal_writer.h"

namespace tally {

enum class DurabilityMode : uint8_t { kFsync, kInterval, kOs };

struct Durability {
  DurabilityMode mode = DurabilityMode::kFsync;
  int64_t interval_ms = 1000;  // kInterval only
  std::string ToString() const;
};
// "fsync", "interval:<ms>" (also interval=<ms>), "os".
Result<Durability> ParseDurability(std::string_view text);

struct JournalOptions {
  Durability durability;
  FileSystem* fs = nullptr;
  std::string data_dir;  // empty: no WAL at all (unsafe, benchmarks only)
  uint64_t segment_bytes = 64u << 20;
  size_t max_group_bytes = 1u << 20;  // RocksDB's cap; one write per group
  // Queued bytes beyond which Submit refuses with BUSY (backpressure
  // instead of unbounded memory when the disk is slow).
  size_t max_queue_bytes = 256u << 20;
  int64_t probe_interval_ms = 1000;  // after a write error
  int64_t snapshot_interval_ms = 0;  // 0: only at Stop()
  bool snapshot_at_stop = true;
  int64_t sweep_interval_ms = 50;  // one sweep record per interval
  uint32_t sweep_shards_per_record = 1;
  const Clock* clock = SystemClock::Default();
  // Called on the writer thread when fdatasync fails; must not return
  // (default: message to stderr, then abort()).
  std::function<void(const Status&)> on_sync_failure;
};

struct JournalStats {
  bool wal = false;
  uint64_t written_lsn = 0;
  uint64_t durable_lsn = 0;
  uint64_t records = 0;  // written since start
  uint64_t groups = 0;
  uint64_t bytes_written = 0;
  uint64_t syncs = 0;
  double sync_p50_us = 0, sync_p99_us = 0, sync_max_us = 0;
  double mean_group_records = 0;
  uint64_t rejected_not_persisted = 0;
  uint64_t rejected_busy = 0;
  bool write_failed = false;  // mutations refused until a probe succeeds
  std::string last_write_error;
  uint64_t wal_segments = 0;
  uint64_t wal_bytes = 0;
  uint64_t snapshots = 0;
  uint64_t snapshot_failures = 0;
  uint64_t last_snapshot_lsn = 0;
  double last_snapshot_seconds = 0;  // serialize + write
  // The part that held increments: serializing between two groups.
  double last_snapshot_pause_seconds = 0;
  uint64_t last_snapshot_bytes = 0;
  std::string last_snapshot_error;
  size_t queue_bytes = 0;
};

class Journal {
 public:
  // lsn: the record's LSN (0 when rejected); outcomes: one per item.
  using Done = std::function<void(uint64_t lsn, Status status,
                                  std::vector<wal::ItemOutcome>&& outcomes)>;

  // Takes over what recovery rebuilt. REQUIRES: options.fs set when
  // options.data_dir is not empty.
  Journal(Recovered recovered, JournalOptions options);
  ~Journal();

  // Opens the WAL's new segment and starts the threads.
  Status Start();
  // Completes everything queued, syncs, writes the final snapshot (when
  // enabled), stops the threads. Later Submits fail with UNAVAILABLE.
  void Stop();

  // Runs on the writer thread right after the record is applied, before the
  // next record is: reads there see exactly the state at this LSN
  // (add_and_query's queries). Keep it short: the writer waits for it.
  using AfterApply = std::function<void()>;

  // Queues one record. `done` runs exactly once, on the writer thread (or
  // on the caller's, when refused at once or without a WAL). `after_apply`
  // (may be empty) runs only when the record was applied.
  void Submit(wal::RecordType type, std::string payload, bool wait_durable,
              Done done, AfterApply after_apply = nullptr);

  // Runs `read` on the writer thread once every record submitted before it
  // is applied (nothing is logged), then `done`. How a connection keeps
  // read-your-writes for a query pipelined behind its own adds.
  void SubmitBarrier(AfterApply read, std::function<void()> done);

  // Asks for a snapshot now and waits for it; the status of the write.
  Status SnapshotNow();

  Engine* engine() const { return recovered_.engine.get(); }
  DedupeTable* dedupe() const { return recovered_.dedupe.get(); }
  const RecoveryReport& recovery_report() const { return recovered_.report; }
  const JournalOptions& options() const { return options_; }
  bool has_wal() const { return !options_.data_dir.empty(); }
  uint64_t durable_lsn() const { return durable_lsn_.load(); }
  uint64_t written_lsn() const { return written_lsn_.load(); }
  // Every record <= this LSN is in the engine (what queries read).
  uint64_t applied_lsn() const { return applied_lsn_.load(); }
  JournalStats Stats() const;

 private:
  struct Op {
    wal::RecordType type;
    std::string payload;
    bool wait_durable;
    Done done;
    AfterApply after_apply;
    std::function<void()> barrier_done;  // set: a barrier, not a record
  };
  struct SnapshotJob {
    snapshot::Meta meta;
    std::string engine, dedupe;
    double serialize_seconds = 0;
  };

  void WriterLoop();
  void ProcessGroup(std::vector<Op>& group);
  void SyncOrDie();
  void MaybeSweep(BootClock::time_point now);
  void TakeSnapshot(bool wait_if_busy);  // writer thread
  void SnapshotLoop();
  int64_t NextTime();

  Recovered recovered_;
  JournalOptions options_;
  wal::State state_;
  std::unique_ptr<wal::WalWriter> writer_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Op> queue_;
  size_t queue_bytes_ = 0;
  bool stopping_ = false;
  bool snapshot_requested_ = false;
  std::vector<std::function<void(Status)>> snapshot_waiters_;

  std::thread writer_thread_;
  std::thread snapshot_thread_;
  std::mutex snap_mu_;
  std::condition_variable snap_cv_;
  std::unique_ptr<SnapshotJob> snap_job_;
  bool snap_busy_ = false;
  bool snap_stop_ = false;
  std::vector<std::function<void(Status)>> snap_job_waiters_;

  // Writer-thread state.
  uint64_t next_lsn_;
  int64_t last_time_ms_;
  // Schedules, on BootClock (CLOCK_BOOTTIME): a wall-clock step neither
  // fires them in a burst nor stalls them (RELIABILITY.md F6).
  BootClock::time_point next_sync_;
  BootClock::time_point next_probe_;
  BootClock::time_point next_sweep_;
  BootClock::time_point next_snapshot_;
  uint32_t next_sweep_shard_ = 0;
  std::string group_buf_;
  std::vector<wal::ItemOutcome> outcomes_;

  std::atomic<uint64_t> written_lsn_{0};
  std::atomic<uint64_t> durable_lsn_{0};
  std::atomic<uint64_t> applied_lsn_{0};
  mutable std::mutex stats_mu_;
  JournalStats stats_;
  std::vector<uint32_t> sync_us_;  // recent fdatasync latencies (ring)
  size_t sync_us_next_ = 0;
  bool write_failed_ = false;
};

}  // namespace tally

#endif  // TALLY_STORAGE_JOURNAL_H_
