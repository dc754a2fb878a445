#include "tests/crash/crash_harness.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <sstream>

extern char** environ;

namespace tally::crash {
namespace {

constexpr int64_t kWindowMs = 3'600'000;  // covers every test (< 1 h)
constexpr uint32_t kReadAggs = proto::kAggCountBit | proto::kAggSumBit;
// Safety caps for every loop that is not bounded otherwise.
constexpr int64_t kMaxOpsPerWorker = 2'000'000;
constexpr auto kMaxWorkerRun = std::chrono::seconds(600);

double SecondsSince(SteadyClock::time_point t) {
  return std::chrono::duration<double>(SteadyClock::now() - t).count();
}

ExitStatus FromWaitStatus(int status) {
  ExitStatus s;
  if (WIFEXITED(status)) {
    s.exited = true;
    s.code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    s.signaled = true;
    s.signal = WTERMSIG(status);
  }
  return s;
}

// Polls waitpid until the child exits or the timeout passes.
bool WaitPid(pid_t pid, std::chrono::milliseconds timeout, ExitStatus* out) {
  const auto deadline = SteadyClock::now() + timeout;
  for (;;) {
    int status = 0;
    const pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) {
      *out = FromWaitStatus(status);
      return true;
    }
    if (r < 0 && errno != EINTR) {
      *out = ExitStatus{};
      return true;  // not our child any more: nothing to wait for
    }
    if (SteadyClock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

ClientOptions HarnessClientOptions(uint16_t port,
                                   std::chrono::milliseconds timeout) {
  ClientOptions options;
  options.endpoints = {{"127.0.0.1", port}};
  options.connections_per_endpoint = 1;
  options.default_timeout = timeout;
  options.connect_timeout = std::chrono::milliseconds(500);
  options.breaker.enabled = false;  // every op reaches the server
  options.client_name = "crash-harness";
  return options;
}

CallOptions Deadline(std::chrono::milliseconds d) {
  CallOptions call;
  call.deadline = ClientClock::now() + d;
  return call;
}

const char* OutcomeName(Outcome o) {
  switch (o) {
    case Outcome::kPending:
      return "pending";
    case Outcome::kOk:
      return "ok";
    case Outcome::kFail:
      return "fail";
    case Outcome::kUnknown:
      return "unknown";
  }
  return "?";
}

}  // namespace

uint64_t TestSeed() {
  if (const char* s = std::getenv("TALLY_SEED"); s != nullptr && *s != 0) {
    return std::strtoull(s, nullptr, 0);
  }
  return std::random_device{}() * 0x9E3779B97F4A7C15ull ^
         std::random_device{}();
}

std::string EnvOr(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != 0 ? std::string(v) : fallback;
}

TempDir::TempDir(const std::string& prefix) {
  std::string pattern = EnvOr("TMPDIR", "/tmp") + "/" + prefix + "-XXXXXX";
  if (mkdtemp(pattern.data()) != nullptr) path_ = pattern;
}

TempDir::~TempDir() {
  if (path_.empty()) return;
  if (!EnvOr("TALLY_KEEP_TMP").empty()) {
    std::fprintf(stderr, "kept %s (TALLY_KEEP_TMP)\n", path_.c_str());
    return;
  }
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string ExitStatus::ToString() const {
  if (exited) return "exit " + std::to_string(code);
  if (signaled) return "signal " + std::to_string(signal);
  return "unknown";
}

std::string TallyWalBinary() {
  std::string path = EnvOr("TALLY_WAL");
  if (!path.empty()) return path;
  const std::string tallyd = EnvOr("TALLYD");
  if (tallyd.empty()) return "";
  path = std::filesystem::path(tallyd).parent_path() / "tally-wal";
  return access(path.c_str(), X_OK) == 0 ? path : "";
}

int RunCommand(const std::vector<std::string>& argv, std::string* output,
               std::chrono::seconds timeout, bool with_stderr) {
  int out[2];
  if (pipe2(out, O_CLOEXEC) != 0) return -1;
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
  if (with_stderr) {
    posix_spawn_file_actions_adddup2(&actions, out[1], STDERR_FILENO);
  } else {
    posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, "/dev/null",
                                     O_WRONLY, 0);
  }
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null",
                                   O_RDONLY, 0);
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.data()));
  args.push_back(nullptr);
  pid_t pid = -1;
  const int rc =
      posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(out[1]);
  if (rc != 0) {
    close(out[0]);
    return -1;
  }
  const auto deadline = SteadyClock::now() + timeout;
  char buf[4096];
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                          deadline - SteadyClock::now())
                          .count();
    if (left <= 0) break;
    pollfd p{out[0], POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left)) <= 0) continue;
    const ssize_t n = read(out[0], buf, sizeof(buf));
    if (n <= 0) break;
    if (output != nullptr) output->append(buf, static_cast<size_t>(n));
  }
  close(out[0]);
  ExitStatus status;
  if (!WaitPid(pid, std::chrono::seconds(5), &status)) {
    kill(pid, SIGKILL);
    WaitPid(pid, std::chrono::seconds(5), &status);
    return -1;
  }
  return status.exited ? status.code : -1;
}

