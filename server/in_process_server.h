// InProcessServer: a whole tallyd (journal, service, server) inside one
// process, for tests and tools that need a real server on loopback. With
// data_dir set it recovers from and writes a real WAL there; without, state
// is memory-only (like --unsafe_no_wal).

#ifndef TALLY_SERVER_IN_PROCESS_SERVER_H_
#define TALLY_SERVER_IN_PROCESS_SERVER_H_

#include <memory>
#include <string>

#include "protocol/result.h"
#include "server/runtime_config.h"
#include "server/server.h"
#include "server/service.h"
#include "storage/journal.h"

namespace tally {

struct InProcessServerOptions {
  ServerOptions server;  // port 0 picks a free one
  ServiceOptions service;
  EngineOptions engine;
  DedupeOptions dedupe;
  std::string data_dir;  // empty: memory only
  Durability durability;
};

class InProcessServer {
 public:
  // Recovers (when data_dir is set) and starts; check status().
  explicit InProcessServer(InProcessServerOptions options);
  ~InProcessServer();

  const Status& status() const { return status_; }
  uint16_t port() const { return server_ ? server_->port() : 0; }
  Engine& engine() { return *journal_->engine(); }
  Journal& journal() { return *journal_; }
  Service& service() { return *service_; }
  // Stops the server, then the journal (final sync and snapshot).
  void Stop();

 private:
  Status status_;
  RuntimeConfig runtime_config_;  // outlives service_
  std::unique_ptr<Journal> journal_;
  std::unique_ptr<Service> service_;
  std::unique_ptr<Server> server_;
  bool stopped_ = false;
};

}  // namespace tally

#endif  // TALLY_SERVER_IN_PROCESS_SERVER_H_
