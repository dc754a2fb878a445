#include "server/flags.h"

#include <gflags/gflags.h>

#include <limits>
#include <string>
#include <string_view>

#include "protocol/limits.h"
#include "server/policy_config.h"

DEFINE_string(bind, "127.0.0.1,::1",
              "Addresses to listen on, comma-separated, all on --port. "
              "Loopback by default (::1 is skipped with a warning on a host "
              "without IPv6): without authentication and TLS, tallyd is for "
              "a trusted host only.");
DEFINE_int32(port, 7379, "TCP port to listen on (0 picks a free one).");
DEFINE_int32(
    threads, 0,
    "I/O threads; 0 = one per core (requests are short and CPU-bound).");
DEFINE_int32(busy_poll_us, 0,
             "After handling requests, I/O threads keep polling the sockets "
             "for this many microseconds before sleeping (0: off). Cuts the "
             "wake-up from each round trip at the price of CPU while traffic "
             "flows; see docs/operations.md.");
DEFINE_string(data_dir, "./data",
              "Directory for the WAL (data_dir/wal) and snapshots "
              "(data_dir/snap); created with mode 0700 if absent.");
DEFINE_string(durability, "fsync",
              "When an increment is acknowledged: fsync (after fdatasync of "
              "its group commit: survives power loss; the default, because a "
              "fraud counter must not forget), interval:<ms> (after write(); "
              "fdatasync every <ms>: survives kill -9, loses at most <ms> + "
              "one fsync on power loss), os (after write(); the kernel "
              "flushes, ~30 s).");
DEFINE_string(recovery, "tolerate-torn-tail",
              "What to do with a damaged WAL at start: tolerate-torn-tail "
              "(truncate a torn last record, refuse corruption elsewhere), "
              "point-in-time (start from the last good record, move the rest "
              "aside), absolute (refuse any damage).");
DEFINE_int64(snapshot_interval_s, 300,
             "Seconds between snapshots (0: only at clean shutdown). A "
             "snapshot bounds restart time and WAL size; 5 min keeps replay "
             "under a few seconds at W1's rates.");
DEFINE_int64(wal_segment_mb, 64,
             "Size of each preallocated WAL segment in MiB (64: few files, "
             "and a full disk shows at segment creation, not mid-record).");
DEFINE_bool(unsafe_no_wal, false,
            "Keep state in memory only (no WAL, no snapshots): every restart "
            "loses all counters. For benchmarks only; warns at every start.");
DEFINE_string(policy_file, "",
              "Policy file (one policy per line, see docs/operations.md); "
              "empty = built-in default policy 1s x 2h, 1m x 48h, 1h x 35d, "
              "1d x 400d. Re-read and applied on SIGHUP.");
DEFINE_int32(max_frame_bytes, 1 << 20,
             "Largest request body in bytes (1 MiB: a batch of thousands of "
             "events fits; larger lengths close the connection before any "
             "allocation).");
DEFINE_int32(max_output_bytes, 8 << 20,
             "Replies buffered per connection before tallyd stops reading "
             "from it (8 MiB: a client that never reads cannot grow memory).");
DEFINE_int32(metrics_port, 0,
             "Port of the Prometheus endpoint (GET /metrics, /healthz; "
             "docs/operations.md, Metrics). 0 disables it (the default, so "
             "that tools and tests starting tallyd need no second port; the "
             "packaged /etc/tally/tallyd.flags sets 9479). -1 picks a free "
             "port, printed as "
             "'tallyd metrics port=N' before the ready line.");
DEFINE_string(metrics_bind, "127.0.0.1",
              "Address of the metrics endpoint. It has no authentication: "
              "loopback by default; a non-loopback address is allowed (a "
              "Prometheus server scrapes from elsewhere) and warned about at "
              "every start.");
DEFINE_int32(max_connections, 10000,
             "Most client connections at once (like Redis maxclients); "
             "lowered at start to RLIMIT_NOFILE minus 64 descriptors kept for "
             "the WAL and snapshots. One more gets RESOURCE_EXHAUSTED and is "
             "closed.");