// ------------------------------------------------------------ TallydProcess

TallydProcess::~TallydProcess() {
  if (pid_ > 0) Kill9();
  CloseStdout();
}

void TallydProcess::CloseStdout() {
  if (stdout_fd_ >= 0) close(stdout_fd_);
  stdout_fd_ = -1;
}

bool TallydProcess::Start(const StartOptions& options) {
  if (pid_ > 0) Kill9();
  CloseStdout();
  exit_status_ = ExitStatus{};
  port_ = 0;
  int out[2];
  if (pipe2(out, O_CLOEXEC) != 0) return false;
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null",
                                   O_RDONLY, 0);
  const std::string log =
      options.log_path.empty() ? "/dev/null" : options.log_path;
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, log.c_str(),
                                   O_WRONLY | O_CREAT | O_APPEND, 0644);
  // --allow_root: the crash suites run as root in CI.
  std::vector<std::string> argv = {options.binary, "--allow_root",
                                   "--bind=127.0.0.1", "--port=0",
                                   "--data_dir=" + options.data_dir};
  argv.insert(argv.end(), options.flags.begin(), options.flags.end());
  std::vector<char*> args;
  for (std::string& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    if (std::strncmp(*e, "TALLY_KILL_POINT", 16) == 0) continue;
    env.emplace_back(*e);
  }
  // An extra variable replaces an inherited one of the same name (getenv
  // would see the first), except that sanitizer options are merged: the
  // inherited ones (tools/test.sh sets ASAN_OPTIONS) still apply.
  for (const std::string& extra : options.extra_env) {
    const std::string name = extra.substr(0, extra.find('=') + 1);
    std::string value = extra.substr(name.size());
    for (auto it = env.begin(); it != env.end();) {
      if (it->compare(0, name.size(), name) == 0) {
        if (name == "ASAN_OPTIONS=" || name == "UBSAN_OPTIONS=") {
          value = it->substr(name.size()) + ":" + value;
        }
        it = env.erase(it);
      } else {
        ++it;
      }
    }
    env.push_back(name + value);
  }
  std::vector<char*> envp;
  for (std::string& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);

  const auto started = SteadyClock::now();
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, options.binary.c_str(), &actions, nullptr,
                             args.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  close(out[1]);
  if (rc != 0) {
    close(out[0]);
    return false;
  }
  pid_ = pid;
  stdout_fd_ = out[0];
  const auto deadline = started + options.ready_timeout;
  std::string text;
  char buf[512];
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                          deadline - SteadyClock::now())
                          .count();
    if (left <= 0) {
      std::fprintf(stderr, "tallyd: no ready line within %lld s; killing\n",
                   static_cast<long long>(options.ready_timeout.count()));
      exit_status_ = Kill9();
      return false;
    }
    pollfd p{stdout_fd_, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(std::min<int64_t>(left, 100))) <= 0) {
      continue;
    }
    const ssize_t n = read(stdout_fd_, buf, sizeof(buf));
    if (n <= 0) {
      // stdout closed before the ready line: the process is exiting.
      ExitStatus status;
      if (!WaitPid(pid_, std::chrono::seconds(30), &status)) {
        status = Kill9();
      }
      exit_status_ = status;
      pid_ = -1;
      CloseStdout();
      return false;
    }
    text.append(buf, static_cast<size_t>(n));
    const size_t at = text.find("tallyd ready port=");
    if (at != std::string::npos && text.find('\n', at) != std::string::npos) {
      port_ = static_cast<uint16_t>(std::strtoul(
          text.c_str() + at + std::strlen("tallyd ready port="), nullptr, 10));
      ready_seconds_ = SecondsSince(started);
      return port_ != 0;
    }
  }
}

