#include "storage/journal.h"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cstdlib>

#include "storage/kill_point.h"

namespace tally {

namespace {

constexpr size_t kSyncSamples = 4096;

double Seconds(BootClock::duration d) {
  return std::chrono::duration<double>(d).count();
}

}  // namespace

std::string Durability::ToString() const {
  switch (mode) {
    case DurabilityMode::kFsync:
      return "fsync";
    case DurabilityMode::kInterval:
      return "interval:" + std::to_string(interval_ms);
    case DurabilityMode::kOs:
      return "os";
  }
  return "?";
}

Result<Durability> ParseDurability(std::string_view text) {
  Durability d;
  if (text == "fsync") return d;
  if (text == "os") {
    d.mode = DurabilityMode::kOs;
    return d;
  }
  for (std::string_view prefix : {"interval:", "interval="}) {
    if (!text.starts_with(prefix)) continue;
    std::string_view ms = text.substr(prefix.size());
    if (ms.ends_with("ms")) ms.remove_suffix(2);
    int64_t v = 0;
    auto [ptr, ec] = std::from_chars(ms.data(), ms.data() + ms.size(), v);
    if (ec != std::errc() || ptr != ms.data() + ms.size() || v < 1 ||
        v > 60'000) {
      break;
    }
    d.mode = DurabilityMode::kInterval;
    d.interval_ms = v;
    return d;
  }
  return Status::InvalidArgument("unknown durability '" + std::string(text) +
                                 "' (fsync, interval:<1..60000 ms>, os)");
}

Journal::Journal(Recovered recovered, JournalOptions options)
    : recovered_(std::move(recovered)),
      options_(std::move(options)),
      state_{recovered_.engine.get(), recovered_.dedupe.get()},
      next_lsn_(recovered_.next_lsn),
      last_time_ms_(recovered_.last_time_ms) {
  written_lsn_ = next_lsn_ - 1;
  durable_lsn_ = next_lsn_ - 1;
  applied_lsn_ = next_lsn_ - 1;
  if (!options_.on_sync_failure) {
    options_.on_sync_failure = [](const Status& s) {
      std::fprintf(stderr,
                   "FATAL: fdatasync of the WAL failed: %s. Stopping: a "
                   "failed fsync is never retried (the kernel may have "
                   "dropped the pages). Restart to recover from what is on "
                   "disk.\n",
                   std::string(s.message()).c_str());
      std::abort();
    };
  }
}

Journal::~Journal() { Stop(); }

Status Journal::Start() {
  if (has_wal()) {
    Result<std::unique_ptr<wal::WalWriter>> writer = wal::WalWriter::Open(
        options_.fs, WalDir(options_.data_dir), next_lsn_, recovered_.segments,
        {.segment_bytes = options_.segment_bytes,
         .hash_seed = recovered_.hash_seed,
         .shard_bits = recovered_.engine->options().shard_bits});
    if (!writer.ok()) return writer.status();
    writer_ = std::move(*writer);
  }
  const auto now = BootClock::now();
  next_sync_ = now + std::chrono::milliseconds(options_.durability.interval_ms);
  next_sweep_ = now + std::chrono::milliseconds(options_.sweep_interval_ms);
  next_snapshot_ =
      now + std::chrono::milliseconds(options_.snapshot_interval_ms);
  writer_thread_ = std::thread([this] { WriterLoop(); });
  if (has_wal()) snapshot_thread_ = std::thread([this] { SnapshotLoop(); });
  return Status::Ok();
}

void Journal::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) {
      // Another caller stops it; wait below only if we own the threads.
    }
    stopping_ = true;
  }
  cv_.notify_all();
  if (writer_thread_.joinable()) writer_thread_.join();
  {
    std::lock_guard<std::mutex> lock(snap_mu_);
    snap_stop_ = true;
  }
  snap_cv_.notify_all();
  if (snapshot_thread_.joinable()) snapshot_thread_.join();
}

int64_t Journal::NextTime() {
  last_time_ms_ = std::max(last_time_ms_, options_.clock->NowMs());
  return last_time_ms_;
}

