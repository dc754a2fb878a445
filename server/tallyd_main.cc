// tallyd: the tally server. Flags: tallyd --help; docs/operations.md.

#include <fcntl.h>
#include <gflags/gflags.h>
#include <glog/logging.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "server/config_commands.h"
#include "server/flagfile_check.h"
#include "server/flags.h"
#include "server/metrics_exporter.h"
#include "server/metrics_server.h"
#include "server/policy_reload.h"
#include "server/sd_notify.h"
#include "server/server.h"
#include "server/service.h"
#include "storage/boot_clock.h"
#include "storage/engine.h"
#include "storage/file_system.h"
#include "storage/journal.h"
#include "storage/recovery.h"

namespace {

// Exit codes (docs/operations.md).
constexpr int kExitConfig = 2;      // bad flags or policy file
constexpr int kExitStartup = 1;     // cannot bind, cannot lock, I/O error
constexpr int kExitCorruption = 3;  // the WAL or snapshots need an operator

// One tallyd per data directory: two writers would interleave WAL records.
bool LockDataDir(const std::string& dir) {
  if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    LOG(ERROR) << "cannot create --data_dir " << dir << ": "
               << std::strerror(errno);
    return false;
  }
  const std::string path = dir + "/LOCK";
  const int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) != 0) {
    LOG(ERROR) << "cannot lock " << path << " (" << std::strerror(errno)
               << "): is another tallyd using this --data_dir?";
    return false;
  }
  struct stat st;
  if (stat(dir.c_str(), &st) == 0 && (st.st_mode & 077) != 0) {
    LOG(WARNING) << "--data_dir " << dir << " has mode " << std::oct
                 << (st.st_mode & 0777) << std::dec
                 << ": other users may read the counters; chmod 700 it";
  }
  return true;  // held until the process exits
}

// Tells systemd (Type=notify) what tallyd is doing; a no-op when not
// started by systemd. A failure is only logged: readiness is advisory.
void Notify(const std::string& state) {
  if (tally::Status s = tally::SdNotify(state); !s.ok()) {
    LOG(WARNING) << "sd_notify: " << s.ToString();
  }
}

// gflags ignores unknown flags read from a --flagfile (a typo would start
// tallyd with a default): refuse them. --flagfile may list several files,
// comma-separated; gflags keeps only the last --flagfile given.
tally::Status CheckFlagfiles() {
  std::string files;
  if (!gflags::GetCommandLineOption("flagfile", &files)) return {};
  std::stringstream list(files);
  std::string path;
  while (std::getline(list, path, ',')) {
    if (path.empty()) continue;
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    tally::Status s =
        tally::CheckFlagfile(path, text.str(), [](std::string_view name) {
          gflags::CommandLineFlagInfo info;
          return gflags::GetCommandLineFlagInfo(std::string(name).c_str(),
                                                &info);
        });
    if (!s.ok()) return s;
  }
  return {};
}

}  // namespace