ExitStatus TallydProcess::Kill9() {
  ExitStatus status;
  if (pid_ <= 0) return exit_status_;
  kill(pid_, SIGKILL);
  int raw = 0;
  while (waitpid(pid_, &raw, 0) < 0 && errno == EINTR) {
  }
  status = FromWaitStatus(raw);
  exit_status_ = status;
  pid_ = -1;
  CloseStdout();
  return status;
}

ExitStatus TallydProcess::Terminate(std::chrono::milliseconds timeout,
                                    double* seconds, bool* timed_out, int sig) {
  if (timed_out != nullptr) *timed_out = false;
  if (pid_ <= 0) return exit_status_;
  const auto t0 = SteadyClock::now();
  kill(pid_, sig);
  ExitStatus status;
  if (!WaitPid(pid_, timeout, &status)) {
    if (timed_out != nullptr) *timed_out = true;
    status = Kill9();
  }
  if (seconds != nullptr) *seconds = SecondsSince(t0);
  exit_status_ = status;
  pid_ = -1;
  CloseStdout();
  return status;
}

bool TallydProcess::WaitExit(std::chrono::milliseconds timeout,
                             ExitStatus* status) {
  if (pid_ <= 0) {
    *status = exit_status_;
    return true;
  }
  if (!WaitPid(pid_, timeout, status)) return false;
  exit_status_ = *status;
  pid_ = -1;
  CloseStdout();
  return true;
}

// ------------------------------------------------------------------ History

History::History(const std::string& path) : path_(path) {
  fd_ = open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
}

History::~History() {
  Sync();
  if (fd_ >= 0) close(fd_);
}

void History::Append(const std::string& line) {
  if (fd_ < 0) return;
  const std::string stamped =
      std::to_string(static_cast<int64_t>(SecondsSince(start_) * 1e6)) + " " +
      line + "\n";
  size_t done = 0;
  while (done < stamped.size()) {
    const ssize_t n = write(fd_, stamped.data() + done, stamped.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    done += static_cast<size_t>(n);
  }
}

size_t History::Invoke(std::string id, uint32_t key, int64_t amount,
                       int epoch) {
  std::lock_guard<std::mutex> lock(mu_);
  Append("invoke id=" + id + " key=" + KeyName(key) + " amount=" +
         std::to_string(amount) + " epoch=" + std::to_string(epoch));
  ops_.push_back({std::move(id), key, amount, Outcome::kPending, epoch});
  return ops_.size() - 1;
}

void History::Complete(size_t index, Outcome outcome, const std::string& detail,
                       uint64_t lsn) {
  std::lock_guard<std::mutex> lock(mu_);
  ops_[index].outcome = outcome;
  ops_[index].lsn = lsn;
  Append(std::string(OutcomeName(outcome)) + " id=" + ops_[index].id +
         (detail.empty() ? "" : " " + detail));
}

void History::Note(const std::string& text) {
  std::lock_guard<std::mutex> lock(mu_);
  Append("# " + text);
}

void History::Sync() {
  std::lock_guard<std::mutex> lock(mu_);
  if (fd_ >= 0) fdatasync(fd_);
}

std::vector<OpRecord> History::EpochOps(int epoch) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<OpRecord> out;
  for (const OpRecord& op : ops_) {
    if (op.epoch == epoch) out.push_back(op);
  }
  return out;
}

// ----------------------------------------------------------------- KeyModel

std::string KeyName(uint32_t key) { return "crash:k" + std::to_string(key); }

KeyModel::KeyModel(uint32_t keys)
    : keys_(keys),
      base_count_(keys, 0),
      base_sum_(keys, 0),
      ok_count_(new std::atomic<int64_t>[keys]),
      ok_sum_(new std::atomic<int64_t>[keys]),
      att_count_(new std::atomic<int64_t>[keys]),
      att_sum_(new std::atomic<int64_t>[keys]) {
  for (uint32_t k = 0; k < keys; ++k) {
    ok_count_[k] = ok_sum_[k] = att_count_[k] = att_sum_[k] = 0;
  }
}

void KeyModel::Attempt(uint32_t key, int64_t amount) {
  att_count_[key].fetch_add(1);
  att_sum_[key].fetch_add(amount);
}

void KeyModel::Acked(uint32_t key, int64_t amount) {
  ok_count_[key].fetch_add(1);
  ok_sum_[key].fetch_add(amount);
}

