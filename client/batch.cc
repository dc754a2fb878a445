// Batch, the fluent request builder of client.h, and the Client calls built
// on it: Execute and the Query / Add shorthands, which turn a Batch into one
// request for Client::Call and its response back into typed results.

#include <string>
#include <utility>
#include <variant>

#include "client/tally/client.h"

namespace tally {

Batch& Batch::Add(std::string_view key, int64_t amount,
                  std::optional<std::string_view> member, int64_t time_ms,
                  int64_t count, std::optional<std::string_view> id) {
  proto::AddItem item;
  item.key = std::string(key);
  item.time_ms = time_ms;
  item.count = count;
  item.amount = amount;
  if (member) item.member = std::string(*member);
  if (id) item.id = std::string(*id);
  adds_.push_back(std::move(item));
  return *this;
}

Batch& Batch::Query(std::string_view key, int64_t last_ms, uint32_t aggs,
                    int64_t at_ms) {
  queries_.push_back(
      proto::QueryItem::Last(std::string(key), last_ms, aggs, at_ms));
  return *this;
}

Batch& Batch::QueryBetween(std::string_view key, int64_t from_ms, int64_t to_ms,
                           uint32_t aggs) {
  queries_.push_back(
      proto::QueryItem::Between(std::string(key), from_ms, to_ms, aggs));
  return *this;
}

proto::Request BatchRequest(const Batch& batch) {
  proto::Request request;
  if (batch.queries().empty()) {
    request.body = proto::AddRequest{.items = batch.adds()};
  } else if (batch.adds().empty()) {
    request.body = proto::QueryRequest{.items = batch.queries()};
  } else {
    request.body = proto::AddAndQueryRequest{.adds = batch.adds(),
                                             .queries = batch.queries()};
  }
  return request;
}

CallResult<BatchResult> ToBatchResult(const Batch& batch,
                                      CallResult<proto::Response> r) {
  CallResult<BatchResult> out;
  out.code = r.code;
  out.message = std::move(r.message);
  out.degraded = r.degraded;
  out.attempts = r.attempts;
  if (auto* add = std::get_if<proto::AddResult>(&r.value.body)) {
    out.value.adds = std::move(add->items);
  } else if (auto* q = std::get_if<proto::QueryResult>(&r.value.body)) {
    out.value.queries = std::move(q->items);
  } else if (auto* aq = std::get_if<proto::AddAndQueryResult>(&r.value.body)) {
    out.value.adds = std::move(aq->adds);
    out.value.queries = std::move(aq->queries);
  }
  if (out.ok() && (out.value.adds.size() != batch.adds().size() ||
                   out.value.queries.size() != batch.queries().size())) {
    out.code = Code::kProtocolError;
    out.message = "the server answered a different number of items";
    out.value = {};
  }
  return out;
}

CallResult<BatchResult> Client::Execute(const Batch& batch,
                                        const CallOptions& call) {
  if (batch.empty()) return {};
  return ToBatchResult(batch, Call(BatchRequest(batch), call));
}

CallResult<proto::Aggregates> Client::Query(std::string_view key,
                                            int64_t last_ms, uint32_t aggs,
                                            const CallOptions& call) {
  Batch batch;
  batch.Query(key, last_ms, aggs);
  CallResult<BatchResult> r = Execute(batch, call);
  CallResult<proto::Aggregates> out;
  out.code = r.code;
  out.message = std::move(r.message);
  out.degraded = r.degraded;
  out.attempts = r.attempts;
  if (r.value.queries.size() == 1) {
    proto::QueryItemResult& item = r.value.queries[0];
    out.value = item.answer;
    if (out.ok() && item.code != Code::kOk) {
      out.code = item.code;
      out.message = std::move(item.message);
    }
  }
  return out;
}

CallResult<proto::AddItemResult> Client::Add(
    std::string_view key, int64_t amount,
    std::optional<std::string_view> member, const CallOptions& call) {
  Batch batch;
  batch.Add(key, amount, member);
  CallResult<BatchResult> r = Execute(batch, call);
  CallResult<proto::AddItemResult> out;
  out.code = r.code;
  out.message = std::move(r.message);
  out.degraded = r.degraded;
  out.attempts = r.attempts;
  if (r.value.adds.size() == 1) {
    out.value = std::move(r.value.adds[0]);
    if (out.ok() && out.value.code != Code::kOk) {
      out.code = out.value.code;
      out.message = out.value.message;
    }
  }
  return out;
}

}  // namespace tally
