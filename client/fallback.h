// Fallback values: what a call that failed for a transient reason returns
// instead of nothing when its Fallback is kDefaultValue or kLastKnown.
//
// ZeroResponse builds a result shaped like the request: one item per request
// item, query answers all zero (count 0, exact), add and delete items marked
// with the call's error code (they may or may not have been applied).
// LastKnownCache remembers the last successful answer of each query item,
// keyed by its signature (key, window fields, aggs), and Recall() puts them
// into a ZeroResponse. It holds at most `capacity` signatures (10,000 by
// default, ~400 bytes each with a short key) and evicts the least recently
// stored or recalled one.
//
// Thread safety: ZeroResponse is pure. LastKnownCache is not thread-safe; the
// client uses it from its I/O thread only.

#ifndef TALLY_CLIENT_FALLBACK_H_
#define TALLY_CLIENT_FALLBACK_H_

#include <cstddef>
#include <list>
#include <string>
#include <unordered_map>
#include <utility>

#include "protocol/messages.h"
#include "protocol/status.h"

namespace tally::client_internal {

// An OK response whose body has the request's operation, zero answers and
// `error` on every add/delete item. REQUIRES: request.op() != kNone.
proto::Response ZeroResponse(const proto::Request& request,
                             const Status& error);

class LastKnownCache {
 public:
  static constexpr size_t kDefaultCapacity = 10'000;

  explicit LastKnownCache(size_t capacity = kDefaultCapacity);

  // Stores the answer of every OK query item of `response` (a reply to
  // `request` with the same op). Other operations are ignored.
  void Remember(const proto::Request& request, const proto::Response& response);
  // Replaces the query answers of `*response` (a ZeroResponse of `request`)
  // with the remembered ones; returns how many were found.
  size_t Recall(const proto::Request& request, proto::Response* response);

  size_t size() const { return index_.size(); }

 private:
  using Entry = std::pair<std::string, proto::QueryItemResult>;
  static std::string Signature(const proto::QueryItem& item);
  void Put(const proto::QueryItem& item, const proto::QueryItemResult& result);
  const proto::QueryItemResult* Get(const proto::QueryItem& item);

  size_t capacity_;
  std::list<Entry> lru_;  // most recent first
  std::unordered_map<std::string, std::list<Entry>::iterator> index_;
};

}  // namespace tally::client_internal

#endif  // TALLY_CLIENT_FALLBACK_H_