void KeyModel::Lower(uint32_t key, int64_t* count, int64_t* sum) const {
  *count = base_count_[key] + ok_count_[key].load();
  *sum = base_sum_[key] + ok_sum_[key].load();
}

void KeyModel::Upper(uint32_t key, int64_t* count, int64_t* sum) const {
  *count = base_count_[key] + att_count_[key].load();
  *sum = base_sum_[key] + att_sum_[key].load();
}

void KeyModel::SealEpoch() {
  for (uint32_t k = 0; k < keys_; ++k) {
    base_count_[k] += att_count_[k].load();
    base_sum_[k] += att_sum_[k].load();
    ok_count_[k] = ok_sum_[k] = att_count_[k] = att_sum_[k] = 0;
  }
}

// ------------------------------------------------------------ LoadGenerator

void LoadStats::Merge(const LoadStats& o) {
  adds_attempted += o.adds_attempted;
  adds_ok += o.adds_ok;
  adds_fail += o.adds_fail;
  adds_unknown += o.adds_unknown;
  reads += o.reads;
  reads_ok += o.reads_ok;
  reads_failed += o.reads_failed;
  read_violations += o.read_violations;
  for (const std::string& e : o.violation_examples) {
    if (violation_examples.size() < 10) violation_examples.push_back(e);
  }
  ack_latency_us.insert(ack_latency_us.end(), o.ack_latency_us.begin(),
                        o.ack_latency_us.end());
  seconds += o.seconds;
}

LoadGenerator::LoadGenerator(History* history, KeyModel* model, uint16_t port,
                             LoadOptions options)
    : history_(history), model_(model), port_(port), options_(options) {
  // Zipf-ish (s = 1): key k with weight 1 / (k + 1).
  zipf_cdf_.resize(model->keys());
  double total = 0;
  for (uint32_t k = 0; k < model->keys(); ++k) {
    total += 1.0 / (k + 1);
    zipf_cdf_[k] = total;
  }
  for (double& c : zipf_cdf_) c /= total;
}

LoadGenerator::~LoadGenerator() { Stop(); }

void LoadGenerator::Start() {
  stop_ = false;
  started_ = SteadyClock::now();
  stats_.assign(options_.connections, LoadStats{});
  for (int i = 0; i < options_.connections; ++i) {
    threads_.emplace_back([this, i] { Worker(i); });
  }
}

LoadStats LoadGenerator::Stop() {
  stop_ = true;
  for (std::thread& t : threads_) t.join();
  LoadStats total;
  if (threads_.empty()) return total;
  threads_.clear();
  for (const LoadStats& s : stats_) total.Merge(s);
  total.seconds = SecondsSince(started_);
  return total;
}