void Journal::Submit(wal::RecordType type, std::string payload,
                     bool wait_durable, Done done, AfterApply after_apply) {
  if (!has_wal()) {
    std::vector<wal::ItemOutcome> outcomes;
    const int64_t now = options_.clock->NowMs();
    Status s = wal::ApplyRecord(state_, type, now, payload, &outcomes);
    if (s.ok() && after_apply) after_apply();
    done(0, s, std::move(outcomes));
    return;
  }
  Status refused;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) {
      refused = Status(Code::kUnavailable,
                       "the server is shutting down; nothing was applied");
    } else if (queue_bytes_ + payload.size() > options_.max_queue_bytes) {
      refused = Status(Code::kBusy,
                       "the WAL queue is full (the disk is slower than the "
                       "writes); nothing was applied, retry later");
    } else {
      queue_bytes_ += payload.size();
      queue_.push_back({type, std::move(payload), wait_durable, std::move(done),
                        std::move(after_apply), nullptr});
    }
  }
  if (!refused.ok()) {
    std::lock_guard<std::mutex> lock(stats_mu_);
    if (refused.code() == Code::kBusy) ++stats_.rejected_busy;
  }
  if (!refused.ok()) {
    done(0, refused, {});
    return;
  }
  cv_.notify_one();
}

void Journal::SubmitBarrier(AfterApply read, std::function<void()> done) {
  bool inline_now = !has_wal();
  if (!inline_now) {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) {
      inline_now = true;
    } else {
      queue_.push_back({wal::RecordType::kAddBatch, std::string(), false,
                        nullptr, std::move(read), std::move(done)});
    }
  }
  if (inline_now) {
    if (read) read();
    done();
    return;
  }
  cv_.notify_one();
}