DEFINE_int64(frame_timeout_ms, 10000,
             "Once a frame's first byte arrives, its 24-byte header must "
             "arrive within this many ms (slowloris; 0: off). Closed with "
             "DEADLINE_EXCEEDED.");
DEFINE_int64(min_frame_rate_bytes_per_s, 1024,
             "After --frame_timeout_ms of grace, a frame's bytes must keep "
             "arriving at least this fast (0: off).");
DEFINE_int64(idle_timeout_s, 0,
             "Close a connection that sends no frame for this many seconds "
             "(0: never, like Redis' timeout 0).");
DEFINE_int32(max_key_bytes, 256,
             "Longest key accepted, 1..256 bytes; a longer one fails its item "
             "with INVALID_KEY.");
DEFINE_int32(max_batch_items, 10000,
             "Most items in one request, 1..10000; more fails the request "
             "with RESOURCE_EXHAUSTED.");
DEFINE_string(max_memory, "0",
              "Engine memory cap in bytes, with an optional K/M/G suffix "
              "(powers of 1024; 0: no cap). At the cap, adds that would "
              "create a key are refused with RESOURCE_EXHAUSTED (OOM); "
              "existing keys keep counting and reads keep working: live "
              "counters are never evicted.");
DEFINE_uint32(hotkeys_sample_every, 64,
              "HOTKEYS samples 1 in this many adds into its top-K tracker "
              "(0: off). 64 keeps its cost on the add path negligible "
              "(docs/operations.md, HOTKEYS).");
DEFINE_int32(distinct_exact_limit, 1000,
             "Distinct counts are exact up to this many members per answer, "
             "then a HyperLogLog estimate (0.81 % standard error).");
DEFINE_int64(dedupe_horizon_ms, 24LL * 3600 * 1000,
             "How long an event's idempotency id is remembered, in ms (24 h "
             "covers producer retries across an outage).");
DEFINE_int64(dedupe_max_ids, 4'000'000,
             "Most idempotency ids remembered (~100 B each: 4 M = ~400 MB); "
             "when full the oldest are forgotten early and counted.");
DEFINE_int64(sweep_interval_ms, 50,
             "Milliseconds between background sweeps of one shard (256 shards: "
             "every key checked every ~13 s). Each sweep is a WAL record, so "
             "replay expires exactly what the server expired.");
DEFINE_string(tls_cert_file, "",
              "PEM certificate (then its chain) for TLS; with it every "
              "connection is TLS 1.2+ (no plaintext on the same port). Empty: "
              "plaintext, for a trusted host or network only.");
DEFINE_string(tls_key_file, "",
              "PEM private key of --tls_cert_file; must not be readable by "
              "other users (chmod 600), or tallyd refuses to start.");
DEFINE_string(tls_client_ca_file, "",
              "PEM CA certificates that sign client certificates; clients "
              "presenting one are verified against them (mutual TLS).");
DEFINE_bool(tls_require_client_cert, false,
            "Refuse TLS clients without a certificate signed by "
            "--tls_client_ca_file (mutual TLS).");
DEFINE_int32(tls_handshake_timeout_ms, 10000,
             "Close a connection whose TLS handshake has not finished after "
             "this many ms (10 s: ample for a real client across a WAN, "
             "short enough that slow handshakes cannot pile up).");

DEFINE_string(token_file, "",
              "Token file (docs/security.md): one '<id> <role> "
              "sha256:<hex> [key-prefix...]' per line. Set: every connection "
              "must AUTH first. Empty: no authentication, every connection "
              "is admin (loopback only). Re-read on SIGHUP.");
DEFINE_bool(insecure_allow_public_bind, false,
            "Allow a non-loopback --bind without both --token_file and TLS. "
            "Anyone who reaches the port can then read and change counters; "
            "warns at every start.");
DEFINE_bool(allow_root, false,
            "Allow running as root (euid 0). tallyd needs no privilege: run "
            "it as its own user owning --data_dir.");
DEFINE_int32(auth_timeout_ms, 5000,
             "With --token_file: a connection that has not authenticated "
             "this many ms after connecting is closed (slowloris and brute "
             "force before AUTH).");