void LoadGenerator::Worker(int index) {
  LoadStats& st = stats_[index];
  std::mt19937_64 rng(options_.seed * 1000003u + options_.epoch * 131u + index);
  std::uniform_real_distribution<double> unit(0, 1);
  std::uniform_int_distribution<int64_t> amount_dist(1, 100);
  Client client(HarnessClientOptions(port_, options_.call_timeout));
  const auto begin = SteadyClock::now();
  int64_t seq = 0;
  while (!stop_.load() && seq < kMaxOpsPerWorker &&
         SteadyClock::now() - begin < kMaxWorkerRun) {
    ++seq;
    const uint32_t key = static_cast<uint32_t>(
        std::lower_bound(zipf_cdf_.begin(), zipf_cdf_.end(), unit(rng)) -
        zipf_cdf_.begin());
    const uint32_t k = std::min(key, model_->keys() - 1);
    if (unit(rng) < options_.add_fraction) {
      const int64_t amount = amount_dist(rng);
      std::string id = "c" + std::to_string(options_.seed % 1000000) + "-e" +
                       std::to_string(options_.epoch) + "-w" +
                       std::to_string(index) + "-" + std::to_string(seq);
      Batch batch;
      batch.Add(KeyName(k), amount, std::nullopt, 0, 1, std::string_view(id));
      const size_t op = history_->Invoke(id, k, amount, options_.epoch);
      model_->Attempt(k, amount);
      ++st.adds_attempted;
      const auto t0 = SteadyClock::now();
      CallResult<BatchResult> r = client.Execute(batch);
      const double us =
          std::chrono::duration<double, std::micro>(SteadyClock::now() - t0)
              .count();
      if (r.ok() && r.value.adds.size() == 1 &&
          r.value.adds[0].code == Code::kOk) {
        model_->Acked(k, amount);
        ++st.adds_ok;
        st.ack_latency_us.push_back(us);
        history_->Complete(op, Outcome::kOk,
                           "lsn=" + std::to_string(r.value.adds[0].lsn) +
                               (r.value.adds[0].duplicate ? " dup" : ""),
                           r.value.adds[0].lsn);
      } else if (r.ok() && r.value.adds.size() == 1 && r.attempts <= 1) {
        // The server answered this item with an error on the only try:
        // definitely not applied (checked after the restart).
        ++st.adds_fail;
        history_->Complete(op, Outcome::kFail,
                           std::string(CodeName(r.value.adds[0].code)) + " " +
                               r.value.adds[0].message);
      } else {
        ++st.adds_unknown;
        history_->Complete(op, Outcome::kUnknown,
                           std::string(CodeName(r.code)) + " attempts=" +
                               std::to_string(r.attempts) + " " + r.message);
      }
    } else {
      int64_t lo_c, lo_s, hi_c, hi_s;
      model_->Lower(k, &lo_c, &lo_s);
      Batch batch;
      batch.Query(KeyName(k), kWindowMs, kReadAggs);
      ++st.reads;
      CallResult<BatchResult> r = client.Execute(batch);
      model_->Upper(k, &hi_c, &hi_s);
      if (r.ok() && r.value.queries.size() == 1 &&
          r.value.queries[0].code == Code::kOk) {
        ++st.reads_ok;
        const proto::Aggregates& a = r.value.queries[0].answer;
        if (a.count < lo_c || a.count > hi_c || a.sum < lo_s || a.sum > hi_s) {
          ++st.read_violations;
          if (st.violation_examples.size() < 5) {
            st.violation_examples.push_back(
                KeyName(k) + " read count=" + std::to_string(a.count) +
                " sum=" + std::to_string(a.sum) + " outside count[" +
                std::to_string(lo_c) + "," + std::to_string(hi_c) + "] sum[" +
                std::to_string(lo_s) + "," + std::to_string(hi_s) + "]");
          }
        }
      } else {
        ++st.reads_failed;
      }
    }
    completed_.fetch_add(1);
  }
}

// ---------------------------------------------------------------- Reconcile

std::string CheckReport::Summary() const {
  std::ostringstream out;
  out << "ops=" << ops << " ok=" << ok << " fail=" << fail
      << " unknown=" << unknown << " unknown_applied=" << unknown_applied
      << " lost=" << lost << " fail_applied=" << fail_applied
      << " duplicates=" << duplicates
      << " bound_violations=" << bound_violations
      << " resend_errors=" << resend_errors
      << " final_mismatches=" << final_mismatches;
  for (const std::string& e : examples) out << "\n  " << e;
  return out.str();
}

namespace {

// Reads every key of the model (count and sum over the whole test); false
// when some batch could not be read after retries.
bool ReadAll(Client& client, uint32_t keys, std::vector<int64_t>* counts,
             std::vector<int64_t>* sums) {
  counts->assign(keys, 0);
  sums->assign(keys, 0);
  constexpr uint32_t kChunk = 500;
  for (uint32_t first = 0; first < keys; first += kChunk) {
    const uint32_t last = std::min(keys, first + kChunk);
    Batch batch;
    for (uint32_t k = first; k < last; ++k) {
      batch.Query(KeyName(k), kWindowMs, kReadAggs);
    }
    bool done = false;
    for (int attempt = 0; attempt < 5 && !done; ++attempt) {
      CallResult<BatchResult> r =
          client.Execute(batch, Deadline(std::chrono::seconds(10)));
      if (!r.ok() || r.value.queries.size() != last - first) continue;
      done = true;
      for (uint32_t k = first; k < last; ++k) {
        const proto::QueryItemResult& q = r.value.queries[k - first];
        if (q.code != Code::kOk) done = false;
        (*counts)[k] = q.answer.count;
        (*sums)[k] = q.answer.sum;
      }
    }
    if (!done) return false;
  }
  return true;
}

void AddExample(CheckReport* report, const std::string& text) {
  if (report->examples.size() < 12) report->examples.push_back(text);
}

}  // namespace

