#include "server/service.h"

#include "protocol/validation.h"

#define XXH_STATIC_LINKING_ONLY  // XXH3_state_t on the stack
#include <sys/resource.h>
#include <unistd.h>
#include <xxhash.h>

#include <fstream>
#include <sstream>

namespace tally {

namespace {

AddEvent ToEvent(const proto::AddItem& item) {
  AddEvent e;
  e.key = item.key;
  e.time_ms = item.time_ms == 0 ? kNow : item.time_ms;
  e.count = item.count;
  e.amount = item.amount;
  e.has_member = item.member.has_value();
  if (e.has_member) e.member = *item.member;
  return e;
}

// What a retry must repeat exactly for its id to be a duplicate, not a
// conflict.
uint64_t Digest(const proto::AddItem& item) {
  XXH3_state_t state;
  XXH3_64bits_reset(&state);
  const uint64_t sizes[2] = {item.key.size(),
                             item.member ? item.member->size() + 1 : 0};
  XXH3_64bits_update(&state, sizes, sizeof(sizes));
  XXH3_64bits_update(&state, item.key.data(), item.key.size());
  const int64_t fields[3] = {item.time_ms, item.count, item.amount};
  XXH3_64bits_update(&state, fields, sizeof(fields));
  if (item.member)
    XXH3_64bits_update(&state, item.member->data(), item.member->size());
  return XXH3_64bits_digest(&state);
}

double ProcessCpuSeconds() {
  rusage usage;
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) /
             1e6;
}

int64_t ProcessRssBytes() {
  std::ifstream statm("/proc/self/statm");
  int64_t pages = 0, resident = 0;
  statm >> pages >> resident;
  return resident * sysconf(_SC_PAGESIZE);
}

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

template <typename T>
proto::Response Ok(T body) {
  proto::Response r;
  r.body = std::move(body);
  return r;
}

}  // namespace

Service::Service(Engine* engine, const Clock* clock, ServiceOptions options)
    : engine_(engine),
      clock_(clock),
      options_(std::move(options)),
      dedupe_(options_.dedupe),
      started_(std::chrono::steady_clock::now()) {}

proto::Response Service::Handle(const proto::Request& request,
                                SteadyTime received) {
  requests_.fetch_add(1, std::memory_order_relaxed);
  if (request.deadline_ms != 0 &&
      std::chrono::steady_clock::now() - received >
          std::chrono::milliseconds(request.deadline_ms)) {
    deadline_exceeded_.fetch_add(1, std::memory_order_relaxed);
    return proto::Response::Error(
        Status(Code::kDeadlineExceeded,
               "the request's deadline passed before it ran; nothing applied"));
  }
  switch (request.op()) {
    case proto::Op::kHello:
      return DoHello(std::get<proto::HelloRequest>(request.body));
    case proto::Op::kPing:
      return Ok(proto::PingResult{});
    case proto::Op::kAdd: {
      proto::AddResult result;
      DoAdds(std::get<proto::AddRequest>(request.body).items, &result.items);
      return Ok(std::move(result));
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
      proto::AddAndQueryResult result;
      DoAdds(body.adds, &result.adds);
      for (const auto& item : body.queries)
        result.queries.push_back(DoQuery(item));
      return Ok(std::move(result));
    }
    case proto::Op::kRange:
      return DoRange(std::get<proto::RangeRequest>(request.body));
    case proto::Op::kInspect:
      return DoInspect(std::get<proto::InspectRequest>(request.body));
    case proto::Op::kScan:
      return DoScan(std::get<proto::ScanRequest>(request.body));
    case proto::Op::kDelete:
      return DoDelete(std::get<proto::DeleteRequest>(request.body));
    case proto::Op::kInfo:
      return DoInfo(std::get<proto::InfoRequest>(request.body));
    case proto::Op::kNone:
      break;
  }
  return proto::Response::Error(
      Status(Code::kProtocolError, "a request needs a body"));
}

