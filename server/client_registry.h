// ClientRegistry: the server's connections as CLIENT LIST shows them
// (docs/operations.md, "CLIENT"). Each connection registers one ClientInfo
// when it starts and removes it when it closes; ids are unique and grow
// from 1, like Redis client ids.
//
// Cost on the request path: the connection updates its ClientInfo with
// relaxed atomic stores (last command, in-flight count, buffered bytes);
// the registry's mutex is taken only to add or remove a connection and by
// the admin commands. The name, user and last admin command are behind the
// ClientInfo's own mutex: they change rarely (CLIENT SETNAME, AUTH, admin
// commands).
//
// Killing: each entry carries the connection's kill function, which must be
// thread-safe (the connection posts the close to its own strand). Kill
// functions run outside the registry's mutex.
//
// Thread safety: every method may be called from any thread.

#ifndef TALLY_SERVER_CLIENT_REGISTRY_H_
#define TALLY_SERVER_CLIENT_REGISTRY_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "protocol/messages.h"
#include "protocol/result.h"
#include "storage/boot_clock.h"

namespace tally {

class ClientInfo {
 public:
  using BootTime = BootClock::time_point;

  ClientInfo(uint64_t id, std::string addr, std::string laddr,
             BootTime created);

  uint64_t id() const { return id_; }
  const std::string& addr() const { return addr_; }
  const std::string& laddr() const { return laddr_; }

  // The connection's thread, per request.
  void NoteRequest(proto::Op op, BootTime now) {
    last_op_.store(static_cast<uint8_t>(op), std::memory_order_relaxed);
    last_command_ns_.store(Ns(now), std::memory_order_relaxed);
  }
  void NoteAdminCommand(std::string_view name);  // cmd= of an admin request
  void SetLoad(uint64_t in_flight, uint64_t output_bytes) {
    in_flight_.store(in_flight, std::memory_order_relaxed);
    output_bytes_.store(output_bytes, std::memory_order_relaxed);
  }
  uint64_t output_bytes() const {
    return output_bytes_.load(std::memory_order_relaxed);
  }
  void set_monitor() { monitor_.store(true, std::memory_order_relaxed); }
  bool monitor() const { return monitor_.load(std::memory_order_relaxed); }

  // CLIENT SETNAME: printable ASCII without spaces, at most kMaxNameBytes;
  // "" clears it. INVALID_ARGUMENT otherwise.
  static constexpr size_t kMaxNameBytes = 128;
  Status SetName(std::string_view name);
  std::string name() const;
  void set_user(std::string user);  // the token id after AUTH
  std::string user() const;

  // One CLIENT LIST line (no newline): id= addr= laddr= name= age= idle=
  // flags= cmd= inflight= obuf= user=.
  std::string Line(BootTime now) const;

 private:
  static int64_t Ns(BootTime t) {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               t.time_since_epoch())
        .count();
  }

  const uint64_t id_;
  const std::string addr_;
  const std::string laddr_;
  const int64_t created_ns_;
  std::atomic<int64_t> last_command_ns_;
  std::atomic<uint8_t> last_op_{0};
  std::atomic<uint64_t> in_flight_{0};
  std::atomic<uint64_t> output_bytes_{0};
  std::atomic<bool> monitor_{false};
  mutable std::mutex mu_;
  std::string name_;       // guarded by mu_
  std::string user_;       // guarded by mu_
  std::string admin_cmd_;  // guarded by mu_; lower-case
};

class ClientRegistry {
 public:
  using BootTime = ClientInfo::BootTime;
  // Closes the connection. `after_reply`: once its pending replies are
  // written (a connection killing itself gets its answer first); else at
  // once, dropping them.
  using KillFn = std::function<void(bool after_reply)>;

  ClientRegistry() = default;
  ClientRegistry(const ClientRegistry&) = delete;
  ClientRegistry& operator=(const ClientRegistry&) = delete;

  // A new client with the next id.
  std::shared_ptr<ClientInfo> Add(std::string addr, std::string laddr,
                                  KillFn kill, BootTime now = BootClock::now());
  // Idempotent.
  void Remove(uint64_t id);
  // Null when no such client.
  std::shared_ptr<ClientInfo> Find(uint64_t id) const;
  size_t size() const;

  // CLIENT LIST: one line per client, by id, each ending in '\n'.
  std::string List(BootTime now = BootClock::now()) const;

  // CLIENT KILL ID / ADDR: kills the matching clients (the caller's own
  // connection after its reply) and returns how many.
  size_t KillId(uint64_t id, uint64_t caller);
  size_t KillAddr(std::string_view addr, uint64_t caller);

 private:
  struct Entry {
    std::shared_ptr<ClientInfo> info;
    KillFn kill;
  };
  size_t KillMatching(const std::function<bool(const ClientInfo&)>& match,
                      uint64_t caller);

  std::atomic<uint64_t> next_id_{1};
  mutable std::mutex mu_;
  std::map<uint64_t, Entry> clients_;  // guarded by mu_
};

// "ip:port", "[v6]:port" for an IPv6 address, as Redis prints addresses.
std::string FormatClientAddr(std::string_view ip, uint16_t port);

}  // namespace tally

#endif  // TALLY_SERVER_CLIENT_REGISTRY_H_