CheckReport Reconcile(History* history, KeyModel* model, uint16_t port,
                      int epoch) {
  CheckReport report;
  const std::vector<OpRecord> ops = history->EpochOps(epoch);
  const uint32_t keys = model->keys();
  std::vector<int64_t> ok_c(keys, 0), ok_s(keys, 0), att_c(keys, 0),
      att_s(keys, 0), app_c(keys, 0), app_s(keys, 0);
  for (const OpRecord& op : ops) {
    ++report.ops;
    att_c[op.key] += 1;
    att_s[op.key] += op.amount;
    if (op.outcome == Outcome::kOk) {
      ++report.ok;
      ok_c[op.key] += 1;
      ok_s[op.key] += op.amount;
    } else if (op.outcome == Outcome::kFail) {
      ++report.fail;
    } else {
      ++report.unknown;  // pending counts as unknown (never happens)
    }
  }
  Client client(HarnessClientOptions(port, std::chrono::seconds(10)));

  // 1. Bounds: sum(ok) <= read <= sum(attempted), per key.
  std::vector<int64_t> read_c, read_s;
  if (!ReadAll(client, keys, &read_c, &read_s)) {
    ++report.resend_errors;
    AddExample(&report, "could not read the keys after the restart");
    return report;
  }
  for (uint32_t k = 0; k < keys; ++k) {
    const int64_t lo_c = model->base_count(k) + ok_c[k];
    const int64_t lo_s = model->base_sum(k) + ok_s[k];
    const int64_t hi_c = model->base_count(k) + att_c[k];
    const int64_t hi_s = model->base_sum(k) + att_s[k];
    if (read_c[k] < lo_c || read_c[k] > hi_c || read_s[k] < lo_s ||
        read_s[k] > hi_s) {
      ++report.bound_violations;
      AddExample(&report, "epoch " + std::to_string(epoch) + " " + KeyName(k) +
                              " read count=" + std::to_string(read_c[k]) +
                              " sum=" + std::to_string(read_s[k]) +
                              " expected count[" + std::to_string(lo_c) + "," +
                              std::to_string(hi_c) + "] sum[" +
                              std::to_string(lo_s) + "," +
                              std::to_string(hi_s) + "]");
    }
  }

  // 2. Re-send every op of the epoch with its id: `duplicate` says whether
  // it was applied before the restart.
  constexpr size_t kChunk = 200;
  for (size_t first = 0; first < ops.size(); first += kChunk) {
    const size_t last = std::min(ops.size(), first + kChunk);
    Batch batch;
    for (size_t i = first; i < last; ++i) {
      batch.Add(KeyName(ops[i].key), ops[i].amount, std::nullopt, 0, 1,
                std::string_view(ops[i].id));
    }
    CallResult<BatchResult> r;
    bool answered = false;
    for (int attempt = 0; attempt < 5 && !answered; ++attempt) {
      r = client.Execute(batch, Deadline(std::chrono::seconds(10)));
      answered = r.ok() && r.value.adds.size() == last - first;
    }
    if (!answered) {
      report.resend_errors += static_cast<int64_t>(last - first);
      AddExample(&report, "re-send failed: " + std::string(CodeName(r.code)) +
                              " " + r.message);
      continue;
    }
    for (size_t i = first; i < last; ++i) {
      const OpRecord& op = ops[i];
      const proto::AddItemResult& item = r.value.adds[i - first];
      if (item.code != Code::kOk) {
        ++report.resend_errors;
        AddExample(&report, "re-send of " + op.id + ": " +
                                std::string(CodeName(item.code)) + " " +
                                item.message);
        continue;
      }
      if (item.duplicate) {
        app_c[op.key] += 1;
        app_s[op.key] += op.amount;
      }
      if (op.outcome == Outcome::kOk && !item.duplicate) {
        ++report.lost;
        AddExample(&report, "LOST acknowledged op " + op.id + " " +
                                KeyName(op.key) +
                                " amount=" + std::to_string(op.amount));
      } else if (op.outcome == Outcome::kFail && item.duplicate) {
        ++report.fail_applied;
        AddExample(&report, "op reported FAILED was applied: " + op.id);
      } else if (op.outcome != Outcome::kOk && op.outcome != Outcome::kFail &&
                 item.duplicate) {
        ++report.unknown_applied;
      }
    }
  }

  // 3. Exactly: read == base + every op whose id the server remembered.
  for (uint32_t k = 0; k < keys; ++k) {
    const int64_t want_c = model->base_count(k) + app_c[k];
    const int64_t want_s = model->base_sum(k) + app_s[k];
    if (read_c[k] != want_c || read_s[k] != want_s) {
      if (read_c[k] > want_c || read_s[k] > want_s) {
        ++report.duplicates;
      } else {
        ++report.lost;
      }
      AddExample(&report,
                 "epoch " + std::to_string(epoch) + " " + KeyName(k) +
                     " read count=" + std::to_string(read_c[k]) +
                     " sum=" + std::to_string(read_s[k]) +
                     " but applied ids say count=" + std::to_string(want_c) +
                     " sum=" + std::to_string(want_s));
    }
  }

  // 4. After the re-sends every op is applied exactly once.
  std::vector<int64_t> final_c, final_s;
  if (!ReadAll(client, keys, &final_c, &final_s)) {
    ++report.resend_errors;
    AddExample(&report, "could not read the keys after the re-sends");
  } else {
    for (uint32_t k = 0; k < keys; ++k) {
      const int64_t want_c = model->base_count(k) + att_c[k];
      const int64_t want_s = model->base_sum(k) + att_s[k];
      if (final_c[k] != want_c || final_s[k] != want_s) {
        ++report.final_mismatches;
        AddExample(&report, "after re-send " + KeyName(k) +
                                " count=" + std::to_string(final_c[k]) +
                                " sum=" + std::to_string(final_s[k]) +
                                " want count=" + std::to_string(want_c) +
                                " sum=" + std::to_string(want_s));
      }
    }
  }
  model->SealEpoch();
  history->Note("check epoch=" + std::to_string(epoch) + " " +
                report.Summary());
  history->Sync();
  return report;
}

