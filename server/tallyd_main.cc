// tallyd: the tally server. Flags: tallyd --help; docs/operations.md.

#include <gflags/gflags.h>
#include <glog/logging.h>
#include <signal.h>

#include <cstdio>
#include <random>

#include "server/flags.h"
#include "server/server.h"
#include "server/service.h"
#include "storage/engine.h"

int main(int argc, char** argv) {
  // Logs go to stderr (journald/systemd friendly) unless told otherwise.
  FLAGS_logtostderr = true;
  gflags::SetUsageMessage("the tally velocity counter server");
  gflags::SetVersionString("0.1.0");
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  google::InitGoogleLogging(argv[0]);

  tally::Result<tally::TallydConfig> config = tally::ConfigFromFlags();
  if (!config.ok()) {
    std::fprintf(stderr, "tallyd: %s\n", config.status().ToString().c_str());
    return 2;
  }

  // Block the stop signals in every thread; the main thread waits for them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  tally::EngineOptions engine_options;
  engine_options.policies = config->policies;
  engine_options.distinct_exact_limit = config->distinct_exact_limit;
  engine_options.hash_seed = std::random_device{}() * 0x9E3779B97F4A7C15ull ^
                             std::random_device{}();  // hash flooding
  tally::Engine engine(std::move(engine_options));
  tally::Service service(&engine, tally::SystemClock::Default(),
                         config->service);
  tally::Server server(&engine, &service, config->server);
  tally::Status started = server.Start();
  if (!started.ok()) {
    LOG(ERROR) << "tallyd: " << started.ToString();
    return 1;
  }
  LOG(INFO) << "tallyd listening on " << config->server.bind << ":"
            << server.port();
  LOG(WARNING)
      << "state is in memory only: the WAL arrives with the durability "
         "issue, so a restart loses every counter (--data_dir "
      << config->data_dir << " is not used yet)";
  for (const tally::Policy* p : engine.policies().All()) {
    LOG(INFO) << "policy " << p->name
              << (p->prefix.empty() ? "" : " prefix=" + p->prefix)
              << " tiers=\"" << tally::FormatTiers(p->tiers)
              << "\" distinct=" << (p->track_distinct ? "on" : "off");
  }
  // Machine-readable readiness line for scripts and tests.
  std::printf("tallyd ready port=%u\n", server.port());
  std::fflush(stdout);

  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  LOG(INFO) << "tallyd: signal " << signal_number << ", stopping";
  server.Stop();
  LOG(INFO) << "tallyd: stopped";
  return 0;
}