void Journal::WriterLoop() {
  std::vector<Op> group;
  for (;;) {
    bool stop = false;
    bool snapshot_now = false;
    {
      std::unique_lock<std::mutex> lock(mu_);
      // sweep_interval_ms == 0 (sweeps off) must not wake it: next_sweep_
      // never moves then, and waiting until it would spin.
      auto wake = options_.sweep_interval_ms > 0
                      ? next_sweep_
                      : BootClock::now() + std::chrono::hours(1);
      if (options_.snapshot_interval_ms > 0 && has_wal()) {
        wake = std::min(wake, next_snapshot_);
      }
      if (options_.durability.mode == DurabilityMode::kInterval &&
          written_lsn_.load() > durable_lsn_.load()) {
        wake = std::min(wake, next_sync_);
      }
      // A BootClock deadline: libstdc++ sleeps the remaining time on
      // CLOCK_MONOTONIC, then re-checks BootClock, so a wall-clock step does
      // not move the wake-up.
      cv_.wait_until(lock, wake, [&] {
        return !queue_.empty() || stopping_ || snapshot_requested_;
      });
      size_t bytes = 0;
      while (!queue_.empty() &&
             (group.empty() || bytes + queue_.front().payload.size() <=
                                   options_.max_group_bytes)) {
        bytes += queue_.front().payload.size();
        group.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      queue_bytes_ -= bytes;
      snapshot_now = snapshot_requested_;
      snapshot_requested_ = false;
      stop = stopping_ && queue_.empty();
    }
    const auto now = BootClock::now();
    if (has_wal() && options_.sweep_interval_ms > 0 && now >= next_sweep_ &&
        !stop) {
      // Expiry is a logged mutation too, so replay expires exactly what the
      // live server expired (D8).
      std::string payload;
      const uint32_t shards = static_cast<uint32_t>(engine()->shard_count());
      wal::EncodeSweep(next_sweep_shard_, options_.sweep_shards_per_record,
                       &payload);
      next_sweep_shard_ =
          (next_sweep_shard_ + options_.sweep_shards_per_record) % shards;
      group.push_back({wal::RecordType::kSweep, std::move(payload), false,
                       nullptr, nullptr, nullptr});
      next_sweep_ = now + std::chrono::milliseconds(options_.sweep_interval_ms);
    } else if (!has_wal() && options_.sweep_interval_ms > 0 &&
               now >= next_sweep_) {
      engine()->SweepShard(next_sweep_shard_, options_.clock->NowMs());
      next_sweep_shard_ = static_cast<uint32_t>((next_sweep_shard_ + 1) %
                                                engine()->shard_count());
      next_sweep_ = now + std::chrono::milliseconds(options_.sweep_interval_ms);
    }
    if (!group.empty()) ProcessGroup(group);
    group.clear();
    if (!has_wal()) {
      if (stop) break;
      continue;
    }
    if (options_.durability.mode == DurabilityMode::kInterval &&
        BootClock::now() >= next_sync_) {
      if (written_lsn_.load() > durable_lsn_.load()) SyncOrDie();
      next_sync_ = BootClock::now() +
                   std::chrono::milliseconds(options_.durability.interval_ms);
    }
    if (stop) {
      if (written_lsn_.load() > durable_lsn_.load()) SyncOrDie();
      // A SnapshotNow() that came in with the stop still gets its snapshot
      // (its caller waits for it).
      if (options_.snapshot_at_stop || snapshot_now) TakeSnapshot(true);
      // Wake the snapshot thread's waiters through its own stop.
      break;
    }
    if (snapshot_now || (options_.snapshot_interval_ms > 0 &&
                         BootClock::now() >= next_snapshot_)) {
      TakeSnapshot(snapshot_now);
      next_snapshot_ = BootClock::now() +
                       std::chrono::milliseconds(options_.snapshot_interval_ms);
    }
  }
}

void Journal::ProcessGroup(std::vector<Op>& group) {
  const auto now = BootClock::now();
  // Completes everything with `refusal` (nothing applied); barriers still
  // read, since reads keep working while writes are refused.
  auto refuse_all = [&](const Status& refusal) {
    {
      std::lock_guard<std::mutex> lock(stats_mu_);
      for (const Op& op : group) {
        if (op.done) ++stats_.rejected_not_persisted;
      }
    }
    for (Op& op : group) {
      if (op.barrier_done) {
        if (op.after_apply) op.after_apply();
        op.barrier_done();
      } else if (op.done) {
        op.done(0, refusal, {});
      }
    }
  };
  if (write_failed_ && now < next_probe_) {
    std::string message;
    {
      std::lock_guard<std::mutex> lock(stats_mu_);
      message = stats_.last_write_error;
    }
    refuse_all(Status(Code::kNotPersisted,
                      "increments are refused while the WAL cannot be "
                      "written (" +
                          message + "); nothing was applied; retried every " +
                          std::to_string(options_.probe_interval_ms) + " ms"));
    return;
  }
  const int64_t time_ms = NextTime();
  const uint64_t first = next_lsn_;
  group_buf_.clear();
  bool need_sync = false;
  size_t records = 0;
  for (const Op& op : group) {
    if (op.barrier_done) continue;
    ++records;
    wal::AppendRecord(op.type, next_lsn_++, time_ms, op.payload, &group_buf_);
    if (op.done && (op.wait_durable ||
                    options_.durability.mode == DurabilityMode::kFsync)) {
      need_sync = true;
    }
  }
  if (records > 0) {
    TALLY_KILL_POINT("wal.before_write");
    Status written = writer_->Append(group_buf_, first, next_lsn_ - 1);
    if (!written.ok()) {
      next_lsn_ = first;  // nothing of the group counts as written
      write_failed_ = true;
      next_probe_ = now + std::chrono::milliseconds(options_.probe_interval_ms);
      {
        std::lock_guard<std::mutex> lock(stats_mu_);
        stats_.write_failed = true;
        stats_.last_write_error = std::string(written.message());
      }
      refuse_all(Status(Code::kNotPersisted,
                        "the WAL write failed (" +
                            std::string(written.message()) +
                            "); nothing was applied; increments are refused "
                            "until the disk accepts writes again"));
      return;
    }
    TALLY_KILL_POINT("wal.after_write");
    if (write_failed_) {
      write_failed_ = false;
      std::lock_guard<std::mutex> lock(stats_mu_);
      stats_.write_failed = false;
    }
    written_lsn_ = next_lsn_ - 1;
  }
  // Apply in LSN order, exactly as recovery will; barriers read in between.
  std::vector<std::vector<wal::ItemOutcome>> outcomes(group.size());
  std::vector<Status> statuses(group.size());
  std::vector<uint64_t> lsns(group.size(), 0);
  uint64_t lsn = first;
  for (size_t i = 0; i < group.size(); ++i) {
    if (group[i].barrier_done) {
      if (group[i].after_apply) group[i].after_apply();
      continue;
    }
    lsns[i] = lsn++;
    statuses[i] = wal::ApplyRecord(state_, group[i].type, time_ms,
                                   group[i].payload, &outcomes[i]);
    applied_lsn_ = lsns[i];
    if (statuses[i].ok() && group[i].after_apply) group[i].after_apply();
  }
  if (need_sync) {
    TALLY_KILL_POINT("wal.before_sync");
    SyncOrDie();
    TALLY_KILL_POINT("wal.after_sync");
  }
  if (records > 0) {
    std::lock_guard<std::mutex> lock(stats_mu_);
    stats_.records += records;
    stats_.groups += 1;
    stats_.bytes_written += group_buf_.size();
  }
  for (size_t i = 0; i < group.size(); ++i) {
    if (group[i].barrier_done) {
      group[i].barrier_done();
    } else if (group[i].done) {
      group[i].done(lsns[i], statuses[i], std::move(outcomes[i]));
    }
  }
}

void Journal::SyncOrDie() {
  const auto t0 = BootClock::now();
  const uint64_t target = written_lsn_.load();
  Status s = writer_->Sync();
  if (!s.ok()) options_.on_sync_failure(s);
  const auto us = static_cast<uint32_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(BootClock::now() -
                                                            t0)
          .count());
  durable_lsn_ = target;
  std::lock_guard<std::mutex> lock(stats_mu_);
  ++stats_.syncs;
  if (sync_us_.size() < kSyncSamples) {
    sync_us_.push_back(us);
  } else {
    sync_us_[sync_us_next_++ % kSyncSamples] = us;
  }
  stats_.sync_max_us = std::max<double>(stats_.sync_max_us, us);
}

