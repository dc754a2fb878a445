#include "server/service.h"

#include <glog/logging.h>

#include <algorithm>
#include <future>
#include <memory>

#include "protocol/validation.h"
#include "server/keyspace_commands.h"
#include "server/latency_command.h"
#include "storage/snapshot.h"
#include "storage/wal_record.h"

namespace tally {

namespace {

proto::Aggregates ToWire(const Answer& a) {
  return {.count = a.count,
          .sum = a.sum,
          .min = a.min,
          .max = a.max,
          .avg = a.avg,
          .distinct = a.distinct,
          .exact = a.exact,
          .distinct_error = a.distinct_error,
          .covered_from_ms = a.covered_from_ms,
          .covered_to_ms = a.covered_to_ms,
          .resolution_ms = a.resolution_ms};
}

// Items of a batch request (0 for the others).
size_t BatchItems(const proto::Request& request) {
  switch (request.op()) {
    case proto::Op::kAdd:
      return std::get<proto::AddRequest>(request.body).items.size();
    case proto::Op::kQuery:
      return std::get<proto::QueryRequest>(request.body).items.size();
    case proto::Op::kAddAndQuery: {
      const auto& body = std::get<proto::AddAndQueryRequest>(request.body);
      return body.adds.size() + body.queries.size();
    }
    case proto::Op::kDelete:
      return std::get<proto::DeleteRequest>(request.body).keys.size();
    default:
      return 0;
  }
}

// The hot-key tracker's clock: monotonic (BootClock), so its decay never
// runs backwards.
int64_t BootNowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             BootClock::now().time_since_epoch())
      .count();
}

template <typename T>
proto::Response Ok(T body) {
  proto::Response r;
  r.body = std::move(body);
  return r;
}

}  // namespace

Service::Service(Journal* journal, const Clock* clock, ServiceOptions options)
    : journal_(journal),
      engine_(journal->engine()),
      clock_(clock),
      options_(std::move(options)),
      started_(BootClock::now()),
      hot_keys_(options_.hot_keys),
      max_key_bytes_(options_.max_key_bytes),
      max_batch_items_(options_.max_batch_items),
      max_memory_(options_.max_memory) {
  RegisterAdminCommands();
}

void Service::RegisterRuntimeSettings(RuntimeConfig* config) {
  auto size_setting = [config](const char* name, std::string help,
                               std::atomic<size_t>* target, size_t max) {
    config->Register(
        name, std::move(help), [target] { return std::to_string(*target); },
        [name, target, max](std::string_view value) -> Status {
          Result<int64_t> n = ParseByteSize(value);
          if (!n.ok() || *n < 1 || static_cast<uint64_t>(*n) > max) {
            return Status::InvalidArgument(std::string(name) + " must be 1.." +
                                           std::to_string(max) + ", not '" +
                                           std::string(value) + "'");
          }
          target->store(static_cast<size_t>(*n), std::memory_order_relaxed);
          return Status::Ok();
        });
  };
  size_setting("max_key_bytes",
               "longer keys fail per item with INVALID_KEY (1..256)",
               &max_key_bytes_, kMaxKeyBytes);
  size_setting("max_batch_items",
               "larger requests fail whole with RESOURCE_EXHAUSTED",
               &max_batch_items_, kMaxBatchItems);
  config->Register(
      "max_memory",
      "engine memory cap in bytes (K/M/G suffixes; 0 = none): new keys are "
      "refused at the cap",
      [this] { return std::to_string(max_memory_.load()); },
      [this](std::string_view value) -> Status {
        Result<int64_t> n = ParseByteSize(value);
        if (!n.ok()) {
          return Status::InvalidArgument(
              "max_memory must be a byte size like 512M or 0, not '" +
              std::string(value) + "'");
        }
        max_memory_.store(*n, std::memory_order_relaxed);
        return Status::Ok();
      });
  config->AddStatsReset([this] {
    requests_.store(0, std::memory_order_relaxed);
    deadline_exceeded_.store(0, std::memory_order_relaxed);
    command_stats_.Reset();  // INFO commandstats/errorstats/latencystats
  });
}