int main(int argc, char** argv) {
  // Logs go to stderr (journald/systemd friendly) unless told otherwise.
  FLAGS_logtostderr = true;
  // help2man builds tallyd(8) from --help and --version (packaging/man/).
  gflags::SetUsageMessage(
      "the tally velocity counter server\n\n"
      "Usage: tallyd [--flagfile=FILE] [--FLAG=VALUE ...]");
  gflags::SetVersionString(TALLY_VERSION);
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  google::InitGoogleLogging(argv[0]);
  if (tally::Status s = CheckFlagfiles(); !s.ok()) {
    std::fprintf(stderr, "tallyd: %s (gflags ignores it; tallyd refuses)\n",
                 s.ToString().c_str());
    return kExitConfig;
  }

  tally::Result<tally::TallydConfig> config = tally::ConfigFromFlags();
  if (!config.ok()) {
    std::fprintf(stderr, "tallyd: %s\n", config.status().ToString().c_str());
    return kExitConfig;
  }
  if (tally::Status s = tally::CheckRunAsUser(geteuid(), config->allow_root);
      !s.ok()) {
    std::fprintf(stderr, "tallyd: %s\n", s.ToString().c_str());
    return kExitConfig;
  }
  if (!config->bind_warning.empty()) LOG(WARNING) << config->bind_warning;
  if (config->allow_root && geteuid() == 0) {
    LOG(WARNING) << "--allow_root: running as root; tallyd needs no "
                    "privilege, run it as its own user";
  }
  if (config->token_file.empty()) {
    LOG(INFO) << "no --token_file: no authentication, every connection is "
                 "admin (loopback only)";
  } else {
    LOG(INFO) << "authentication on: "
              << config->server.connection.auth->tokens->size()
              << " token(s) from " << config->token_file << " (SIGHUP reloads)";
  }

  // Block the stop signals (and SIGHUP, which reloads policies and tokens) in
  // every thread; the main thread waits for them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  tally::EngineOptions engine_options;
  engine_options.policies = config->policies;
  engine_options.distinct_exact_limit = config->distinct_exact_limit;
  engine_options.hash_seed = tally::RandomHashSeed();  // hash flooding

  tally::Recovered recovered;
  tally::JournalOptions journal_options = config->journal;
  journal_options.fs = tally::PosixFileSystem();
  journal_options.on_sync_failure = [](const tally::Status& s) {
    LOG(FATAL) << "fdatasync of the WAL failed: " << s.ToString()
               << ". Stopping now: a failed fsync is never retried (the "
                  "kernel may have dropped the dirty pages). Restart tallyd "
                  "to recover from what is on disk.";
  };
  if (config->unsafe_no_wal) {
    LOG(WARNING) << "--unsafe_no_wal: state is in memory only, every "
                    "restart loses all counters. For benchmarks only.";
    recovered.engine =
        std::make_unique<tally::Engine>(std::move(engine_options));
    recovered.dedupe = std::make_unique<tally::DedupeTable>(config->dedupe);
    journal_options.data_dir.clear();
  } else {
    if (!LockDataDir(config->data_dir)) return kExitStartup;
    Notify("STATUS=recovering " + config->data_dir);
    tally::RecoveryOptions recovery_options;
    recovery_options.fs = tally::PosixFileSystem();
    recovery_options.data_dir = config->data_dir;
    recovery_options.mode = config->recovery;
    recovery_options.engine = std::move(engine_options);
    recovery_options.dedupe = config->dedupe;
    tally::Result<tally::Recovered> result = tally::Recover(recovery_options);
    if (!result.ok()) {
      LOG(ERROR) << "tallyd cannot start: " << result.status().ToString();
      return result.status().code() == tally::Code::kCorruption
                 ? kExitCorruption
                 : kExitStartup;
    }
    recovered = std::move(*result);
    LOG(INFO) << recovered.report.Summary();
    if (recovered.report.end != tally::wal::LogEnd::kClean) {
      LOG(WARNING) << "the WAL did not end cleanly: "
                   << recovered.report.Summary();
    }
    journal_options.data_dir = config->data_dir;
  }
  tally::Journal journal(std::move(recovered), journal_options);
  if (tally::Status s = journal.Start(); !s.ok()) {
    LOG(ERROR) << "tallyd cannot open the WAL: " << s.ToString();
    return kExitStartup;
  }
  // Recovery replayed with the policies the WAL and snapshot recorded; the
  // configured ones take over from here, logged first so that the next
  // recovery switches at this LSN too.
  if (tally::Status s = tally::ApplyPolicies(&journal, config->policies);
      !s.ok()) {
    LOG(ERROR) << "tallyd cannot start: the configured policies"
               << (config->policy_file.empty()
                       ? std::string(" (built-in default)")
                       : " of --policy_file " + config->policy_file)
               << " cannot replace the recovered ones: " << s.ToString();
    journal.Stop();
    return kExitStartup;
  }
  // CONFIG GET/SET (server/runtime_config.h): declared before the service,
  // which keeps pointers into it.
  tally::RuntimeConfig runtime_config;
  runtime_config.SetReadOnlySource(tally::FlagValues);
  tally::Service service(&journal, tally::SystemClock::Default(),
                         config->service);
  service.RegisterRuntimeSettings(&runtime_config);
  tally::RegisterConfigCommands(&runtime_config, service.admin_commands());
  tally::Server server(&service, config->server);
  server.introspection().RegisterRuntimeSettings(&runtime_config);
  tally::Status started = server.Start();
  if (!started.ok()) {
    LOG(ERROR) << "tallyd: " << started.ToString();
    journal.Stop();
    return kExitStartup;
  }
  // "127.0.0.1:7379, [::1]:7379": every address of --bind on the port.
  std::string listening;
  for (size_t start = 0;;) {
    const size_t comma = config->server.bind.find(',', start);
    std::string address = config->server.bind.substr(
        start, comma == std::string::npos ? std::string::npos : comma - start);
    std::erase(address, ' ');
    if (address.find(':') != std::string::npos) address = "[" + address + "]";
    listening += (listening.empty() ? "" : ", ") + address + ":" +
                 std::to_string(server.port());
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  if (!server.unix_socket().empty()) {
    listening += ", unix:" + server.unix_socket();
  }
  LOG(INFO) << "tallyd listening on " << listening << " data_dir="
            << (config->unsafe_no_wal ? "(none)" : config->data_dir)
            << " durability="
            << (config->unsafe_no_wal ? "none"
                                      : journal_options.durability.ToString());
  LOG(INFO) << "tls="
            << (config->server.tls.enabled()
                    ? (config->server.tls.require_client_cert ? "mutual" : "on")
                    : "off (plaintext: trusted network only)");
  for (const tally::Policy* p : journal.engine()->policies().All()) {
    LOG(INFO) << "policy " << p->name
              << (p->prefix.empty() ? "" : " prefix=" + p->prefix)
              << " tiers=\"" << tally::FormatTiers(p->tiers)
              << "\" distinct=" << (p->track_distinct ? "on" : "off");
  }
  // The Prometheus endpoint: its own thread, so scrapes never wait on
  // requests (server/metrics_server.h).
  std::unique_ptr<tally::MetricsServer> metrics;
  if (config->metrics_enabled) {
    if (!config->metrics_warning.empty())
      LOG(WARNING) << config->metrics_warning;
    metrics = std::make_unique<tally::MetricsServer>(
        config->metrics, [&service] { return tally::RenderMetrics(&service); });
    if (tally::Status s = metrics->Start(); !s.ok()) {
      LOG(ERROR) << "tallyd: " << s.ToString();
      server.Stop();
      journal.Stop();
      return kExitStartup;
    }
    LOG(INFO) << "metrics on http://" << config->metrics.bind << ":"
              << metrics->port() << "/metrics";
    std::printf("tallyd metrics port=%u\n", metrics->port());
  }
  // Machine-readable readiness line for scripts and tests.
  std::printf("tallyd ready port=%u\n", server.port());
  std::fflush(stdout);
  // Only now, after recovery and listen(), may systemd start what depends
  // on tallyd: a client connecting from here on is served.
  const std::string serving = "STATUS=serving on " + listening;
  Notify("READY=1\n" + serving);

  int signal_number = 0;
  for (;;) {
    sigwait(&stop_signals, &signal_number);
    if (signal_number != SIGHUP) break;
    Notify(tally::SdReloadingMessage());
    (void)tally::ReloadPolicyFile(config->policy_file, &journal);
    if (config->token_file.empty()) {
      LOG(INFO) << "SIGHUP: no --token_file to reload";
      Notify("READY=1\n" + serving);
      continue;
    }
    // A bad file keeps the tokens in force; revoked tokens fail their
    // sessions' next request.
    tally::Status reloaded =
        config->server.connection.auth->tokens->Reload(config->token_file);
    if (reloaded.ok()) {
      LOG(INFO) << "SIGHUP: reloaded "
                << config->server.connection.auth->tokens->size()
                << " token(s) from " << config->token_file;
    } else {
      LOG(ERROR) << "SIGHUP: kept the tokens in force; cannot reload: "
                 << reloaded.ToString();
    }
    Notify("READY=1\n" + serving);
  }
  LOG(INFO) << "tallyd: signal " << signal_number << ", stopping";
  Notify("STOPPING=1\nSTATUS=stopping (signal " +
         std::to_string(signal_number) + ")");
  // Stop accepting and finish in-flight requests (their WAL records
  // complete), then sync, snapshot and stop the journal.
  const auto stop_started = tally::BootClock::now();
  if (metrics) metrics->Stop();
  server.Stop();
  journal.Stop();
  LOG(INFO) << "tallyd: stopped in "
            << std::chrono::duration<double>(tally::BootClock::now() -
                                             stop_started)
                   .count()
            << " s; "
            << "last LSN " << journal.written_lsn();
  return 0;
}