// SLOWLOG (docs/operations.md, "SLOWLOG"): Redis' slowlog-log-slower-than
// and slowlog-max-len.
DEFINE_int64(slowlog_log_slower_than_us, 10000,
             "SLOWLOG keeps requests that took at least this many "
             "microseconds from frame read to reply ready (a mutation's "
             "includes its WAL write and fsync); negative: off, 0: every "
             "request. 10 ms, like Redis: far above a healthy request, so "
             "only real stalls are kept.");
DEFINE_int64(slowlog_max_len, 128,
             "Entries SLOWLOG keeps (the oldest are dropped); 128 like Redis, "
             "a few tens of KiB.");
// Hardening, second part (docs/security.md): brute force, listeners, admin
// reach and per-token rates.
DEFINE_int32(auth_failure_delay_ms, 200,
             "With --token_file: a failed AUTH is answered after this many ms, "
             "and its connection reads nothing meanwhile (a timer; no thread "
             "waits), so a brute-force client gets one guess per delay per "
             "connection. 0: answer at once.");
DEFINE_bool(admin_allow_remote, false,
            "Allow admin operations (INFO debug, admin commands) from peers "
            "that are not loopback. Off: they are refused with "
            "NO_PERMISSION unless the connection comes from 127.0.0.0/8, "
            "::1 or --unix_socket, whatever the token's role.");
DEFINE_string(unix_socket, "",
              "Also listen on this Unix-domain socket path, for local admin "
              "and tools (empty: off). Its directory is the access control: "
              "it must be owned by tallyd's user with mode 0700 (created so "
              "if missing; anything else refuses to start). The socket is "
              "mode 0600, a stale one is replaced, and it is removed at "
              "stop. Same auth and limits as TCP, no TLS; admin allowed as "
              "from loopback.");