void Service::RegisterAdminCommands() {
  RegisterLatencyCommand(&command_stats_, &admin_commands_);
  RegisterKeyspaceCommands(&admin_commands_, {.engine = engine_,
                                              .dedupe = journal_->dedupe(),
                                              .hot_keys = &hot_keys_,
                                              .now_ms = &BootNowMs});
  admin_commands_.Register(
      {.name = "DBSIZE",
       .arity = 1,
       .syntax = "DBSIZE",
       .summary = "The number of keys.",
       .handler = [this](const AdminCall&) -> Result<proto::AdminReply> {
         return proto::AdminReply::Integer(
             static_cast<int64_t>(engine_->Stats().keys));
       }});
  admin_commands_.Register(
      {.name = "SAVE",
       .arity = 1,
       .syntax = "SAVE",
       .summary = "Writes a snapshot now and waits for it; replies its LSN, "
                  "file (under data_dir), bytes and seconds. The way to take "
                  "a backup (docs/operations.md, \"Backup and restore\").",
       .handler = [this](const AdminCall&) -> Result<proto::AdminReply> {
         if (!journal_->has_wal()) {
           return Status(Code::kUnavailable,
                         "no data directory (--unsafe_no_wal): nothing to "
                         "snapshot to");
         }
         // Blocks this connection's I/O thread for the snapshot's write
         // (other threads keep serving); the writer pauses adds only for
         // the in-memory copy (INFO persistence, last_snapshot_pause).
         if (Status s = journal_->SnapshotNow(); !s.ok()) return s;
         const JournalStats j = journal_->Stats();
         return proto::AdminReply::Map()
             .Put("lsn", proto::AdminReply::Integer(
                             static_cast<int64_t>(j.last_snapshot_lsn)))
             .Put("file", proto::AdminReply::Text(
                              std::string(snapshot::kDirName) + "/" +
                              snapshot::FileName(j.last_snapshot_lsn)))
             .Put("bytes", proto::AdminReply::Integer(
                               static_cast<int64_t>(j.last_snapshot_bytes)))
             .Put("seconds", proto::AdminReply::Text(
                                 std::to_string(j.last_snapshot_seconds)));
       }});
}

proto::Response Service::HandleSync(const proto::Request& request,
                                    BootTime received) {
  auto promise = std::make_shared<std::promise<Deferred>>();
  std::future<Deferred> later = promise->get_future();
  std::optional<proto::Response> now =
      Handle(request, received,
             [promise](Deferred d) { promise->set_value(std::move(d)); });
  if (now) return std::move(*now);
  return later.get()();
}