// -------------------------------------------------------------------- tools

bool ReadAllKeys(uint16_t port, uint32_t keys, std::vector<int64_t>* counts,
                 std::vector<int64_t>* sums) {
  Client client(HarnessClientOptions(port, std::chrono::seconds(10)));
  return ReadAll(client, keys, counts, sums);
}

std::vector<int> Resend(uint16_t port, const std::vector<OpRecord>& ops) {
  Client client(HarnessClientOptions(port, std::chrono::seconds(10)));
  std::vector<int> out(ops.size(), -1);
  constexpr size_t kChunk = 200;
  for (size_t first = 0; first < ops.size(); first += kChunk) {
    const size_t last = std::min(ops.size(), first + kChunk);
    Batch batch;
    for (size_t i = first; i < last; ++i) {
      batch.Add(KeyName(ops[i].key), ops[i].amount, std::nullopt, 0, 1,
                std::string_view(ops[i].id));
    }
    for (int attempt = 0; attempt < 5; ++attempt) {
      CallResult<BatchResult> r =
          client.Execute(batch, Deadline(std::chrono::seconds(10)));
      if (!r.ok() || r.value.adds.size() != last - first) continue;
      for (size_t i = first; i < last; ++i) {
        const proto::AddItemResult& item = r.value.adds[i - first];
        if (item.code == Code::kOk) out[i] = item.duplicate ? 1 : 0;
      }
      break;
    }
  }
  return out;
}

std::map<std::string, std::string> Info(uint16_t port,
                                        const std::string& section) {
  std::map<std::string, std::string> fields;
  Client client(HarnessClientOptions(port, std::chrono::seconds(10)));
  proto::Request request;
  request.body = proto::InfoRequest{section};
  for (int attempt = 0; attempt < 3; ++attempt) {
    CallResult<proto::Response> r = client.Call(request);
    if (!r.ok()) continue;
    const auto* info = std::get_if<proto::InfoResult>(&r.value.body);
    if (info == nullptr) continue;
    std::istringstream in(info->text);
    std::string line;
    while (std::getline(in, line)) {
      const size_t colon = line.find(':');
      if (line.empty() || line[0] == '#' || colon == std::string::npos) {
        continue;
      }
      fields[line.substr(0, colon)] = line.substr(colon + 1);
    }
    break;
  }
  return fields;
}

double Percentile(std::vector<double> samples, double p) {
  if (samples.empty()) return 0;
  std::sort(samples.begin(), samples.end());
  const double rank = p / 100.0 * static_cast<double>(samples.size() - 1);
  return samples[static_cast<size_t>(std::lround(rank))];
}

std::vector<std::string> FilesEndingWith(const std::string& dir,
                                         const std::string& suffix) {
  std::vector<std::string> out;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
       !ec && it != std::filesystem::recursive_directory_iterator();
       it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.size() >= suffix.size() &&
        name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0) {
      out.push_back(it->path().string());
    }
  }
  return out;
}

// ---------------------------------------------------------------- kill loop

