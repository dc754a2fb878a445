#include "server/metrics_exporter.h"

#include <array>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/prometheus_text.h"
#include "server/allocator_stats.h"
#include "server/process_stats.h"

namespace tally {

namespace {

// kPromBoundsNs in seconds, for the `le` labels.
std::array<double, kPromBoundsNs.size()> BoundsSeconds() {
  std::array<double, kPromBoundsNs.size()> out{};
  for (size_t i = 0; i < out.size(); ++i) {
    out[i] = static_cast<double>(kPromBoundsNs[i]) / 1e9;
  }
  return out;
}

void Gauge(PromWriter& w, std::string_view name, std::string_view help,
           double value) {
  w.Family(name, help, "gauge");
  w.Sample(name, value);
}

void Counter(PromWriter& w, std::string_view name, std::string_view help,
             double value) {
  w.Family(name, help, "counter");
  w.Sample(name, value);
}

double D(uint64_t v) { return static_cast<double>(v); }

// One sample per op ({cmd="add"}, ...): `value` of each op's snapshot.
template <typename Value>
std::vector<PromWriter::LabelledValue> PerOp(const CommandStatsSnapshot& cs,
                                             Value value) {
  std::vector<PromWriter::LabelledValue> out;
  out.reserve(cs.commands.size());
  for (const CommandSnapshot& c : cs.commands) {
    out.push_back({proto::OpName(c.op), value(c)});
  }
  return out;
}

void CommandMetrics(PromWriter& w, const CommandStatsSnapshot& cs) {
  w.LabelledFamily(
      "tally_commands_total", "Requests answered, by protocol op.", "counter",
      "cmd", PerOp(cs, [](const CommandSnapshot& c) { return D(c.calls); }));
  w.Family("tally_command_errors_total",
           "Requests answered with a whole-request error, by op and status "
           "code.",
           "counter");
  for (const CommandSnapshot& c : cs.commands) {
    for (size_t code = 0; code < c.errors.size(); ++code) {
      if (c.errors[code] == 0) continue;
      w.Sample("tally_command_errors_total",
               {{"cmd", proto::OpName(c.op)},
                {"code", CodeName(static_cast<Code>(code))}},
               D(c.errors[code]));
    }
  }
  w.Family("tally_command_duration_seconds",
           "Time from a request's frame read to its reply queued for the "
           "socket, by op.",
           "histogram");
  const std::array<double, kPromBoundsNs.size()> bounds = BoundsSeconds();
  for (const CommandSnapshot& c : cs.commands) {
    std::array<uint64_t, kPromBoundsNs.size()> cumulative{};
    for (size_t b = 0; b < cumulative.size(); ++b) {
      cumulative[b] = c.latency.CumulativeCount(b);
    }
    w.Histogram("tally_command_duration_seconds",
                {{"cmd", proto::OpName(c.op)}}, bounds, cumulative,
                D(c.latency.sum_ns()) / 1e9, c.latency.count());
  }
  w.LabelledFamily("tally_commands_duration_seconds_total",
                   "Total time spent answering requests, by op "
                   "(redis_exporter's mean: rate of this over rate of "
                   "tally_commands_total).",
                   "counter", "cmd", PerOp(cs, [](const CommandSnapshot& c) {
                     return D(c.latency.sum_ns()) / 1e9;
                   }));
  Gauge(w, "tally_inflight_requests",
        "Requests received whose reply is not yet queued.",
        static_cast<double>(cs.inflight));
  Counter(w, "tally_net_input_bytes_total", "Bytes read from clients.",
          D(cs.net_input_bytes));
  Counter(w, "tally_net_output_bytes_total", "Bytes written to clients.",
          D(cs.net_output_bytes));
}

void LimitMetrics(PromWriter& w, const LimitStats& l) {
  auto get = [](const LimitStats::Counter& c) {
    return D(c.load(std::memory_order_relaxed));
  };
  Gauge(w, "tally_connected_clients", "Client connections open now.",
        get(l.connections_current));
  Gauge(w, "tally_max_clients",
        "The effective --max_connections (after the RLIMIT_NOFILE clamp).",
        get(l.max_connections));
  Counter(w, "tally_connections_received_total",
          "Client connections accepted since start.", get(l.connections_total));
  Counter(w, "tally_rejected_connections_total",
          "Connections refused at accept: --max_connections reached.",
          get(l.rejected_max_connections));
  w.LabelledFamily("tally_limit_rejections_total",
                   "Limit events by reason (docs/operations.md, Limits).",
                   "counter", "reason",
                   {{"max_connections", get(l.rejected_max_connections)},
                    {"accept_retry", get(l.accept_retries)},
                    {"frame_timeout", get(l.frame_timeout)},
                    {"idle_timeout", get(l.idle_timeout)},
                    {"frame_too_large", get(l.frame_too_large)},
                    {"protocol_error", get(l.protocol_error)},
                    {"output_paused", get(l.output_paused)},
                    {"in_flight_paused", get(l.in_flight_paused)},
                    {"max_memory", get(l.max_memory)},
                    {"key_too_long", get(l.key_too_long)},
                    {"batch_too_large", get(l.batch_too_large)}});
}

void PersistenceMetrics(PromWriter& w, Journal* journal) {
  const JournalStats j = journal->Stats();
  Gauge(w, "tally_wal_enabled", "1 when the WAL is on (0: --unsafe_no_wal).",
        j.wal ? 1 : 0);
  Gauge(w, "tally_wal_written_lsn", "Last LSN written to the WAL.",
        D(j.written_lsn));
  Gauge(w, "tally_wal_durable_lsn", "Last LSN fsynced.", D(j.durable_lsn));
  Gauge(w, "tally_applied_lsn", "Last LSN applied to the engine.",
        D(journal->applied_lsn()));
  Counter(w, "tally_wal_records_total", "WAL records written since start.",
          D(j.records));
  Counter(w, "tally_wal_groups_total", "WAL group commits since start.",
          D(j.groups));
  Counter(w, "tally_wal_written_bytes_total",
          "Bytes written to the WAL since start.", D(j.bytes_written));
  Counter(w, "tally_wal_fsyncs_total", "WAL fdatasync calls since start.",
          D(j.syncs));
  // A summary, as client_golang writes one: quantiles over a recent window
  // (the journal's last kSyncSamples fdatasyncs; quantile 1 is the maximum
  // since start) and _count since start (every fdatasync). No _sum: the
  // journal keeps no running total of fdatasync time (JournalStats has none).
  w.Family("tally_wal_fsync_duration_seconds",
           "fdatasync latency of the WAL (the journal's recent window).",
           "summary");
  const PromWriter::Quantile quantiles[] = {{0.5, j.sync_p50_us / 1e6},
                                            {0.99, j.sync_p99_us / 1e6},
                                            {1, j.sync_max_us / 1e6}};
  w.Summary("tally_wal_fsync_duration_seconds", {}, quantiles, std::nullopt,
            j.syncs);
  Gauge(w, "tally_wal_segments", "WAL segment files on disk.",
        D(j.wal_segments));
  Gauge(w, "tally_wal_disk_bytes", "Bytes of WAL segments on disk.",
        D(j.wal_bytes));
  Gauge(w, "tally_wal_queue_bytes", "Bytes queued for the WAL writer.",
        D(j.queue_bytes));
  Gauge(w, "tally_wal_write_failed",
        "1 while mutations are refused because a WAL write failed.",
        j.write_failed ? 1 : 0);
  w.LabelledFamily("tally_wal_rejected_total",
                   "Mutations refused by the journal, by reason.", "counter",
                   "reason",
                   {{"not_persisted", D(j.rejected_not_persisted)},
                    {"busy", D(j.rejected_busy)}});
  Counter(w, "tally_snapshots_total", "Snapshots written since start.",
          D(j.snapshots));
  Counter(w, "tally_snapshot_failures_total",
          "Snapshots that failed since start.", D(j.snapshot_failures));
  Gauge(w, "tally_last_snapshot_lsn", "LSN of the last snapshot.",
        D(j.last_snapshot_lsn));
  Gauge(w, "tally_last_snapshot_duration_seconds",
        "Time the last snapshot took (serialize and write).",
        j.last_snapshot_seconds);
  Gauge(w, "tally_last_snapshot_pause_seconds",
        "Time the last snapshot held increments.",
        j.last_snapshot_pause_seconds);
  Gauge(w, "tally_last_snapshot_bytes", "Size of the last snapshot.",
        D(j.last_snapshot_bytes));
}

}  // namespace

std::string RenderMetrics(Service* service) {
  PromWriter w;
  const ServiceOptions& options = service->options();
  w.Family("tally_build_info", "Version and source revision of tallyd.",
           "gauge");
  w.Sample("tally_build_info",
           {{"version", options.version}, {"revision", options.revision}}, 1);
  Gauge(w, "process_start_time_seconds",
        "Start time of the process since the Unix epoch, in seconds.",
        ProcessStartTimeSeconds());
  Counter(w, "process_cpu_seconds_total",
          "Total user and system CPU time spent in seconds.",
          ProcessCpuSeconds());
  Gauge(w, "process_resident_memory_bytes", "Resident memory size in bytes.",
        static_cast<double>(ProcessRssBytes()));
  Gauge(w, "process_open_fds", "Number of open file descriptors.",
        static_cast<double>(ProcessOpenFds()));
  Gauge(w, "process_max_fds", "Maximum number of open file descriptors.",
        static_cast<double>(ProcessMaxFds()));

  CommandMetrics(w, service->command_stats()->Snapshot());
  LimitMetrics(w, *service->limit_stats());
  const ServiceStats ss = service->Stats();
  Counter(w, "tally_deadline_exceeded_total",
          "Requests dropped unexecuted: their deadline passed first.",
          D(ss.deadline_exceeded));

  Journal* journal = service->journal();
  const EngineStats s = service->engine()->Stats();
  const DedupeStats d = journal->dedupe()->Stats();
  w.LabelledFamily("tally_keys", "Keys held, by type.", "gauge", "type",
                   {{"counter", D(s.keys)}, {"idempotency_id", D(d.entries)}});
  Gauge(w, "tally_buckets", "Time buckets held over every key.", D(s.buckets));
  w.LabelledFamily(
      "tally_events_ingested_total",
      "Events accepted: applied, or recognised as an idempotent duplicate.",
      "counter", "type",
      {{"applied", D(s.adds)}, {"duplicate", D(d.duplicates)}});
  w.LabelledFamily("tally_late_events_total",
                   "Events outside their policy's lateness/skew window, by "
                   "what happened to them.",
                   "counter", "action", {{"rejected", D(s.rejected_time)}});
  w.LabelledFamily("tally_rejected_events_total",
                   "Events refused for another reason than time, by reason.",
                   "counter", "reason",
                   {{"invalid", D(s.rejected_invalid)},
                    {"overflow", D(s.rejected_overflow)},
                    {"idempotency_conflict", D(d.conflicts)}});
  Counter(w, "tally_expired_keys_total",
          "Keys removed because all their buckets expired.", D(s.expired_keys));
  Counter(w, "tally_evicted_keys_total",
          "Keys evicted for memory (always 0: --max_memory is noeviction, "
          "new keys are refused instead).",
          0);
  Counter(w, "tally_deleted_keys_total", "Keys removed by DEL.",
          D(s.deleted_keys));
  Gauge(w, "tally_memory_used_bytes",
        "Bytes held by keys, buckets and the idempotency table.",
        static_cast<double>(s.bytes + d.bytes));
  Gauge(w, "tally_max_memory_bytes",
        "The memory cap in force (--max_memory or CONFIG SET; 0: none).",
        static_cast<double>(service->max_memory()));
  if (const std::optional<AllocatorStats> a = ReadAllocatorStats()) {
    Gauge(w, "tally_allocator_allocated_bytes",
          "Bytes allocated by the application (jemalloc stats.allocated).",
          D(a->allocated));
    Gauge(w, "tally_allocator_active_bytes",
          "Bytes in active allocator pages (jemalloc stats.active).",
          D(a->active));
    Gauge(w, "tally_allocator_resident_bytes",
          "Bytes resident in the allocator (jemalloc stats.resident).",
          D(a->resident));
  }
  PersistenceMetrics(w, journal);
  return w.Take();
}

}  // namespace tally