std::optional<proto::Response> Service::Handle(const proto::Request& request,
                                               BootTime received, ReplyFn reply,
                                               bool behind_mutation,
                                               uint64_t connection_id) {
  const proto::Op op = request.op();
  const bool mutation = op == proto::Op::kAdd ||
                        op == proto::Op::kAddAndQuery ||
                        op == proto::Op::kDelete;
  if (behind_mutation && !mutation) {
    auto copy = std::make_shared<proto::Request>(request);
    auto response = std::make_shared<proto::Response>();
    journal_->SubmitBarrier(
        [this, copy, response, received, connection_id] {
          *response = *Handle(*copy, received, nullptr, false, connection_id);
        },
        [reply, response] {
          reply([response] { return std::move(*response); });
        });
    return std::nullopt;
  }
  requests_.fetch_add(1, std::memory_order_relaxed);
  if (request.deadline_ms != 0 &&
      BootClock::now() - received >
          std::chrono::milliseconds(request.deadline_ms)) {
    deadline_exceeded_.fetch_add(1, std::memory_order_relaxed);
    return proto::Response::Error(
        Status(Code::kDeadlineExceeded,
               "the request's deadline passed before it ran; nothing applied"));
  }
  if (const size_t items = BatchItems(request);
      items > max_batch_items_.load(std::memory_order_relaxed)) {
    LimitStats::Bump(limit_stats_.batch_too_large);
    return proto::Response::Error(Status(
        Code::kResourceExhausted, "request has " + std::to_string(items) +
                                      " items; the limit is " +
                                      std::to_string(max_batch_items_.load()) +
                                      " (--max_batch_items); nothing applied"));
  }
  switch (request.op()) {
    case proto::Op::kHello:
      return DoHello(std::get<proto::HelloRequest>(request.body));
    case proto::Op::kPing:
      return Ok(proto::PingResult{});
    case proto::Op::kAdd: {
      DoAdds(std::get<proto::AddRequest>(request.body).items,
             request.wait_durable,
             [reply](std::vector<proto::AddItemResult> items) {
               reply([items = std::move(items)]() mutable {
                 proto::AddResult result;
                 result.items = std::move(items);
                 return Ok(std::move(result));
               });
             });
      return std::nullopt;
    }
    case proto::Op::kQuery: {
      proto::QueryResult result;
      for (const auto& item :
           std::get<proto::QueryRequest>(request.body).items) {
        result.items.push_back(DoQuery(item));
      }
      return Ok(std::move(result));
    }
    case proto::Op::kAddAndQuery: {
      const auto& body = std::get<proto::AddAndQueryRequest>(request.body);
      // The queries see exactly the state right after this request's adds
      // (read-your-writes, and nothing logged after them): they run on the
      // journal's thread between this record and the next.
      struct Pending {
        std::vector<proto::QueryItem> queries;
        std::vector<proto::QueryItemResult> answers;
        bool ran = false;
      };
      auto pending = std::make_shared<Pending>();
      pending->queries = body.queries;
      DoAdds(
          body.adds, request.wait_durable,
          [this, reply, pending](std::vector<proto::AddItemResult> adds) {
            reply([this, pending, adds = std::move(adds)]() mutable {
              if (!pending->ran) {
                // Nothing was logged (every add invalid, or the WAL
                // refused them): answer from the current state.
                for (const auto& item : pending->queries) {
                  pending->answers.push_back(DoQuery(item));
                }
              }
              proto::AddAndQueryResult result;
              result.adds = std::move(adds);
              result.queries = std::move(pending->answers);
              return Ok(std::move(result));
            });
          },
          [this, pending] {
            pending->ran = true;
            for (const auto& item : pending->queries) {
              pending->answers.push_back(DoQuery(item));
            }
          });
      return std::nullopt;
    }
    case proto::Op::kRange:
      return DoRange(std::get<proto::RangeRequest>(request.body));
    case proto::Op::kInspect:
      return DoInspect(std::get<proto::InspectRequest>(request.body));
    case proto::Op::kScan:
      return DoScan(std::get<proto::ScanRequest>(request.body));
    case proto::Op::kDelete:
      DoDelete(std::get<proto::DeleteRequest>(request.body),
               request.wait_durable, std::move(reply));
      return std::nullopt;
    case proto::Op::kInfo:
      return DoInfo(std::get<proto::InfoRequest>(request.body));
    case proto::Op::kAdmin:
      return admin_commands_.Run(std::get<proto::AdminRequest>(request.body),
                                 connection_id);
    case proto::Op::kAuth:  // answered by the connection (server/auth.h)
      return proto::Response::Error(
          Status(Code::kProtocolError,
                 "AUTH reached the service; it is answered by "
                 "the connection"));
    case proto::Op::kNone:
      break;
  }
  return proto::Response::Error(
      Status(Code::kProtocolError, "a request needs a body"));
}

void Service::DoAdds(
    const std::vector<proto::AddItem>& items, bool wait_durable,
    std::function<void(std::vector<proto::AddItemResult>)> then,
    Journal::AfterApply after_apply) {
  std::vector<proto::AddItemResult> out(items.size());
  // Invalid items get their error now and are not logged; the valid ones
  // become one WAL record, applied in order by the journal.
  std::vector<size_t> positions;
  std::vector<wal::AddOp> ops;
  positions.reserve(items.size());
  ops.reserve(items.size());
  // At the memory cap, only keys that exist take adds. Decided here, before
  // logging, so a refused item never reaches the WAL and replay applies
  // exactly what was accepted. (A key created or removed between this check
  // and the journal's apply moves the total by at most this batch: the cap
  // is soft by one batch per connection.)
  const int64_t max_memory = max_memory_.load(std::memory_order_relaxed);
  const bool at_memory_cap =
      max_memory > 0 && engine_->memory_bytes() >= max_memory;
  for (size_t i = 0; i < items.size(); ++i) {
    Status invalid = proto::ValidateAddItem(items[i]);
    if (invalid.ok()) invalid = CheckLimits(items[i].key, at_memory_cap);
    if (!invalid.ok()) {
      out[i].code = invalid.code();
      out[i].message = std::string(invalid.message());
      continue;
    }
    const proto::AddItem& item = items[i];
    if (hot_keys_.ShouldSample()) hot_keys_.Record(item.key, BootNowMs());
    wal::AddOp op;
    op.key = item.key;
    op.time_ms = item.time_ms == 0 ? kNow : item.time_ms;
    op.count = item.count;
    op.amount = item.amount;
    op.has_member = item.member.has_value();
    if (op.has_member) op.member = *item.member;
    op.has_id = item.id.has_value();
    if (op.has_id) {
      op.id = *item.id;
      op.digest = wal::EventDigest(op);
    }
    ops.push_back(op);
    positions.push_back(i);
  }
  if (ops.empty()) {
    then(std::move(out));
    return;
  }
  std::string payload;
  wal::EncodeAddBatch(ops, &payload);
  const bool check_durable =
      wait_durable ||
      journal_->options().durability.mode == DurabilityMode::kFsync;
  journal_->Submit(
      wal::RecordType::kAddBatch, std::move(payload), wait_durable,
      [this, out = std::move(out), positions = std::move(positions),
       then = std::move(then),
       check_durable](uint64_t lsn, Status status,
                      std::vector<wal::ItemOutcome>&& outcomes) mutable {
        // RELIABILITY.md 1.1: never acknowledge past the durable LSN. One
        // atomic load per request: checked in every build, since a
        // violation is exactly the bug no other test would notice.
        if (status.ok() && check_durable && journal_->has_wal()) {
          CHECK_LE(lsn, journal_->durable_lsn())
              << "a reply would acknowledge a record that is not fsynced";
        }
        for (size_t k = 0; k < positions.size(); ++k) {
          proto::AddItemResult& r = out[positions[k]];
          if (!status.ok() || k >= outcomes.size()) {
            const Status& s =
                status.ok() ? Status::Internal("missing outcome") : status;
            r.code = s.code();
            r.message = std::string(s.message());
            continue;
          }
          const wal::ItemOutcome& o = outcomes[k];
          r.code = o.status.code();
          r.message = std::string(o.status.message());
          r.time_ms = o.time_ms;
          r.duplicate = o.duplicate;
          r.lsn = lsn;
        }
        then(std::move(out));
      },
      std::move(after_apply));
}