std::string KillLoopResult::Figures() const {
  std::ostringstream out;
  out.setf(std::ios::fixed);
  out.precision(3);
  out << "kills=" << kills << (budget_exhausted ? " (wall budget hit)" : "")
      << " ops_attempted=" << load.adds_attempted << " ok=" << load.adds_ok
      << " fail=" << load.adds_fail << " unknown=" << load.adds_unknown
      << " unknown_applied=" << total.unknown_applied << " lost=" << total.lost
      << " duplicates=" << total.duplicates
      << " fail_applied=" << total.fail_applied
      << " live_reads=" << load.reads_ok
      << " live_read_violations=" << load.read_violations
      << " recovery_s_p50=" << Percentile(recovery_seconds, 50)
      << " recovery_s_max=" << Percentile(recovery_seconds, 100)
      << " adds_per_s="
      << (load.seconds > 0 ? static_cast<double>(load.adds_ok) / load.seconds
                           : 0)
      << " ack_ms_p50=" << Percentile(load.ack_latency_us, 50) / 1000
      << " ack_ms_p99=" << Percentile(load.ack_latency_us, 99) / 1000
      << " ack_ms_p999=" << Percentile(load.ack_latency_us, 99.9) / 1000;
  return out.str();
}

KillLoopResult RunKillLoop(const KillLoopOptions& options,
                           const std::string& work_dir) {
  KillLoopResult result;
  const auto wall_start = SteadyClock::now();
  History history(work_dir + "/history.log");
  history.Note("seed=" + std::to_string(options.seed) + " " + options.label);
  KeyModel model(options.keys);
  StartOptions start;
  start.binary = EnvOr("TALLYD");
  start.data_dir = work_dir + "/data";
  start.flags = options.flags;
  start.log_path = work_dir + "/tallyd.log";
  TallydProcess server;
  if (!server.Start(start)) {
    result.failures.push_back("first start failed: " +
                              server.exit_status().ToString());
    return result;
  }
  std::mt19937_64 rng(options.seed);
  std::uniform_int_distribution<int64_t> run_ms(options.min_run.count(),
                                                options.max_run.count());
  for (int epoch = 0; epoch < options.kills; ++epoch) {
    if (SteadyClock::now() - wall_start > options.wall_budget) {
      result.budget_exhausted = true;
      break;
    }
    LoadOptions load_options;
    load_options.epoch = epoch;
    load_options.seed = options.seed;
    LoadGenerator load(&history, &model, server.port(), load_options);
    load.Start();
    std::this_thread::sleep_for(std::chrono::milliseconds(run_ms(rng)));
    history.Sync();
    const ExitStatus killed = server.Kill9();
    result.load.Merge(load.Stop());
    ++result.kills;
    history.Note("kill -9 epoch=" + std::to_string(epoch) + " -> " +
                 killed.ToString());
    history.Sync();
    if (!server.Start(start)) {
      result.failures.push_back("restart after kill " + std::to_string(epoch) +
                                " failed: " + server.exit_status().ToString() +
                                " (log " + start.log_path + ")");
      break;
    }
    result.recovery_seconds.push_back(server.ready_seconds());
    const CheckReport check = Reconcile(&history, &model, server.port(), epoch);
    result.total.ops += check.ops;
    result.total.ok += check.ok;
    result.total.fail += check.fail;
    result.total.unknown += check.unknown;
    result.total.unknown_applied += check.unknown_applied;
    result.total.lost += check.lost;
    result.total.fail_applied += check.fail_applied;
    result.total.duplicates += check.duplicates;
    result.total.bound_violations += check.bound_violations;
    result.total.resend_errors += check.resend_errors;
    result.total.final_mismatches += check.final_mismatches;
    for (const std::string& e : check.examples) {
      if (result.total.examples.size() < 20) result.total.examples.push_back(e);
    }
    if (!check.clean()) {
      result.failures.push_back("check after kill " + std::to_string(epoch) +
                                ": " + check.Summary());
      break;  // keep the data dir state for the report; no point going on
    }
  }
  double stop_seconds = 0;
  bool timed_out = false;
  const ExitStatus stopped =
      server.Terminate(std::chrono::seconds(30), &stop_seconds, &timed_out);
  if (timed_out || !stopped.exited || stopped.code != 0) {
    result.failures.push_back("final SIGTERM: " + stopped.ToString() +
                              (timed_out ? " (timed out)" : ""));
  }
  history.Note("done " + result.Figures());
  return result;
}

}  // namespace tally::crash
