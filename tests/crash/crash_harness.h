// Crash-test harness (RELIABILITY.md 3.0, D1-D8, C6): runs a real tallyd as a
// child process, kills it (SIGKILL, SIGTERM, or its own kill points), drives
// it with the client library while recording a Jepsen-style history, and
// checks the history against what the restarted server reads back.
//
//   TallydProcess   spawn with flags/env, wait for `tallyd ready port=N`,
//                   Kill9 / Terminate / WaitExit; always killed in the dtor.
//   History         invoke then ok / fail / unknown per logical increment,
//                   each with its own idempotency id; appended to a file the
//                   harness fsyncs (before every kill and at the end).
//   LoadGenerator   N threads, one Client (one connection) each: adds with
//                   explicit ids and window reads, Zipf-ish keys; every live
//                   read is checked against the per-key bounds.
//   Reconcile       after a restart: read every key over the whole test,
//                   check sum(ok) <= read <= sum(attempted), then re-send
//                   every op of the epoch with its id (`duplicate` says which
//                   unknowns were applied; ok ops must be duplicates, failed
//                   ones must not), check read == sum(applied) exactly, and
//                   read again: every op is now applied exactly once.
//
// Environment: TALLYD (server binary), TALLY_WAL (tally-wal), TALLY_SEED.

#ifndef TALLY_TESTS_CRASH_CRASH_HARNESS_H_
#define TALLY_TESTS_CRASH_CRASH_HARNESS_H_

#include <sys/types.h>
#include <tally/client.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace tally::crash {

using SteadyClock = std::chrono::steady_clock;

// Seed from TALLY_SEED, else random; printed by the caller.
uint64_t TestSeed();
// Environment variable or "".
std::string EnvOr(const char* name, const std::string& fallback = "");
// A fresh directory under $TMPDIR (or /tmp), removed by the destructor.
class TempDir {
 public:
  explicit TempDir(const std::string& prefix);
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Runs a program and returns its exit code (-1: did not run or was killed);
// stdout (and stderr, interleaved, unless with_stderr is false: then it is
// dropped) is captured into *output.
int RunCommand(const std::vector<std::string>& argv, std::string* output,
               std::chrono::seconds timeout = std::chrono::seconds(60),
               bool with_stderr = true);
// TALLY_WAL, else the tally-wal next to TALLYD (both are in build/bin).
std::string TallyWalBinary();

// How a process ended.
struct ExitStatus {
  bool exited = false;  // normal exit; code is valid
  int code = -1;
  bool signaled = false;  // killed; signal is valid
  int signal = 0;
  std::string ToString() const;
};

struct StartOptions {
  std::string binary;  // tallyd
  std::string data_dir;
  std::vector<std::string> flags;      // besides --port=0 --data_dir
  std::vector<std::string> extra_env;  // NAME=value
  std::string log_path;                // stderr goes here (appended)
  std::chrono::seconds ready_timeout{60};
};

class TallydProcess {
 public:
  TallydProcess() = default;
  ~TallydProcess();  // SIGKILL + reap if still running
  TallydProcess(const TallydProcess&) = delete;
  TallydProcess& operator=(const TallydProcess&) = delete;

  // Spawns and waits for the ready line. False when the process exited
  // first (see exit_status()) or the ready line did not come in time (then
  // the process is killed). TALLY_KILL_POINT* are removed from the inherited
  // environment unless given in extra_env.
  bool Start(const StartOptions& options);
  bool running() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }
  uint16_t port() const { return port_; }
  // From spawn to the ready line.
  double ready_seconds() const { return ready_seconds_; }

  // SIGKILL and reap.
  ExitStatus Kill9();
  // Sends `sig` and waits up to `timeout` for the exit; on timeout SIGKILLs
  // and returns the SIGKILL status with timed_out set. *seconds: time to exit.
  ExitStatus Terminate(std::chrono::milliseconds timeout, double* seconds,
                       bool* timed_out, int sig = 15 /*SIGTERM*/);
  // Waits for the process to exit by itself (no signal); false on timeout.
  bool WaitExit(std::chrono::milliseconds timeout, ExitStatus* status);
  const ExitStatus& exit_status() const { return exit_status_; }

 private:
  void CloseStdout();
  pid_t pid_ = -1;
  int stdout_fd_ = -1;
  uint16_t port_ = 0;
  double ready_seconds_ = 0;
  ExitStatus exit_status_;
};

// ---------------------------------------------------------------- history

enum class Outcome : uint8_t { kPending, kOk, kFail, kUnknown };

struct OpRecord {
  std::string id;
  uint32_t key = 0;
  int64_t amount = 0;
  Outcome outcome = Outcome::kPending;
  int epoch = 0;
  uint64_t lsn = 0;  // the WAL position the ack named (ok ops)
};

// The history of one test: every logical increment, by index. Thread-safe.
class History {
 public:
  explicit History(const std::string& path);
  ~History();
  // Returns the op's index; logs "invoke".
  size_t Invoke(std::string id, uint32_t key, int64_t amount, int epoch);
  void Complete(size_t index, Outcome outcome, const std::string& detail,
                uint64_t lsn = 0);
  // A line that is not an op (kills, restarts, check results).
  void Note(const std::string& text);
  void Sync();  // fdatasync the file
  // Copies of the ops of one epoch.
  std::vector<OpRecord> EpochOps(int epoch) const;
  const std::string& path() const { return path_; }

 private:
  void Append(const std::string& line);
  std::string path_;
  int fd_ = -1;
  mutable std::mutex mu_;
  std::vector<OpRecord> ops_;
  SteadyClock::time_point start_ = SteadyClock::now();
};

// ------------------------------------------------------------------ model