uint32_t Service::Aggs(std::string_view key, uint32_t wire_aggs) const {
  if (wire_aggs != 0) return wire_aggs;
  const Policy& policy = engine_->policies().Match(key);
  return policy.track_distinct ? kAggAll : kAggAll & ~uint32_t{kAggDistinct};
}

Status Service::CheckLimits(std::string_view key, bool at_memory_cap) {
  const size_t max_key_bytes = max_key_bytes_.load(std::memory_order_relaxed);
  if (key.size() > max_key_bytes) {
    LimitStats::Bump(limit_stats_.key_too_long);
    return Status::InvalidKey(
        "key is " + std::to_string(key.size()) + " bytes; the maximum is " +
        std::to_string(max_key_bytes) + " (--max_key_bytes)");
  }
  if (at_memory_cap && !engine_->Contains(key)) {
    LimitStats::Bump(limit_stats_.max_memory);
    return Status(Code::kResourceExhausted,
                  "OOM: max_memory reached (" +
                      std::to_string(max_memory_.load()) +
                      " bytes); new keys refused, existing keys keep "
                      "counting");
  }
  return Status::Ok();
}

proto::QueryItemResult Service::DoQuery(const proto::QueryItem& item) {
  proto::QueryItemResult r;
  Status invalid = proto::ValidateQueryItem(item);
  if (invalid.ok()) invalid = CheckLimits(item.key, /*at_memory_cap=*/false);
  if (!invalid.ok()) {
    r.code = invalid.code();
    r.message = std::string(invalid.message());
    return r;
  }
  // Read before the query: the answer includes at least this prefix.
  const uint64_t lsn = journal_->applied_lsn();
  const Window window =
      item.last_ms != 0
          ? Window::Last(item.last_ms, item.at_ms == 0 ? kNow : item.at_ms)
          : Window::Between(item.from_ms, item.to_ms);
  Result<Answer> answer =
      engine_->Query(item.key, window, Aggs(item.key, item.aggs));
  if (!answer.ok()) {
    r.code = answer.status().code();
    r.message = std::string(answer.status().message());
    return r;
  }
  r.answer = ToWire(*answer);
  r.lsn = lsn;
  return r;
}

proto::Response Service::DoRange(const proto::RangeRequest& request) {
  if (Status invalid = proto::ValidateRangeRequest(request); !invalid.ok()) {
    return proto::Response::Error(invalid);
  }
  const uint64_t lsn = journal_->applied_lsn();
  auto points =
      engine_->Range(request.key, request.from_ms, request.to_ms,
                     request.step_ms, Aggs(request.key, request.aggs));
  if (!points.ok()) return proto::Response::Error(points.status());
  proto::RangeResult result;
  result.lsn = lsn;
  result.points.reserve(points->size());
  for (const RangePoint& p : *points) {
    result.points.push_back({p.start_ms, ToWire(p.answer)});
  }
  return Ok(std::move(result));
}

