// Service::DoInfo: the INFO command's text, in redis-cli's form ("# Section"
// then "field:value" lines; docs/operations.md lists every field). Fields
// are only ever added: tests, tally --stat and operators' scripts parse
// them.

#include <unistd.h>

#include <iomanip>
#include <sstream>

#include "server/allocator_stats.h"
#include "server/process_stats.h"
#include "server/service.h"

namespace tally {

namespace {

// Microseconds with Redis' 3 decimals (usec_per_call, percentiles).
std::string Usec(double ns) {
  std::ostringstream out;
  out << std::fixed << std::setprecision(3) << ns / 1000.0;
  return out.str();
}

void CommandSections(const CommandStatsSnapshot& stats, bool commandstats,
                     bool errorstats, bool latencystats, std::ostream& out) {
  if (commandstats) {
    out << "# Commandstats\n";
    for (const CommandSnapshot& c : stats.commands) {
      const double sum_ns = static_cast<double>(c.latency.sum_ns());
      out << "cmdstat_" << proto::OpName(c.op) << ":calls=" << c.calls
          << ",usec=" << c.latency.sum_ns() / 1000
          << ",usec_per_call=" << Usec(sum_ns / static_cast<double>(c.calls))
          << ",failed_calls=" << c.failed << "\n";
    }
    out << "\n";
  }
  if (errorstats) {
    out << "# Errorstats\n";
    const std::array<uint64_t, 32> errors = stats.AllErrors();
    for (size_t code = 0; code < errors.size(); ++code) {
      if (errors[code] == 0) continue;
      out << "errorstat_" << CodeName(static_cast<Code>(code))
          << ":count=" << errors[code] << "\n";
    }
    out << "\n";
  }
  if (latencystats) {
    out << "# Latencystats\n";
    for (const CommandSnapshot& c : stats.commands) {
      out << "latency_percentiles_usec_" << proto::OpName(c.op) << ":p50="
          << Usec(static_cast<double>(c.latency.ValueAtPercentile(50)))
          << ",p99="
          << Usec(static_cast<double>(c.latency.ValueAtPercentile(99)))
          << ",p99.9="
          << Usec(static_cast<double>(c.latency.ValueAtPercentile(99.9)))
          << "\n";
    }
    out << "\n";
  }
}

}  // namespace

proto::Response Service::DoInfo(const proto::InfoRequest& request) {
  const std::string& want = request.section;
  auto wanted = [&want](const char* name) {
    return want.empty() || want == "all" || want == name;
  };
  const EngineStats s = engine_->Stats();
  const DedupeStats d = journal_->dedupe()->Stats();
  const LimitStats& l = limit_stats_;
  auto get = [](const LimitStats::Counter& c) {
    return c.load(std::memory_order_relaxed);
  };
  const bool commands = wanted("commandstats") || wanted("errorstats") ||
                        wanted("latencystats") || wanted("clients") ||
                        wanted("stats");
  const CommandStatsSnapshot cs =
      commands ? command_stats_.Snapshot() : CommandStatsSnapshot{};
  std::ostringstream out;
  if (wanted("server")) {
    out << "# Server\nserver:" << options_.server_name
        << "\nversion:" << options_.version
        << "\nrevision:" << options_.revision
        << "\nprotocol_version:" << kProtocolVersion << "\nuptime_seconds:"
        << std::chrono::duration_cast<std::chrono::seconds>(BootClock::now() -
                                                            started_)
               .count()
        << "\nserver_time_ms:" << clock_->NowMs() << "\nprocess_id:" << getpid()
        << "\ncpu_seconds:" << ProcessCpuSeconds() << "\n\n";
  }
  if (wanted("clients")) {
    out << "# Clients\nconnected_clients:" << get(l.connections_current)
        << "\nmaxclients:" << get(l.max_connections)
        << "\ntotal_connections_received:" << get(l.connections_total)
        << "\nrejected_connections:" << get(l.rejected_max_connections)
        << "\ninflight_requests:" << cs.inflight << "\n\n";
  }
  if (wanted("memory")) {
    out << "# Memory\nused_bytes:" << s.bytes + d.bytes
        << "\nengine_bytes:" << s.bytes << "\ntable_bytes:" << s.table_bytes
        << "\ndedupe_bytes:" << d.bytes << "\nrss_bytes:" << ProcessRssBytes()
        << "\nallocator:" << AllocatorName();
    // Without jemalloc (sanitizer builds) the allocator_* fields are absent
    // rather than zero: "allocator:libc" says why.
    if (const std::optional<AllocatorStats> a = ReadAllocatorStats()) {
      out << "\nallocator_allocated:" << a->allocated
          << "\nallocator_active:" << a->active
          << "\nallocator_resident:" << a->resident
          << "\nallocator_mapped:" << a->mapped
          << "\nallocator_retained:" << a->retained
          << "\nallocator_frag_ratio:" << std::fixed << std::setprecision(2)
          << a->frag_ratio() << std::defaultfloat;
    }
    out << "\n\n";
  }
  if (wanted("keyspace")) {
    out << "# Keyspace\nkeys:" << s.keys << "\nbuckets:" << s.buckets
        << "\nraw_keys_converted:" << s.converted_keys
        << "\nexpired_keys:" << s.expired_keys
        << "\nexpired_buckets:" << s.expired_buckets
        << "\ndeleted_keys:" << s.deleted_keys << "\n\n";
  }
  if (wanted("stats")) {
    out << "# Stats\nrequests:" << requests_.load() << "\nadds:" << s.adds
        << "\nqueries:" << s.queries
        << "\nrejected_time_out_of_range:" << s.rejected_time
        << "\nrejected_overflow:" << s.rejected_overflow
        << "\nrejected_invalid:" << s.rejected_invalid
        << "\ndeadline_exceeded:" << deadline_exceeded_.load()
        << "\nidempotency_ids:" << d.entries
        << "\nidempotent_duplicates:" << d.duplicates
        << "\nidempotency_conflicts:" << d.conflicts
        << "\nidempotency_evicted_early:" << d.evicted_early
        << "\ntotal_net_input_bytes:" << cs.net_input_bytes
        << "\ntotal_net_output_bytes:" << cs.net_output_bytes << "\n\n";
  }
  if (wanted("limits")) {
    out << "# Limits\nmax_connections:" << get(l.max_connections)
        << "\nconnections_current:" << get(l.connections_current)
        << "\nconnections_total:" << get(l.connections_total)
        << "\nmax_key_bytes:" << max_key_bytes_.load()
        << "\nmax_batch_items:" << max_batch_items_.load()
        << "\nmax_memory:" << max_memory_.load()
        << "\nengine_memory_bytes:" << engine_->memory_bytes()
        << "\nrejected_max_connections:" << get(l.rejected_max_connections)
        << "\naccept_retries:" << get(l.accept_retries)
        << "\nclosed_frame_timeout:" << get(l.frame_timeout)
        << "\nclosed_idle_timeout:" << get(l.idle_timeout)
        << "\nclosed_frame_too_large:" << get(l.frame_too_large)
        << "\nclosed_protocol_error:" << get(l.protocol_error)
        << "\noutput_paused:" << get(l.output_paused)
        << "\nin_flight_paused:" << get(l.in_flight_paused)
        << "\nrejected_max_memory:" << get(l.max_memory)
        << "\nrejected_key_too_long:" << get(l.key_too_long)
        << "\nrejected_batch_too_large:" << get(l.batch_too_large)
        << "\nclosed_auth_backoff:" << get(l.auth_backoff)
        << "\nauth_failures_delayed:" << get(l.auth_failures_delayed)
        << "\nrejected_admin_remote:" << get(l.admin_remote)
        << "\nrejected_token_rate:" << get(l.token_rate) << "\n\n";
  }
  if (wanted("persistence")) {
    const JournalStats j = journal_->Stats();
    const RecoveryReport& r = journal_->recovery_report();
    out << "# Persistence\nwal:" << (j.wal ? "on" : "off (--unsafe_no_wal)")
        << "\ndurability:"
        << (j.wal ? journal_->options().durability.ToString() : "none")
        << "\ndata_dir:" << journal_->options().data_dir
        << "\nwritten_lsn:" << j.written_lsn
        << "\ndurable_lsn:" << j.durable_lsn
        << "\napplied_lsn:" << journal_->applied_lsn()
        << "\nwal_records:" << j.records << "\nwal_groups:" << j.groups
        << "\nwal_mean_group_records:" << j.mean_group_records
        << "\nwal_bytes_written:" << j.bytes_written
        << "\nwal_segments:" << j.wal_segments
        << "\nwal_disk_bytes:" << j.wal_bytes << "\nfsyncs:" << j.syncs
        << "\nfsync_p50_us:" << j.sync_p50_us
        << "\nfsync_p99_us:" << j.sync_p99_us
        << "\nfsync_max_us:" << j.sync_max_us
        << "\nwrite_failed:" << (j.write_failed ? 1 : 0)
        << "\nlast_write_error:" << j.last_write_error
        << "\nrejected_not_persisted:" << j.rejected_not_persisted
        << "\nrejected_busy:" << j.rejected_busy
        << "\nwal_queue_bytes:" << j.queue_bytes
        << "\nsnapshots:" << j.snapshots
        << "\nsnapshot_failures:" << j.snapshot_failures
        << "\nlast_snapshot_lsn:" << j.last_snapshot_lsn
        << "\nlast_snapshot_seconds:" << j.last_snapshot_seconds
        << "\nlast_snapshot_pause_seconds:" << j.last_snapshot_pause_seconds
        << "\nlast_snapshot_bytes:" << j.last_snapshot_bytes
        << "\nlast_snapshot_error:" << j.last_snapshot_error
        << "\nrecovery_mode:" << RecoveryModeName(r.mode)
        << "\nrecovery_snapshot:" << r.snapshot
        << "\nrecovery_records_replayed:" << r.records_replayed
        << "\nrecovery_seconds:" << r.seconds
        << "\nrecovery_truncated_bytes:" << r.truncated_bytes
        << "\nrecovery_discarded_records:" << r.discarded_records
        << "\nrecovery_report:" << r.Summary() << "\n\n";
  }
  CommandSections(cs, wanted("commandstats"), wanted("errorstats"),
                  wanted("latencystats"), out);
  // Not part of "all": digests walk every key.
  if (want == "debug" && options_.enable_debug_info) {
    out << "# Debug\napplied_lsn:" << journal_->applied_lsn()
        << "\nengine_digest:" << std::hex << std::setw(16) << std::setfill('0')
        << engine_->Digest() << "\ndedupe_digest:" << std::setw(16)
        << journal_->dedupe()->Digest() << std::dec << "\n\n";
  }
  std::string text = out.str();
  if (text.empty()) {
    return proto::Response::Error(Status::InvalidArgument(
        "unknown INFO section '" + want +
        "' (server, clients, memory, keyspace, stats, limits, persistence, "
        "commandstats, errorstats, latencystats, debug, all)"));
  }
  proto::Response r;
  r.body = proto::InfoResult{std::move(text)};
  return r;
}

}  // namespace tally
