#include "client/fallback.h"

#include <cstring>
#include <string>
#include <variant>
#include <vector>

namespace tally::client_internal {

namespace {

std::vector<proto::QueryItemResult> ZeroQueries(size_t n) {
  return std::vector<proto::QueryItemResult>(n);
}

std::vector<proto::AddItemResult> FailedAdds(size_t n, const Status& error) {
  proto::AddItemResult item;
  item.code = error.code();
  item.message = "no answer from the server (" + error.ToString() +
                 "); the add may or may not have been applied";
  return std::vector<proto::AddItemResult>(n, item);
}

// The query items of a request (Query or AddAndQuery), else nullptr.
const std::vector<proto::QueryItem>* QueryItems(const proto::Request& r) {
  if (const auto* q = std::get_if<proto::QueryRequest>(&r.body)) {
    return &q->items;
  }
  if (const auto* aq = std::get_if<proto::AddAndQueryRequest>(&r.body)) {
    return &aq->queries;
  }
  return nullptr;
}

std::vector<proto::QueryItemResult>* QueryResults(proto::Response* r) {
  if (auto* q = std::get_if<proto::QueryResult>(&r->body)) return &q->items;
  if (auto* aq = std::get_if<proto::AddAndQueryResult>(&r->body)) {
    return &aq->queries;
  }
  return nullptr;
}

const std::vector<proto::QueryItemResult>* QueryResults(
    const proto::Response& r) {
  return QueryResults(const_cast<proto::Response*>(&r));
}

}  // namespace

proto::Response ZeroResponse(const proto::Request& request,
                             const Status& error) {
  proto::Response response;
  switch (request.op()) {
    case proto::Op::kNone:
      break;
    case proto::Op::kHello:
      response.body = proto::HelloResult{};
      break;
    case proto::Op::kPing:
      response.body = proto::PingResult{};
      break;
    case proto::Op::kAdd:
      response.body = proto::AddResult{
          .items = FailedAdds(
              std::get<proto::AddRequest>(request.body).items.size(), error)};
      break;
    case proto::Op::kQuery:
      response.body = proto::QueryResult{
          .items = ZeroQueries(
              std::get<proto::QueryRequest>(request.body).items.size())};
      break;
    case proto::Op::kAddAndQuery: {
      const auto& aq = std::get<proto::AddAndQueryRequest>(request.body);
      response.body =
          proto::AddAndQueryResult{.adds = FailedAdds(aq.adds.size(), error),
                                   .queries = ZeroQueries(aq.queries.size())};
      break;
    }
    case proto::Op::kRange:
      response.body = proto::RangeResult{};
      break;
    case proto::Op::kInspect:
      response.body = proto::InspectResult{};
      break;
    case proto::Op::kScan:
      response.body = proto::ScanResult{};
      break;
    case proto::Op::kDelete: {
      const auto& keys = std::get<proto::DeleteRequest>(request.body).keys;
      proto::DeleteItemResult item;
      item.code = error.code();
      item.message = "no answer from the server (" + error.ToString() + ")";
      response.body = proto::DeleteResult{
          .items = std::vector<proto::DeleteItemResult>(keys.size(), item)};
      break;
    }
    case proto::Op::kInfo:
      response.body = proto::InfoResult{};
      break;
    case proto::Op::kAuth:
      response.body = proto::AuthResult{};
      break;
    case proto::Op::kAdmin:
      response.body = proto::AdminResult{};
      break;
  }
  return response;
}

LastKnownCache::LastKnownCache(size_t capacity)
    : capacity_(capacity == 0 ? 1 : capacity) {}

std::string LastKnownCache::Signature(const proto::QueryItem& item) {
  const int64_t fields[] = {item.last_ms, item.at_ms, item.from_ms, item.to_ms,
                            static_cast<int64_t>(item.aggs)};
  std::string sig(sizeof(fields), '\0');
  std::memcpy(sig.data(), fields, sizeof(fields));
  sig += item.key;  // binary-safe: the fixed-size part comes first
  return sig;
}

void LastKnownCache::Put(const proto::QueryItem& item,
                         const proto::QueryItemResult& result) {
  std::string sig = Signature(item);
  auto it = index_.find(sig);
  if (it != index_.end()) {
    it->second->second = result;
    lru_.splice(lru_.begin(), lru_, it->second);
    return;
  }
  if (index_.size() >= capacity_) {
    index_.erase(lru_.back().first);
    lru_.pop_back();
  }
  lru_.emplace_front(sig, result);
  index_.emplace(std::move(sig), lru_.begin());
}

const proto::QueryItemResult* LastKnownCache::Get(
    const proto::QueryItem& item) {
  auto it = index_.find(Signature(item));
  if (it == index_.end()) return nullptr;
  lru_.splice(lru_.begin(), lru_, it->second);
  return &it->second->second;
}

void LastKnownCache::Remember(const proto::Request& request,
                              const proto::Response& response) {
  if (response.code != Code::kOk) return;
  const std::vector<proto::QueryItem>* items = QueryItems(request);
  const std::vector<proto::QueryItemResult>* results = QueryResults(response);
  if (items == nullptr || results == nullptr ||
      items->size() != results->size()) {
    return;
  }
  for (size_t i = 0; i < items->size(); ++i) {
    if ((*results)[i].code == Code::kOk) Put((*items)[i], (*results)[i]);
  }
}

size_t LastKnownCache::Recall(const proto::Request& request,
                              proto::Response* response) {
  const std::vector<proto::QueryItem>* items = QueryItems(request);
  std::vector<proto::QueryItemResult>* results = QueryResults(response);
  if (items == nullptr || results == nullptr ||
      items->size() != results->size()) {
    return 0;
  }
  size_t found = 0;
  for (size_t i = 0; i < items->size(); ++i) {
    if (const proto::QueryItemResult* known = Get((*items)[i])) {
      (*results)[i] = *known;
      ++found;
    }
  }
  return found;
}

}  // namespace tally::client_internal
