#include "server/config_commands.h"

#include <glog/logging.h>

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

namespace tally {
namespace {

using proto::AdminReply;

constexpr char kSyntax[] =
    "CONFIG GET pattern [pattern ...] | SET name value [name value ...] | "
    "RESETSTAT";

Result<AdminReply> ConfigGet(const RuntimeConfig& config,
                             const AdminCall& call) {
  AdminReply map = AdminReply::Map();
  std::vector<std::string> seen;
  for (size_t i = 2; i < call.args.size(); ++i) {
    for (auto& [name, value] : config.Get(call.args[i])) {
      if (std::find(seen.begin(), seen.end(), name) != seen.end()) continue;
      seen.push_back(name);
      map.Put(name, AdminReply::Text(std::move(value)));
    }
  }
  return map;
}

// Redis 7 semantics: all pairs apply or none does. Each value is applied in
// turn; on the first failure the ones already applied get their old value
// back (their setters accepted those values before, so the rollback cannot
// fail on validation).
Result<AdminReply> ConfigSet(const RuntimeConfig& config,
                             const AdminCall& call) {
  if (call.args.size() < 4 || call.args.size() % 2 != 0) {
    return Status::InvalidArgument(
        "wrong number of arguments for 'CONFIG SET'; syntax: " +
        std::string(kSyntax));
  }
  std::vector<std::pair<std::string, std::string>> applied;  // name, old
  for (size_t i = 2; i < call.args.size(); i += 2) {
    const std::string& name = call.args[i];
    for (size_t j = 2; j < i; j += 2) {
      if (call.args[j] == name) {
        return Status::InvalidArgument("'" + name + "' is set twice");
      }
    }
    std::string old;
    if (config.IsSettable(name)) {
      auto current = config.Get(name);
      if (!current.empty()) old = current.front().second;
    }
    Status s = config.Set(name, call.args[i + 1]);
    if (!s.ok()) {
      for (auto it = applied.rbegin(); it != applied.rend(); ++it) {
        Status undo = config.Set(it->first, it->second);
        LOG_IF(ERROR, !undo.ok()) << "CONFIG SET rollback of " << it->first
                                  << " failed: " << undo.ToString();
      }
      return s;
    }
    applied.emplace_back(name, std::move(old));
  }
  for (size_t i = 2; i < call.args.size(); i += 2) {
    LOG(INFO) << "CONFIG SET " << call.args[i] << " " << call.args[i + 1]
              << " (connection " << call.connection_id << ")";
  }
  return AdminReply::StatusWord("OK");
}

}  // namespace

void RegisterConfigCommands(const RuntimeConfig* config,
                            AdminCommands* commands) {
  commands->Register(
      {.name = "CONFIG",
       .arity = -2,
       .syntax = kSyntax,
       .summary = "Reads every setting (glob patterns); changes the ones "
                  "that may change at run time; resets the statistics.",
       .handler = [config](const AdminCall& call) -> Result<AdminReply> {
         const std::string sub = AdminUpper(call.args[1]);
         if (sub == "GET" && call.args.size() >= 3) {
           return ConfigGet(*config, call);
         }
         if (sub == "SET") return ConfigSet(*config, call);
         if (sub == "RESETSTAT" && call.args.size() == 2) {
           config->ResetStats();
           return AdminReply::StatusWord("OK");
         }
         return Status::InvalidArgument("unknown or malformed CONFIG " +
                                        call.args[1] +
                                        "; syntax: " + std::string(kSyntax));
       }});
}

}  // namespace tally
