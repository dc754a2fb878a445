// Service: answers decoded requests from the engine. Knows no sockets and no
// FlatBuffers: a Connection decodes a frame into a proto::Request, calls
// Handle, and encodes the proto::Response. Tests drive it directly.
//
// Per-item semantics (docs/protocol.md): a bad item fails that item with its
// code and message; the others proceed.
//
// Mutations (add, add_and_query's adds, delete) are validated here, encoded
// as one WAL record per request and handed to the Journal, which logs,
// applies and syncs them (storage/journal.h); their reply is built when the
// journal completes them, so a reply never leaves before its record is
// written (or synced, in fsync mode or with wait_durable). Everything else
// is answered at once from the engine.
//
// Thread safety: Handle may be called from many threads at once.

#ifndef TALLY_SERVER_SERVICE_H_
#define TALLY_SERVER_SERVICE_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "protocol/limits.h"
#include "protocol/messages.h"
#include "server/admin_commands.h"
#include "server/command_stats.h"
#include "server/limit_stats.h"
#include "server/runtime_config.h"
#include "storage/boot_clock.h"
#include "storage/dedupe_table.h"
#include "storage/engine.h"
#include "storage/hot_keys.h"
#include "storage/journal.h"

namespace tally {

struct ServiceOptions {
  std::string server_name = "tallyd";
  std::string version = "0.1.0";
  // The source revision (git), for tally_build_info; "unknown" if not built
  // from a git checkout.
  std::string revision = "unknown";
  uint32_t default_scan_count = 100;
  // Answers INFO debug (state digests; costly, so never part of "all").
  bool enable_debug_info = true;
  // Limits (docs/operations.md, "Limits"); at most the protocol's.
  // Keys longer than this fail per item with INVALID_KEY.
  size_t max_key_bytes = kMaxKeyBytes;
  // A request with more items fails whole with RESOURCE_EXHAUSTED.
  size_t max_batch_items = kMaxBatchItems;
  // Engine memory cap in bytes (0: none). At the cap, adds that would create
  // a key are refused per item with RESOURCE_EXHAUSTED; adds to existing
  // keys and every read keep working (noeviction). Refused items are never
  // logged, so replay rebuilds exactly the served state.
  int64_t max_memory = 0;
  // HOTKEYS' tracker: which adds are sampled, over what window.
  HotKeysOptions hot_keys{};
};

struct ServiceStats {
  uint64_t requests = 0;
  uint64_t deadline_exceeded = 0;
};

class Service {
 public:
  using BootTime = BootClock::time_point;

  // Builds a reply on the caller's thread: a deferred reply runs there, not
  // on the journal's writer thread (it may run queries and encode).
  using Deferred = std::function<proto::Response()>;
  // Receives a mutation's reply; called exactly once, from any thread.
  using ReplyFn = std::function<void(Deferred)>;

  // `journal` (which owns the engine and idempotency table) and `clock` are
  // not owned and must outlive the service.
  Service(Journal* journal, const Clock* clock, ServiceOptions options);

  // Answers one request. `received` is when its frame was read: a request
  // whose deadline has passed by now is answered DEADLINE_EXCEEDED without
  // being executed (nothing applied). Returns the response, or nullopt for
  // a mutation, whose reply goes to `reply` once the journal completed it.
  //
  // `behind_mutation`: the caller (a connection) still waits for an earlier
  // mutation of its own. A read is then ordered behind it through the
  // journal (Journal::SubmitBarrier), so one connection always reads its
  // own writes, pipelined or not.
  //
  // `connection_id` names the caller for admin commands (AdminCall); 0 when
  // there is no connection.
  std::optional<proto::Response> Handle(const proto::Request& request,
                                        BootTime received, ReplyFn reply,
                                        bool behind_mutation = false,
                                        uint64_t connection_id = 0);
  // The same, waiting for mutations (tests, tools).
  proto::Response HandleSync(const proto::Request& request, BootTime received);

  ServiceStats Stats() const;
  Engine* engine() const { return engine_; }
  // Limit counters, bumped by the server and connections too (INFO limits).
  LimitStats* limit_stats() { return &limit_stats_; }
  // Per-command statistics, recorded by connections (INFO commandstats,
  // errorstats, latencystats; /metrics).
  CommandStats* command_stats() { return &command_stats_; }
  Journal* journal() const { return journal_; }
  const ServiceOptions& options() const { return options_; }
  // The memory cap in force (CONFIG SET may have changed --max_memory).
  int64_t max_memory() const {
    return max_memory_.load(std::memory_order_relaxed);
  }
  // Registers the limits that CONFIG SET may change (max_key_bytes,
  // max_batch_items, max_memory) and the statistics CONFIG RESETSTAT
  // clears. `config` must outlive the service.
  void RegisterRuntimeSettings(RuntimeConfig* config);
  // The ADMIN operation's command table; register commands before serving.
  AdminCommands* admin_commands() { return &admin_commands_; }
  const HotKeys& hot_keys() const { return hot_keys_; }

 private:
  // Validates, logs and applies a request's adds; `then` gets the results.
  // `after_apply` (may be empty) runs right after they are applied (see
  // Journal::AfterApply).
  void DoAdds(const std::vector<proto::AddItem>& items, bool wait_durable,
              std::function<void(std::vector<proto::AddItemResult>)> then,
              Journal::AfterApply after_apply = nullptr);
  void DoDelete(const proto::DeleteRequest& request, bool wait_durable,
                ReplyFn reply);
  // The configured limits for one item's key: --max_key_bytes, and at the
  // memory cap, whether the key exists. Counts each refusal.
  Status CheckLimits(std::string_view key, bool at_memory_cap);
  proto::QueryItemResult DoQuery(const proto::QueryItem& item);
  proto::Response DoRange(const proto::RangeRequest& request);
  proto::Response DoInspect(const proto::InspectRequest& request);
  proto::Response DoScan(const proto::ScanRequest& request);
  proto::Response DoInfo(const proto::InfoRequest& request);
  proto::Response DoHello(const proto::HelloRequest& request);
  // Registers the admin commands the Service answers itself (DBSIZE).
  void RegisterAdminCommands();
  // The engine's aggregate mask for a wire mask (0 = all the policy tracks).
  uint32_t Aggs(std::string_view key, uint32_t wire_aggs) const;

  Journal* journal_;
  Engine* engine_;
  const Clock* clock_;
  ServiceOptions options_;
  BootTime started_;
  std::atomic<uint64_t> requests_{0};
  std::atomic<uint64_t> deadline_exceeded_{0};
  LimitStats limit_stats_;
  CommandStats command_stats_;
  // Before admin_commands_: its HOTKEYS handler refers to it.
  HotKeys hot_keys_;
  AdminCommands admin_commands_;
  // The run-time settable limits (CONFIG SET); options_ holds their
  // start-up values.
  std::atomic<size_t> max_key_bytes_;
  std::atomic<size_t> max_batch_items_;
  std::atomic<int64_t> max_memory_;
};

}  // namespace tally

#endif  // TALLY_SERVER_SERVICE_H_
