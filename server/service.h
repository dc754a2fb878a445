// Service: answers decoded requests from the engine. Knows no sockets and no
// FlatBuffers: a Connection decodes a frame into a proto::Request, calls
// Handle, and encodes the proto::Response. Tests drive it directly.
//
// Per-item semantics (docs/protocol.md): a bad item fails that item with its
// code and message; the others proceed. Adds without an idempotency id go
// through Engine::AddBatch; adds with one go through the DedupeTable, so a
// retried event is applied once within the dedupe horizon.
//
// Thread safety: Handle may be called from many threads at once.

#ifndef TALLY_SERVER_SERVICE_H_
#define TALLY_SERVER_SERVICE_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>

#include "protocol/messages.h"
#include "storage/dedupe_table.h"
#include "storage/engine.h"

namespace tally {

struct ServiceOptions {
  std::string server_name = "tallyd";
  std::string version = "0.1.0";
  uint32_t default_scan_count = 100;
  DedupeOptions dedupe;
  // Shown by INFO; what the server does with acknowledged writes.
  std::string durability =
      "none (memory only: the WAL arrives with the durability issue)";
};

struct ServiceStats {
  uint64_t requests = 0;
  uint64_t deadline_exceeded = 0;
};

class Service {
 public:
  using SteadyTime = std::chrono::steady_clock::time_point;

  // `engine` and `clock` are not owned and must outlive the service.
  Service(Engine* engine, const Clock* clock, ServiceOptions options);

  // Answers one request. `received` is when its frame was read: a request
  // whose deadline has passed by now is answered DEADLINE_EXCEEDED without
  // being executed (nothing applied).
  proto::Response Handle(const proto::Request& request, SteadyTime received);

  ServiceStats Stats() const;
  const DedupeTable& dedupe() const { return dedupe_; }

 private:
  void DoAdds(const std::vector<proto::AddItem>& items,
              std::vector<proto::AddItemResult>* out);
  proto::QueryItemResult DoQuery(const proto::QueryItem& item);
  proto::Response DoRange(const proto::RangeRequest& request);
  proto::Response DoInspect(const proto::InspectRequest& request);
  proto::Response DoScan(const proto::ScanRequest& request);
  proto::Response DoDelete(const proto::DeleteRequest& request);
  proto::Response DoInfo(const proto::InfoRequest& request);
  proto::Response DoHello(const proto::HelloRequest& request);
  // The engine's aggregate mask for a wire mask (0 = all the policy tracks).
  uint32_t Aggs(std::string_view key, uint32_t wire_aggs) const;

  Engine* engine_;
  const Clock* clock_;
  ServiceOptions options_;
  DedupeTable dedupe_;
  SteadyTime started_;
  std::atomic<uint64_t> requests_{0};
  std::atomic<uint64_t> deadline_exceeded_{0};
};

}  // namespace tally

#endif  // TALLY_SERVER_SERVICE_H_