namespace tally {

namespace {

Status SlowLogFromFlags(SlowLogOptions* options) {
  if (FLAGS_slowlog_max_len < 0 || FLAGS_slowlog_max_len > 1'000'000) {
    return Status::InvalidArgument("--slowlog_max_len must be 0..1000000");
  }
  options->log_slower_than_us = FLAGS_slowlog_log_slower_than_us;
  options->max_len = FLAGS_slowlog_max_len;
  return Status::Ok();
}

}  // namespace

std::vector<std::pair<std::string, std::string>> FlagValues() {
  std::vector<gflags::CommandLineFlagInfo> flags;
  gflags::GetAllFlags(&flags);
  std::vector<std::pair<std::string, std::string>> out;
  for (const gflags::CommandLineFlagInfo& f : flags) {
    // tallyd's own flags; not gflags' or glog's.
    if (std::string_view(f.filename).ends_with("server/flags.cc")) {
      out.emplace_back(f.name, f.current_value);
    }
  }
  return out;
}

Result<TallydConfig> ConfigFromFlags() {
  TallydConfig config;
  if (FLAGS_port < 0 || FLAGS_port > 65535) {
    return Status::InvalidArgument("--port must be 0..65535");
  }
  if (FLAGS_threads < 0 || FLAGS_threads > 1024) {
    return Status::InvalidArgument("--threads must be 0..1024");
  }
  if (FLAGS_busy_poll_us < 0 || FLAGS_busy_poll_us > 1'000'000) {
    return Status::InvalidArgument("--busy_poll_us must be 0..1000000");
  }
  if (FLAGS_max_frame_bytes < 1024 || FLAGS_max_output_bytes < 1024) {
    return Status::InvalidArgument(
        "--max_frame_bytes and --max_output_bytes must be at least 1024");
  }
  if (FLAGS_distinct_exact_limit < 0 || FLAGS_dedupe_horizon_ms <= 0 ||
      FLAGS_dedupe_max_ids <= 0 || FLAGS_sweep_interval_ms < 0) {
    return Status::InvalidArgument(
        "--distinct_exact_limit, --dedupe_* and --sweep_interval_ms must be "
        "positive");
  }
  if (FLAGS_max_connections < 1 || FLAGS_frame_timeout_ms < 0 ||
      FLAGS_min_frame_rate_bytes_per_s < 0 || FLAGS_idle_timeout_s < 0 ||
      FLAGS_idle_timeout_s > 365LL * 24 * 3600) {
    return Status::InvalidArgument(
        "--max_connections must be >= 1; --frame_timeout_ms, "
        "--min_frame_rate_bytes_per_s and --idle_timeout_s >= 0");
  }
  if (FLAGS_max_key_bytes < 1 ||
      static_cast<size_t>(FLAGS_max_key_bytes) > kMaxKeyBytes ||
      FLAGS_max_batch_items < 1 ||
      static_cast<size_t>(FLAGS_max_batch_items) > kMaxBatchItems) {
    return Status::InvalidArgument(
        "--max_key_bytes must be 1.." + std::to_string(kMaxKeyBytes) +
        " and --max_batch_items 1.." + std::to_string(kMaxBatchItems) +
        " (the protocol's limits)");
  }
  Result<int64_t> max_memory = ParseByteSize(FLAGS_max_memory);
  if (!max_memory.ok()) {
    return Status::InvalidArgument("--max_memory: " +
                                   std::string(max_memory.status().message()));
  }
  config.server.max_connections = FLAGS_max_connections;
  config.server.connection.frame_timeout_ms = FLAGS_frame_timeout_ms;
  config.server.connection.min_frame_rate_bytes_per_s =
      FLAGS_min_frame_rate_bytes_per_s;
  config.server.connection.idle_timeout_ms = FLAGS_idle_timeout_s * 1000;
  config.service.max_key_bytes = static_cast<size_t>(FLAGS_max_key_bytes);
  config.service.max_batch_items = static_cast<size_t>(FLAGS_max_batch_items);
  config.service.max_memory = *max_memory;
  config.service.hot_keys.sample_every = FLAGS_hotkeys_sample_every;
  const BindDecision bind = CheckBindPolicy(
      FLAGS_bind, !FLAGS_token_file.empty(), !FLAGS_tls_cert_file.empty(),
      FLAGS_insecure_allow_public_bind);
  if (!bind.allowed) return Status::InvalidArgument(bind.message);
  if (bind.warn) config.bind_warning = bind.message;
  if (FLAGS_auth_timeout_ms < 1 || FLAGS_auth_timeout_ms > 600'000) {
    return Status::InvalidArgument("--auth_timeout_ms must be 1..600000");
  }
  if (FLAGS_auth_failure_delay_ms < 0 || FLAGS_auth_failure_delay_ms > 10'000) {
    return Status::InvalidArgument("--auth_failure_delay_ms must be 0..10000");
  }
  config.allow_root = FLAGS_allow_root;
  config.token_file = FLAGS_token_file;
  if (!config.token_file.empty()) {
    Result<std::vector<Token>> tokens = LoadTokenFile(config.token_file);
    if (!tokens.ok()) return tokens.status();
    auto auth = std::make_shared<AuthConfig>();
    auth->tokens = std::make_shared<TokenStore>(std::move(*tokens));
    auth->throttle = std::make_shared<AuthThrottle>();
    auth->denials = std::make_shared<DenialLog>();
    auth->rates = std::make_shared<TokenRateLimiter>();
    auth->auth_timeout = std::chrono::milliseconds(FLAGS_auth_timeout_ms);
    auth->failure_delay =
        std::chrono::milliseconds(FLAGS_auth_failure_delay_ms);
    config.server.connection.auth = std::move(auth);
  }
  if (FLAGS_metrics_port < -1 || FLAGS_metrics_port > 65535) {
    return Status::InvalidArgument(
        "--metrics_port must be -1 (any free port), 0 (off) or 1..65535");
  }
  config.metrics_enabled = FLAGS_metrics_port != 0;
  config.metrics.port =
      static_cast<uint16_t>(FLAGS_metrics_port < 0 ? 0 : FLAGS_metrics_port);
  config.metrics.bind = FLAGS_metrics_bind;
  if (config.metrics_enabled && !IsLoopbackAddress(FLAGS_metrics_bind)) {
    config.metrics_warning =
        "--metrics_bind=" + FLAGS_metrics_bind +
        " is not loopback: anyone who can reach it reads tallyd's load, "
        "sizes and error rates (never a key). Firewall it to the "
        "Prometheus servers.";
  }
  config.service.revision = TALLY_REVISION;
  config.server.bind = FLAGS_bind;
  config.server.connection.admin_allow_remote = FLAGS_admin_allow_remote;
  config.server.unix_socket = FLAGS_unix_socket;
  // Only the default may lose its ::1 to a host without IPv6.
  config.server.ipv6_loopback_optional =
      gflags::GetCommandLineFlagInfoOrDie("bind").is_default;
  config.server.port = static_cast<uint16_t>(FLAGS_port);
  config.server.threads = FLAGS_threads;
  config.server.busy_poll_us = FLAGS_busy_poll_us;
  config.server.connection.max_frame_body =
      static_cast<size_t>(FLAGS_max_frame_bytes);
  config.server.connection.max_output_bytes =
      static_cast<size_t>(FLAGS_max_output_bytes);
  if (FLAGS_tls_cert_file.empty() &&
      (!FLAGS_tls_key_file.empty() || !FLAGS_tls_client_ca_file.empty() ||
       FLAGS_tls_require_client_cert)) {
    return Status::InvalidArgument(
        "--tls_key_file, --tls_client_ca_file and --tls_require_client_cert "
        "need --tls_cert_file");
  }
  if (FLAGS_tls_handshake_timeout_ms < 1) {
    return Status::InvalidArgument("--tls_handshake_timeout_ms must be >= 1");
  }
  config.server.tls.cert_file = FLAGS_tls_cert_file;
  config.server.tls.key_file = FLAGS_tls_key_file;
  config.server.tls.client_ca_file = FLAGS_tls_client_ca_file;
  config.server.tls.require_client_cert = FLAGS_tls_require_client_cert;
  config.server.connection.tls_handshake_timeout =
      std::chrono::milliseconds(FLAGS_tls_handshake_timeout_ms);
  config.journal.sweep_interval_ms = FLAGS_sweep_interval_ms;
  config.dedupe.horizon_ms = FLAGS_dedupe_horizon_ms;
  config.dedupe.max_entries = static_cast<size_t>(FLAGS_dedupe_max_ids);
  Result<Durability> durability = ParseDurability(FLAGS_durability);
  if (!durability.ok()) return durability.status();
  config.journal.durability = *durability;
  Result<RecoveryMode> recovery = ParseRecoveryMode(FLAGS_recovery);
  if (!recovery.ok()) return recovery.status();
  config.recovery = *recovery;
  if (FLAGS_snapshot_interval_s < 0 || FLAGS_wal_segment_mb < 1 ||
      FLAGS_wal_segment_mb > 4096) {
    return Status::InvalidArgument(
        "--snapshot_interval_s must be >= 0 and --wal_segment_mb 1..4096");
  }
  if (FLAGS_data_dir.empty()) {
    return Status::InvalidArgument("--data_dir must not be empty");
  }
  config.journal.snapshot_interval_ms = FLAGS_snapshot_interval_s * 1000;
  config.journal.segment_bytes = static_cast<uint64_t>(FLAGS_wal_segment_mb)
                                 << 20;
  config.unsafe_no_wal = FLAGS_unsafe_no_wal;
  config.distinct_exact_limit =
      static_cast<uint32_t>(FLAGS_distinct_exact_limit);
  config.data_dir = FLAGS_data_dir;
  config.policy_file = FLAGS_policy_file;
  if (Status s = SlowLogFromFlags(&config.server.slowlog); !s.ok()) return s;
  if (!FLAGS_policy_file.empty()) {
    Result<PolicySet> policies = LoadPolicyFile(FLAGS_policy_file);
    if (!policies.ok()) return policies.status();
    config.policies = std::move(*policies);
  }
  return config;
}

}  // namespace tally