// Per key: what is known applied (base, fixed during an epoch), what the
// epoch acknowledged and what it attempted. Count and sum of amounts.
class KeyModel {
 public:
  explicit KeyModel(uint32_t keys);
  uint32_t keys() const { return keys_; }
  void Attempt(uint32_t key, int64_t amount);
  void Acked(uint32_t key, int64_t amount);
  // Lower bound of a read invoked now, upper bound of a read completed now.
  void Lower(uint32_t key, int64_t* count, int64_t* sum) const;
  void Upper(uint32_t key, int64_t* count, int64_t* sum) const;
  // base += attempted of the epoch (once every op is applied exactly once);
  // resets the epoch counters. Not concurrent with the load.
  void SealEpoch();
  int64_t base_count(uint32_t key) const { return base_count_[key]; }
  int64_t base_sum(uint32_t key) const { return base_sum_[key]; }

 private:
  uint32_t keys_;
  std::vector<int64_t> base_count_, base_sum_;
  std::unique_ptr<std::atomic<int64_t>[]> ok_count_, ok_sum_, att_count_,
      att_sum_;
};

std::string KeyName(uint32_t key);

// ------------------------------------------------------------------- load

struct LoadOptions {
  int connections = 4;
  double add_fraction = 0.7;
  std::chrono::milliseconds call_timeout{1000};
  int epoch = 0;
  uint64_t seed = 1;
};

struct LoadStats {
  int64_t adds_attempted = 0, adds_ok = 0, adds_fail = 0, adds_unknown = 0;
  int64_t reads = 0, reads_ok = 0, reads_failed = 0;
  int64_t read_violations = 0;  // live reads outside [lower, upper]
  std::vector<std::string> violation_examples;
  std::vector<double> ack_latency_us;  // ok adds
  double seconds = 0;
  void Merge(const LoadStats& other);
};

// Drives a server with `connections` threads until Stop(). Ops go to the
// history and the model.
class LoadGenerator {
 public:
  LoadGenerator(History* history, KeyModel* model, uint16_t port,
                LoadOptions options);
  ~LoadGenerator();  // stops
  void Start();
  // Stops the threads (their in-flight calls end by their deadline).
  LoadStats Stop();
  // Ops completed so far (any outcome), for "wait until some load ran".
  int64_t completed() const { return completed_.load(); }

 private:
  void Worker(int index);
  History* history_;
  KeyModel* model_;
  uint16_t port_;
  LoadOptions options_;
  std::atomic<bool> stop_{false};
  std::atomic<int64_t> completed_{0};
  std::vector<std::thread> threads_;
  std::vector<LoadStats> stats_;
  SteadyClock::time_point started_;
  std::vector<double> zipf_cdf_;
};

// ------------------------------------------------------------- reconcile

struct CheckReport {
  int64_t ops = 0, ok = 0, fail = 0, unknown = 0;
  int64_t unknown_applied = 0;
  int64_t lost = 0;              // ok ops not applied
  int64_t fail_applied = 0;      // "failed" ops that were applied
  int64_t duplicates = 0;        // keys whose read exceeds the applied ops
  int64_t bound_violations = 0;  // sum(ok) <= read <= sum(attempted) broken
  int64_t resend_errors = 0;     // re-sends that did not get an answer
  int64_t final_mismatches = 0;  // after re-sending: read != everything
  std::vector<std::string> examples;  // first few problems, readable
  bool clean() const {
    return lost == 0 && fail_applied == 0 && duplicates == 0 &&
           bound_violations == 0 && resend_errors == 0 && final_mismatches == 0;
  }
  std::string Summary() const;
};

// After a restart: runs the checkers for `epoch` against the server on
// `port`, then seals the epoch in the model. See the file comment.
CheckReport Reconcile(History* history, KeyModel* model, uint16_t port,
                      int epoch);

// ------------------------------------------------------------------ tools

// Count and sum of every model key over the whole test; false on failure.
bool ReadAllKeys(uint16_t port, uint32_t keys, std::vector<int64_t>* counts,
                 std::vector<int64_t>* sums);
// Re-sends `ops` with their ids: per op 1 = duplicate (was applied before),
// 0 = applied now, -1 = no answer.
std::vector<int> Resend(uint16_t port, const std::vector<OpRecord>& ops);

// One INFO section's "field:value" lines.
std::map<std::string, std::string> Info(uint16_t port,
                                        const std::string& section);
// Percentile (0..100) of unsorted samples; 0 when empty.
double Percentile(std::vector<double> samples, double p);
// Files in `dir` (recursively) whose name ends with `suffix`.
std::vector<std::string> FilesEndingWith(const std::string& dir,
                                         const std::string& suffix);

// ------------------------------------------------------------- kill loop

struct KillLoopOptions {
  std::vector<std::string> flags;  // e.g. --durability=fsync
  int kills = 20;
  uint32_t keys = 2000;
  std::chrono::milliseconds min_run{500}, max_run{3000};
  std::chrono::seconds wall_budget{300};  // stop early (and say so) past it
  uint64_t seed = 1;
  std::string label;  // printed with the figures
};

struct KillLoopResult {
  int kills = 0;
  bool budget_exhausted = false;
  LoadStats load;
  CheckReport total;  // summed over every restart
  std::vector<double> recovery_seconds;
  std::vector<std::string> failures;  // restart failures and check problems
  std::string Figures() const;
};

// D1/D2: start, load for a random time, kill -9, restart, reconcile; repeat.
KillLoopResult RunKillLoop(const KillLoopOptions& options,
                           const std::string& work_dir);

}  // namespace tally::crash

#endif  // TALLY_TESTS_CRASH_CRASH_HARNESS_H_