proto::Response Service::DoInspect(const proto::InspectRequest& request) {
  auto info = engine_->Inspect(request.key);
  if (!info.ok()) return proto::Response::Error(info.status());
  proto::InspectResult result;
  result.key = info->key;
  result.policy = info->policy;
  result.track_distinct = info->track_distinct;
  result.max_lateness_ms = info->max_lateness_ms;
  result.max_skew_ms = info->max_skew_ms;
  result.raw = info->raw;
  result.raw_events = info->raw_events;
  result.bytes = info->bytes;
  for (const TierInfo& t : info->tiers) {
    result.tiers.push_back({.resolution_ms = t.spec.resolution_ms,
                            .retention_ms = t.spec.retention_ms,
                            .buckets = t.buckets,
                            .sketches = t.sketches,
                            .first_bucket_ms = t.first_bucket_ms,
                            .last_bucket_ms = t.last_bucket_ms,
                            .bytes = t.bytes});
  }
  return Ok(std::move(result));
}

proto::Response Service::DoScan(const proto::ScanRequest& request) {
  if (Status invalid = proto::ValidateScanRequest(request); !invalid.ok()) {
    return proto::Response::Error(invalid);
  }
  // A page of kMaxScanCount keys of kMaxKeyBytes would be a 2.7 MB reply,
  // more than a client's 1 MiB frame limit (the client would drop the
  // connection): count is a hint, so pages hold at most kMaxScanPageKeys.
  constexpr uint32_t kMaxScanPageKeys = 2048;  // <= 2048 * 264 B: ~540 KB
  const uint32_t count =
      std::min(request.count == 0 ? options_.default_scan_count : request.count,
               kMaxScanPageKeys);
  ScanPage page = engine_->Scan(request.cursor, request.pattern, count);
  return Ok(proto::ScanResult{page.cursor, std::move(page.keys)});
}

void Service::DoDelete(const proto::DeleteRequest& request, bool wait_durable,
                       ReplyFn reply) {
  std::vector<proto::DeleteItemResult> out(request.keys.size());
  std::vector<size_t> positions;
  std::vector<std::string_view> keys;
  for (size_t i = 0; i < request.keys.size(); ++i) {
    if (Status invalid = proto::ValidateKey(request.keys[i]); !invalid.ok()) {
      out[i].code = invalid.code();
      out[i].message = std::string(invalid.message());
      continue;
    }
    positions.push_back(i);
    keys.push_back(request.keys[i]);
  }
  auto finish = [reply](std::vector<proto::DeleteItemResult> items) {
    reply([items = std::move(items)]() mutable {
      proto::DeleteResult result;
      result.items = std::move(items);
      return Ok(std::move(result));
    });
  };
  if (keys.empty()) {
    finish(std::move(out));
    return;
  }
  std::string payload;
  wal::EncodeDelete(keys, &payload);
  journal_->Submit(wal::RecordType::kDelete, std::move(payload), wait_durable,
                   [out = std::move(out), positions = std::move(positions),
                    finish](uint64_t, Status status,
                            std::vector<wal::ItemOutcome>&& outcomes) mutable {
                     for (size_t k = 0; k < positions.size(); ++k) {
                       proto::DeleteItemResult& r = out[positions[k]];
                       if (!status.ok() || k >= outcomes.size()) {
                         r.code = status.ok() ? Code::kInternal : status.code();
                         r.message = std::string(status.message());
                         continue;
                       }
                       r.existed = outcomes[k].existed;
                     }
                     finish(std::move(out));
                   });
}

proto::Response Service::DoHello(const proto::HelloRequest& request) {
  if (request.protocol_version < kMinProtocolVersion) {
    return proto::Response::Error(Status(
        Code::kUnsupportedVersion,
        "client speaks protocol " + std::to_string(request.protocol_version) +
            "; this server needs at least " +
            std::to_string(kMinProtocolVersion)));
  }
  return Ok(proto::HelloResult{
      .server_name = options_.server_name,
      .server_version = options_.version,
      .protocol_version = std::min(request.protocol_version, kProtocolVersion),
      .server_time_ms = clock_->NowMs()});
}

ServiceStats Service::Stats() const {
  return {requests_.load(), deadline_exceeded_.load()};
}

}  // namespace tally
