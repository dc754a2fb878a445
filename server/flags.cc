#include "server/flags.h"

#include <gflags/gflags.h>

#include "server/policy_config.h"

DEFINE_string(bind, "127.0.0.1",
              "Address to listen on. Loopback by default: without "
              "authentication and TLS, tallyd is for a trusted host only.");
DEFINE_int32(port, 7379, "TCP port to listen on (0 picks a free one).");
DEFINE_int32(
    threads, 0,
    "I/O threads; 0 = one per core (requests are short and CPU-bound).");
DEFINE_string(data_dir, "./data",
              "Directory for the WAL and snapshots (used once durability "
              "lands; until then state is memory-only).");
DEFINE_string(policy_file, "",
              "Policy file (one policy per line, see docs/operations.md); "
              "empty = built-in default policy 1s x 2h, 1m x 48h, 1h x 35d, "
              "1d x 400d.");
DEFINE_int32(max_frame_bytes, 1 << 20,
             "Largest request body in bytes (1 MiB: a batch of thousands of "
             "events fits; larger lengths close the connection before any "
             "allocation).");
DEFINE_int32(max_output_bytes, 8 << 20,
             "Replies buffered per connection before tallyd stops reading "
             "from it (8 MiB: a client that never reads cannot grow memory).");
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
             "every key checked every ~13 s).");

namespace tally {

Result<TallydConfig> ConfigFromFlags() {
  TallydConfig config;
  if (FLAGS_port < 0 || FLAGS_port > 65535) {
    return Status::InvalidArgument("--port must be 0..65535");
  }
  if (FLAGS_threads < 0 || FLAGS_threads > 1024) {
    return Status::InvalidArgument("--threads must be 0..1024");
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
  config.server.bind = FLAGS_bind;
  config.server.port = static_cast<uint16_t>(FLAGS_port);
  config.server.threads = FLAGS_threads;
  config.server.connection.max_frame_body =
      static_cast<size_t>(FLAGS_max_frame_bytes);
  config.server.connection.max_output_bytes =
      static_cast<size_t>(FLAGS_max_output_bytes);
  config.server.sweep_interval_ms = FLAGS_sweep_interval_ms;
  config.service.dedupe.horizon_ms = FLAGS_dedupe_horizon_ms;
  config.service.dedupe.max_entries = static_cast<size_t>(FLAGS_dedupe_max_ids);
  config.distinct_exact_limit =
      static_cast<uint32_t>(FLAGS_distinct_exact_limit);
  config.data_dir = FLAGS_data_dir;
  if (!FLAGS_policy_file.empty()) {
    Result<PolicySet> policies = LoadPolicyFile(FLAGS_policy_file);
    if (!policies.ok()) return policies.status();
    config.policies = std::move(*policies);
  }
  return config;
}

}  // namespace tally