void Service::DoAdds(const std::vector<proto::AddItem>& items,
                     std::vector<proto::AddItemResult>* out) {
  out->assign(items.size(), proto::AddItemResult{});
  // Items that fail validation get their error; runs of valid items without
  // an id go through AddBatch; items with an id go one by one through the
  // dedupe table. Order is kept either way.
  std::vector<bool> valid(items.size());
  for (size_t i = 0; i < items.size(); ++i) {
    Status invalid = proto::ValidateAddItem(items[i]);
    valid[i] = invalid.ok();
    if (!valid[i]) {
      (*out)[i].code = invalid.code();
      (*out)[i].message = std::string(invalid.message());
    }
  }
  std::vector<AddEvent> batch;
  std::vector<size_t> positions;
  std::vector<Engine::AddOutcome> outcomes;
  size_t i = 0;
  while (i < items.size()) {
    if (!valid[i]) {
      ++i;
      continue;
    }
    if (!items[i].id) {
      batch.clear();
      positions.clear();
      for (; i < items.size() && !(valid[i] && items[i].id); ++i) {
        if (!valid[i]) continue;
        batch.push_back(ToEvent(items[i]));
        positions.push_back(i);
      }
      outcomes.resize(batch.size());
      engine_->AddBatch(batch, outcomes);
      for (size_t k = 0; k < batch.size(); ++k) {
        proto::AddItemResult& r = (*out)[positions[k]];
        r.code = outcomes[k].status.code();
        r.message = std::string(outcomes[k].status.message());
        r.time_ms = outcomes[k].result.time_ms;
      }
      continue;
    }
    const proto::AddItem& item = items[i];
    proto::AddItemResult& r = (*out)[i];
    const AddEvent event = ToEvent(item);
    Status status;
    int64_t time_ms = 0;
    const auto outcome = dedupe_.Apply(
        *item.id, Digest(item), clock_->NowMs(),
        [&](int64_t* applied_ms) {
          Result<AddResult> added = engine_->Add(event);
          if (!added.ok()) return added.status();
          *applied_ms = added->time_ms;
          return Status::Ok();
        },
        &time_ms, &status);
    r.code = status.code();
    r.message = std::string(status.message());
    r.time_ms = time_ms;
    r.duplicate = outcome == DedupeTable::Outcome::kDuplicate;
    ++i;
  }
}

uint32_t Service::Aggs(std::string_view key, uint32_t wire_aggs) const {
  if (wire_aggs != 0) return wire_aggs;
  const Policy& policy = engine_->policies().Match(key);
  return policy.track_distinct ? kAggAll : kAggAll & ~uint32_t{kAggDistinct};
}

proto::QueryItemResult Service::DoQuery(const proto::QueryItem& item) {
  proto::QueryItemResult r;
  if (Status invalid = proto::ValidateQueryItem(item); !invalid.ok()) {
    r.code = invalid.code();
    r.message = std::string(invalid.message());
    return r;
  }
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
  return r;
}

proto::Response Service::DoRange(const proto::RangeRequest& request) {
  if (Status invalid = proto::ValidateRangeRequest(request); !invalid.ok()) {
    return proto::Response::Error(invalid);
  }
  auto points =
      engine_->Range(request.key, request.from_ms, request.to_ms,
                     request.step_ms, Aggs(request.key, request.aggs));
  if (!points.ok()) return proto::Response::Error(points.status());
  proto::RangeResult result;
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
  const uint32_t count =
      request.count == 0 ? options_.default_scan_count : request.count;
  ScanPage page = engine_->Scan(request.cursor, request.pattern, count);
  return Ok(proto::ScanResult{page.cursor, std::move(page.keys)});
}

proto::Response Service::DoDelete(const proto::DeleteRequest& request) {
  proto::DeleteResult result;
  for (const std::string& key : request.keys) {
    proto::DeleteItemResult r;
    if (Status invalid = proto::ValidateKey(key); !invalid.ok()) {
      r.code = invalid.code();
      r.message = std::string(invalid.message());
    } else {
      r.existed = engine_->Delete(key);
    }
    result.items.push_back(std::move(r));
  }
  return Ok(std::move(result));
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

proto::Response Service::DoInfo(const proto::InfoRequest& request) {
  // Redis INFO style: "# Section" then "field:value" lines.
  const std::string& want = request.section;
  auto wanted = [&want](const char* name) {
    return want.empty() || want == "all" || want == name;
  };
  const EngineStats s = engine_->Stats();
  const DedupeStats d = dedupe_.Stats();
  std::ostringstream out;
  if (wanted("server")) {
    out << "# Server\nserver:" << options_.server_name
        << "\nversion:" << options_.version
        << "\nprotocol_version:" << kProtocolVersion << "\nuptime_seconds:"
        << std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::steady_clock::now() - started_)
               .count()
        << "\nserver_time_ms:" << clock_->NowMs()
        << "\ncpu_seconds:" << ProcessCpuSeconds() << "\n\n";
  }
  if (wanted("memory")) {
    out << "# Memory\nused_bytes:" << s.bytes + d.bytes
        << "\nengine_bytes:" << s.bytes << "\ntable_bytes:" << s.table_bytes
        << "\ndedupe_bytes:" << d.bytes << "\nrss_bytes:" << ProcessRssBytes()
        << "\n\n";
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
        << "\nidempotency_evicted_early:" << d.evicted_early << "\n\n";
  }
  if (wanted("persistence")) {
    out << "# Persistence\ndurability:" << options_.durability << "\n\n";
  }
  std::string text = out.str();
  if (text.empty()) {
    return proto::Response::Error(Status::InvalidArgument(
        "unknown INFO section '" + want +
        "' (server, memory, keyspace, stats, persistence, all)"));
  }
  return Ok(proto::InfoResult{std::move(text)});
}

ServiceStats Service::Stats() const {
  return {requests_.load(), deadline_exceeded_.load()};
}

}  // namespace tally
