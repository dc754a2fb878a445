// The Redis peer of PERFORMANCE.md: the bucket-key design teams build today,
// driven through hiredis. Per (key, resolution, bucket) an INCRBY count key,
// an INCRBY amount key and a PFADD HyperLogLog key, each with EXPIREAT its
// retention after the bucket ends (so a back-filled history holds what
// steady state would; a bucket already expired is not written):
//   a2: 1 s buckets kept 1 h and 1 min buckets kept 24 h;
//   a3: a2 plus 1 h buckets kept 30 days (what a careful user adds).
// A window is decomposed into the fewest whole buckets (coarsest first); a
// window's count and sum are an MGET of its bucket keys, its distinct count
// one PFCOUNT over its HyperLogLogs. A decision is ten such commands
// pipelined into one round trip, or, with `lua`, one EVALSHA of a script
// doing the same work inside Redis. Key names:
// "<c|a|h>:<s|m|h>:<key>:<bucket>".
//
// Thread safety: RedisSystem may be shared; a connection belongs to one
// thread.

#ifndef TALLY_PERF_REDIS_DRIVER_H_
#define TALLY_PERF_REDIS_DRIVER_H_

#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "tools/bench/driver.h"

struct redisContext;

namespace tally::bench {

// One bucket of a decomposed window: resolution in seconds and bucket index
// (start second / resolution).
struct Bucket {
  int64_t resolution_s;
  int64_t index;
};

// The fewest whole buckets covering [from_s, to_s) with `resolutions`
// (descending; the last must be 1). Exposed for its unit test.
std::vector<Bucket> DecomposeWindow(int64_t from_s, int64_t to_s,
                                    const std::vector<int64_t>& resolutions);

class RedisSystem : public System {
 public:
  enum class Design { kA2, kA3 };
  RedisSystem(std::string host, uint16_t port, Design design, bool lua);
  ~RedisSystem() override;

  std::string name() const override;
  // FLUSHALL: the benchmark owns this Redis.
  Status Prepare() override;
  Result<std::unique_ptr<SystemConnection>> Connect() override;
  // used_memory and used_cpu_user + used_cpu_sys from INFO.
  SystemStats Stats() override;

 private:
  const std::string host_;
  const uint16_t port_;
  const Design design_;
  const bool lua_;
  std::mutex mu_;
  redisContext* admin_ = nullptr;  // guarded by mu_
};

}  // namespace tally::bench

#endif  // TALLY_PERF_REDIS_DRIVER_H_
