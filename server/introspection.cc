#include "server/introspection.h"

#include <functional>
#include <limits>
#include <memory>
#include <utility>

namespace tally {

namespace {

using proto::AdminReply;

constexpr std::string_view kClientSyntax =
    "CLIENT LIST | ID | GETNAME | SETNAME name | KILL ID id | KILL ADDR "
    "ip:port";
constexpr std::string_view kSlowlogSyntax = "SLOWLOG GET [count] | LEN | RESET";

Status Syntax(std::string_view syntax) {
  return Status::InvalidArgument("syntax: " + std::string(syntax));
}

// A handler that runs `member` on the Introspection if it still exists.
AdminHandler Bind(
    std::weak_ptr<Introspection> weak,
    Result<AdminReply> (Introspection::*member)(const AdminCall&)) {
  return [weak = std::move(weak),
          member](const AdminCall& call) -> Result<AdminReply> {
    std::shared_ptr<Introspection> self = weak.lock();
    if (!self) return Status(Code::kUnavailable, "the server has stopped");
    return ((*self).*member)(call);
  };
}

}  // namespace

void Introspection::RegisterAdminCommands(AdminCommands* commands) {
  commands->Register(
      {.name = "CLIENT",
       .arity = -2,
       .syntax = std::string(kClientSyntax),
       .summary = "Lists, names and kills client connections.",
       .handler = Bind(weak_from_this(), &Introspection::Client)});
  commands->Register(
      {.name = "SLOWLOG",
       .arity = -2,
       .syntax = std::string(kSlowlogSyntax),
       .summary = "The requests slower than --slowlog_log_slower_than_us, "
                  "newest first.",
       .handler = Bind(weak_from_this(), &Introspection::Slowlog)});
  commands->Register(
      {.name = "MONITOR",
       .arity = -1,
       .syntax = "MONITOR [SAMPLE ratio] [MATCH glob]",
       .summary = "Turns this connection into a stream of every other "
                  "connection's requests (sampled, filtered by key glob).",
       .handler = [](const AdminCall&) -> Result<AdminReply> {
         // Connections answer MONITOR themselves; only a caller without a
         // connection (a test, a tool driving the Service) gets here.
         return Status::InvalidArgument(
             "MONITOR needs a client connection to stream to");
       }});
}

void Introspection::RegisterRuntimeSettings(RuntimeConfig* config) {
  std::weak_ptr<Introspection> weak = weak_from_this();
  // Reads and writes the slow log's atomics if the server still exists.
  auto setting = [config, weak](std::string name, std::string help,
                                int64_t (SlowLog::*get)() const,
                                void (SlowLog::*set)(int64_t), int64_t min,
                                int64_t max) {
    config->Register(
        name, std::move(help),
        [weak, get]() -> std::string {
          std::shared_ptr<Introspection> self = weak.lock();
          return self ? std::to_string((self->slow_log_.*get)()) : "";
        },
        [weak, set, name, min, max](std::string_view value) -> Status {
          Result<int64_t> n = AdminIntArg(value, name);
          if (!n.ok() || *n < min || *n > max) {
            return Status::InvalidArgument(
                name + " must be an integer in " + std::to_string(min) + ".." +
                std::to_string(max) + ", not '" + std::string(value) + "'");
          }
          std::shared_ptr<Introspection> self = weak.lock();
          if (!self)
            return Status(Code::kUnavailable, "the server has stopped");
          (self->slow_log_.*set)(*n);
          return Status::Ok();
        });
  };
  setting("slowlog_log_slower_than_us",
          "SLOWLOG keeps requests at least this slow, in µs (negative: off, "
          "0: all)",
          &SlowLog::log_slower_than_us, &SlowLog::set_log_slower_than_us,
          std::numeric_limits<int64_t>::min(),
          std::numeric_limits<int64_t>::max());
  setting("slowlog_max_len", "entries SLOWLOG keeps (0..1000000)",
          &SlowLog::max_len, &SlowLog::set_max_len, 0, 1'000'000);
}

Result<AdminReply> Introspection::Client(const AdminCall& call) {
  const std::string sub = AdminUpper(call.args[1]);
  const size_t n = call.args.size();
  if (sub == "LIST" && n == 2) return AdminReply::Text(clients_.List());
  if (sub == "ID" && n == 2) {
    return AdminReply::Integer(static_cast<int64_t>(call.connection_id));
  }
  if ((sub == "GETNAME" && n == 2) || (sub == "SETNAME" && n == 3)) {
    std::shared_ptr<ClientInfo> me = clients_.Find(call.connection_id);
    if (!me) {
      return Status::InvalidArgument("CLIENT " + sub +
                                     " needs a client connection");
    }
    if (sub == "GETNAME") {
      std::string name = me->name();
      return name.empty() ? AdminReply::Nil() : AdminReply::Text(name);
    }
    if (Status s = me->SetName(call.args[2]); !s.ok()) return s;
    return AdminReply::StatusWord("OK");
  }
  if (sub == "KILL" && n == 4) {
    const std::string filter = AdminUpper(call.args[2]);
    if (filter == "ID") {
      Result<int64_t> id = AdminIntArg(call.args[3], "client id");
      if (!id.ok()) return id.status();
      if (*id <= 0) return Status::InvalidArgument("client id must be >= 1");
      return AdminReply::Integer(static_cast<int64_t>(
          clients_.KillId(static_cast<uint64_t>(*id), call.connection_id)));
    }
    if (filter == "ADDR") {
      return AdminReply::Integer(static_cast<int64_t>(
          clients_.KillAddr(call.args[3], call.connection_id)));
    }
  }
  return Syntax(kClientSyntax);
}

Result<AdminReply> Introspection::Slowlog(const AdminCall& call) {
  const std::string sub = AdminUpper(call.args[1]);
  const size_t n = call.args.size();
  if (sub == "LEN" && n == 2) {
    return AdminReply::Integer(static_cast<int64_t>(slow_log_.Len()));
  }
  if (sub == "RESET" && n == 2) {
    slow_log_.Reset();
    return AdminReply::StatusWord("OK");
  }
  if (sub == "GET" && n <= 3) {
    int64_t count = 10;  // Redis' default
    if (n == 3) {
      Result<int64_t> parsed = AdminIntArg(call.args[2], "count");
      if (!parsed.ok()) return parsed.status();
      if (*parsed < -1) {
        return Status::InvalidArgument("count must be >= -1 (-1: all)");
      }
      count = *parsed;
    }
    // Redis' shape: per entry [id, unix time, µs, [args...], addr, name].
    AdminReply out = AdminReply::Array();
    for (const SlowLogEntry& e : slow_log_.Get(count)) {
      AdminReply args = AdminReply::Array();
      for (const std::string& a : e.args) {
        args.elements.push_back(AdminReply::Text(a));
      }
      out.elements.push_back(AdminReply::Array(
          {AdminReply::Integer(static_cast<int64_t>(e.id)),
           AdminReply::Integer(e.unix_time_s),
           AdminReply::Integer(e.duration_us), std::move(args),
           AdminReply::Text(e.client_addr), AdminReply::Text(e.client_name)}));
    }
    return out;
  }
  return Syntax(kSlowlogSyntax);
}

}  // namespace tally