void Journal::TakeSnapshot(bool wait_if_busy) {
  {
    std::unique_lock<std::mutex> lock(snap_mu_);
    if (snap_busy_ && !wait_if_busy) return;  // the last one is being written
    snap_cv_.wait(lock, [&] { return !snap_busy_; });
  }
  // The snapshot never gets ahead of the durable WAL.
  if (written_lsn_.load() > durable_lsn_.load()) SyncOrDie();
  const auto t0 = BootClock::now();
  auto job = std::make_unique<SnapshotJob>();
  job->meta.lsn = written_lsn_.load();
  job->meta.hash_seed = recovered_.hash_seed;
  job->meta.time_ms = last_time_ms_;
  engine()->SerializeTo(&job->engine);
  dedupe()->SerializeTo(&job->dedupe);
  job->serialize_seconds = Seconds(BootClock::now() - t0);
  std::vector<std::function<void(Status)>> waiters;
  {
    std::lock_guard<std::mutex> lock(mu_);
    waiters.swap(snapshot_waiters_);
  }
  const bool stopping = [&] {
    std::lock_guard<std::mutex> lock(mu_);
    return stopping_;
  }();
  {
    std::lock_guard<std::mutex> lock(snap_mu_);
    snap_job_ = std::move(job);
    snap_busy_ = true;
    for (auto& w : waiters) snap_job_waiters_.push_back(std::move(w));
  }
  snap_cv_.notify_all();
  if (stopping) {
    // At a clean stop the final snapshot is written before Stop returns.
    std::unique_lock<std::mutex> lock(snap_mu_);
    snap_cv_.wait(lock, [&] { return !snap_busy_; });
  }
}

