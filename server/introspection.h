// Introspection: the server-wide state behind CLIENT, SLOWLOG and MONITOR
// (docs/operations.md, "Admin commands"): the client registry, the slow log
// and the monitor hub. The Server owns one and hands it to every connection
// (ConnectionOptions::introspection); connections report to it, and the
// admin commands registered by RegisterAdminCommands read it.
//
// MONITOR itself is answered by the connection (it turns the connection
// into a stream, which a Service handler cannot do); its table entry exists
// for COMMAND DOCS and answers an error when run without a connection.
//
// Thread safety: every member is thread-safe; RegisterAdminCommands follows
// AdminCommands::Register's rule (before serving).

#ifndef TALLY_SERVER_INTROSPECTION_H_
#define TALLY_SERVER_INTROSPECTION_H_

#include <cstdint>
#include <memory>
#include <string>

#include "server/admin_commands.h"
#include "server/client_registry.h"
#include "server/monitor.h"
#include "server/runtime_config.h"
#include "server/slow_log.h"

namespace tally {

class Introspection : public std::enable_shared_from_this<Introspection> {
 public:
  explicit Introspection(SlowLogOptions slowlog = {}) : slow_log_(slowlog) {}
  Introspection(const Introspection&) = delete;
  Introspection& operator=(const Introspection&) = delete;

  ClientRegistry& clients() { return clients_; }
  SlowLog& slow_log() { return slow_log_; }
  MonitorHub& monitors() { return monitors_; }

  // Registers CLIENT, SLOWLOG and MONITOR. The handlers hold a weak
  // pointer: a Service that outlives its Server answers them with
  // UNAVAILABLE instead of touching freed memory. REQUIRES: owned by a
  // shared_ptr.
  void RegisterAdminCommands(AdminCommands* commands);
  // CONFIG SET slowlog_log_slower_than_us / slowlog_max_len (Redis'
  // slowlog-log-slower-than / slowlog-max-len). Same lifetime rule as the
  // admin commands; follows RuntimeConfig::Register's rule (before serving).
  void RegisterRuntimeSettings(RuntimeConfig* config);

 private:
  Result<proto::AdminReply> Client(const AdminCall& call);
  Result<proto::AdminReply> Slowlog(const AdminCall& call);

  ClientRegistry clients_;
  SlowLog slow_log_;
  MonitorHub monitors_;
};

}  // namespace tally

#endif  // TALLY_SERVER_INTROSPECTION_H_
