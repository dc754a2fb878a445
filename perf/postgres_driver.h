// W1 against PostgreSQL, PERFORMANCE.md's peer 2 (the detail table): every
// event is a row of events(key, ts, amount, member) with an index on
// (key, ts), and a window is an aggregate over the key's index range. Exact
// to the millisecond; slow on hot keys, which is the point of the peer.
//
// Each connection owns one libpq connection with its statements prepared on
// it: an add is one multi-row INSERT, a decision is one SELECT computing all
// ten counters, a query is one SELECT. The cluster is expected to run with
// fsync=off and synchronous_commit=off (the benchmark script starts it so).
//
// Thread safety: a connection belongs to one thread (driver.h). A
// PostgresSystem may be asked for connections and stats from any thread; its
// own admin connection is guarded by a mutex.

#ifndef TALLY_PERF_POSTGRES_DRIVER_H_
#define TALLY_PERF_POSTGRES_DRIVER_H_

#include <memory>
#include <mutex>
#include <string>

#include "tools/bench/driver.h"

struct pg_conn;  // libpq's PGconn

namespace tally::bench {

class PostgresSystem : public System {
 public:
  // `conninfo`: a libpq connection string, e.g.
  // "host=/tmp/pg port=5433 dbname=postgres user=postgres".
  explicit PostgresSystem(std::string conninfo);
  ~PostgresSystem() override;

  PostgresSystem(const PostgresSystem&) = delete;
  PostgresSystem& operator=(const PostgresSystem&) = delete;

  std::string name() const override { return "postgres"; }
  // Drops and recreates the events table and its (key, ts) index.
  Status Prepare() override;
  // ANALYZE events: the planner's statistics for the loaded history.
  Status AfterLoad() override;
  Result<std::unique_ptr<SystemConnection>> Connect() override;
  // memory_bytes: pg_total_relation_size('events') (table + index).
  // cpu_seconds: user + system time of every process named "postgres" on
  // this machine, plus that of their exited children (the backends of closed
  // connections), so it never goes backwards. Assumes exactly one cluster
  // runs here, as the benchmark script arranges.
  SystemStats Stats() override;

 private:
  // REQUIRES: mu_ held. Connects admin_ if it is absent or broken.
  Status EnsureAdminLocked();

  const std::string conninfo_;
  std::mutex mu_;
  pg_conn* admin_ = nullptr;  // guarded by mu_
};

}  // namespace tally::bench

#endif  // TALLY_PERF_POSTGRES_DRIVER_H_