void Journal::SnapshotLoop() {
  for (;;) {
    std::unique_ptr<SnapshotJob> job;
    {
      std::unique_lock<std::mutex> lock(snap_mu_);
      snap_cv_.wait(lock, [&] { return snap_job_ != nullptr || snap_stop_; });
      if (snap_job_ == nullptr) break;
      job = std::move(snap_job_);
    }
    const auto t0 = BootClock::now();
    const std::string dir = SnapshotDir(options_.data_dir);
    Status s =
        snapshot::Write(options_.fs, dir, job->meta, job->engine, job->dedupe);
    if (s.ok()) {
      // Keep the newest two; the WAL from the older one on, so a damaged
      // newest snapshot can fall back (RELIABILITY.md 1.6).
      Result<std::vector<snapshot::SnapshotFile>> all =
          snapshot::List(options_.fs, dir);
      if (all.ok() && all->size() >= 2) {
        for (size_t i = 0; i + 2 < all->size(); ++i) {
          (void)options_.fs->Remove(JoinPath(dir, (*all)[i].name));
        }
        (void)options_.fs->SyncDir(dir);
        TALLY_KILL_POINT("snap.before_wal_truncate");
        Result<int> removed =
            writer_->RemoveSegmentsBelow((*all)[all->size() - 2].lsn);
        if (!removed.ok()) s = removed.status();
        TALLY_KILL_POINT("snap.after_wal_truncate");
      }
    }
    std::vector<std::function<void(Status)>> waiters;
    {
      std::lock_guard<std::mutex> lock(stats_mu_);
      if (s.ok()) {
        ++stats_.snapshots;
        stats_.last_snapshot_lsn = job->meta.lsn;
        stats_.last_snapshot_seconds =
            job->serialize_seconds + Seconds(BootClock::now() - t0);
        stats_.last_snapshot_pause_seconds = job->serialize_seconds;
        stats_.last_snapshot_bytes =
            snapshot::kHeaderSize + job->engine.size() + job->dedupe.size();
        stats_.last_snapshot_error.clear();
      } else {
        ++stats_.snapshot_failures;
        stats_.last_snapshot_error = std::string(s.message());
      }
    }
    {
      std::lock_guard<std::mutex> lock(snap_mu_);
      waiters.swap(snap_job_waiters_);
      snap_busy_ = false;
    }
    snap_cv_.notify_all();
    for (auto& w : waiters) w(s);
  }
}

Status Journal::SnapshotNow() {
  if (!has_wal()) {
    return Status(Code::kUnavailable, "no WAL: snapshots are off");
  }
  std::mutex m;
  std::condition_variable cv;
  bool done = false;
  Status result;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return Status(Code::kUnavailable, "shutting down");
    snapshot_requested_ = true;
    snapshot_waiters_.push_back([&](Status s) {
      std::lock_guard<std::mutex> l(m);
      result = s;
      done = true;
      cv.notify_all();
    });
  }
  cv_.notify_one();
  std::unique_lock<std::mutex> lock(m);
  cv.wait(lock, [&] { return done; });
  return result;
}

JournalStats Journal::Stats() const {
  JournalStats s;
  {
    std::lock_guard<std::mutex> lock(stats_mu_);
    s = stats_;
    if (!sync_us_.empty()) {
      std::vector<uint32_t> v = sync_us_;
      std::sort(v.begin(), v.end());
      s.sync_p50_us = v[v.size() / 2];
      s.sync_p99_us = v[std::min(v.size() - 1, v.size() * 99 / 100)];
    }
  }
  s.wal = has_wal();
  s.written_lsn = written_lsn_.load();
  s.durable_lsn = durable_lsn_.load();
  s.mean_group_records =
      s.groups == 0 ? 0 : static_cast<double>(s.records) / s.groups;
  if (writer_) {
    s.wal_segments = writer_->SegmentCount();
    s.wal_bytes = writer_->DiskBytes();
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    s.queue_bytes = queue_bytes_;
  }
  return s;
}

}  // namespace tally
