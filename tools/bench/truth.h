// Ground truth for a few W1 keys (ranks 0, 10, 1000, 100000): every event the
// benchmark applied to them, to check the system's answers at the end
// (the report's `selfcheck`). Shared by the embedded and network runners.
//
// Thread safety: Tracks/Check are const; Merge locks.

#ifndef TALLY_TOOLS_BENCH_TRUTH_H_
#define TALLY_TOOLS_BENCH_TRUTH_H_

#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/result.h"
#include "tools/bench/w1.h"

namespace tally::bench {

// What the system under test answered for one key and window.
struct Observed {
  int64_t count = 0;
  int64_t sum = 0;
  uint64_t distinct = 0;
  bool exact = true;
  int64_t covered_from_ms = 0;
  int64_t covered_to_ms = 0;
};

class Truth {
 public:
  using QueryFn =
      std::function<Result<Observed>(std::string_view key, W1Window window)>;

  explicit Truth(const W1& w1);
  bool Tracks(uint64_t id) const { return ids_.count(id) != 0; }
  // Moves `local` (events applied by one worker) into the truth.
  void Merge(std::vector<W1Event>& local);
  // Queries w60, w1h and w24h (W2: and w30d) at `now_ms` for every tracked
  // key: "ok", or what differed.
  std::string Check(int64_t now_ms, const QueryFn& query) const;

 private:
  const W1& w1_;
  std::set<uint64_t> ids_;
  mutable std::mutex mu_;
  std::map<uint64_t, std::vector<W1Event>> events_;
};

}  // namespace tally::bench

#endif  // TALLY_TOOLS_BENCH_TRUTH_H_
