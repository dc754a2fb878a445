#include "tools/bench/truth.h"

#include "tools/bench/zipf.h"

namespace tally::bench {

Truth::Truth(const W1& w1) : w1_(w1) {
  for (uint64_t rank : {0, 10, 1000, 100000}) {
    if (rank < w1.config().keys)
      ids_.insert(W1IdForRank(rank, w1.config().keys));
  }
}

void Truth::Merge(std::vector<W1Event>& local) {
  std::lock_guard<std::mutex> lock(mu_);
  for (const W1Event& e : local) events_[e.id].push_back(e);
  local.clear();
}

std::string Truth::Check(int64_t now, const QueryFn& query) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::string failures;
  char buf[32];
  for (uint64_t id : ids_) {
    const auto it = events_.find(id);
    for (auto [name, w] : w1_.Windows(now)) {
      int64_t count = 0, sum = 0;
      std::set<uint64_t> members;
      if (it != events_.end()) {
        for (const W1Event& e : it->second) {
          if (e.ts_ms < w.from_ms || e.ts_ms >= w.to_ms) continue;
          ++count;
          sum += e.amount;
          members.insert(e.member);
        }
      }
      const std::string key(W1::Key(id, buf));
      Result<Observed> a = query(key, w);
      std::string what;
      if (!a.ok()) {
        what = a.status().ToString();
      } else if (a->covered_from_ms != w.from_ms ||
                 a->covered_to_ms != w.to_ms) {
        what = "covered a different interval";
      } else if (a->count != count || a->sum != sum ||
                 (a->exact && a->distinct != members.size())) {
        what = "count " + std::to_string(a->count) + " vs " +
               std::to_string(count) + ", sum " + std::to_string(a->sum) +
               " vs " + std::to_string(sum) + ", distinct " +
               std::to_string(a->distinct) + " vs " +
               std::to_string(members.size());
      }
      if (!what.empty()) {
        failures +=
            (failures.empty() ? "" : "; ") + key + " " + name + ": " + what;
      }
    }
  }
  return failures.empty() ? "ok" : failures;
}

}  // namespace tally::bench
