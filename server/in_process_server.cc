#include "server/in_process_server.h"

#include "server/config_commands.h"
#include "storage/file_system.h"
#include "storage/recovery.h"

namespace tally {

InProcessServer::InProcessServer(InProcessServerOptions options) {
  Recovered recovered;
  JournalOptions journal_options;
  journal_options.durability = options.durability;
  if (options.data_dir.empty()) {
    recovered.engine = std::make_unique<Engine>(options.engine);
    recovered.dedupe = std::make_unique<DedupeTable>(options.dedupe);
  } else {
    RecoveryOptions ro;
    ro.fs = PosixFileSystem();
    ro.data_dir = options.data_dir;
    ro.engine = options.engine;
    ro.dedupe = options.dedupe;
    Result<Recovered> r = Recover(ro);
    if (!r.ok()) {
      status_ = r.status();
      recovered.engine = std::make_unique<Engine>(options.engine);
      recovered.dedupe = std::make_unique<DedupeTable>(options.dedupe);
    } else {
      recovered = std::move(*r);
      journal_options.fs = PosixFileSystem();
      journal_options.data_dir = options.data_dir;
      journal_options.segment_bytes = 4 << 20;
    }
  }
  journal_ = std::make_unique<Journal>(std::move(recovered), journal_options);
  if (status_.ok()) status_ = journal_->Start();
  service_ = std::make_unique<Service>(journal_.get(), SystemClock::Default(),
                                       options.service);
  // CONFIG as in tallyd, without the read-only flag values (there are no
  // flags in-process).
  service_->RegisterRuntimeSettings(&runtime_config_);
  RegisterConfigCommands(&runtime_config_, service_->admin_commands());
  server_ = std::make_unique<Server>(service_.get(), options.server);
  if (status_.ok()) status_ = server_->Start();
}

InProcessServer::~InProcessServer() { Stop(); }

void InProcessServer::Stop() {
  if (stopped_) return;
  stopped_ = true;
  server_->Stop();
  journal_->Stop();
}

}  // namespace tally
