#include "server/keyspace_commands.h"

#include <cstdio>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace tally {
namespace {

using proto::AdminReply;

std::string Fixed2(double value) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.2f", value);
  return buf;
}

Result<AdminReply> HotKeysCommand(const KeyspaceCommandsContext& c,
                                  const AdminCall& call) {
  int64_t count = 10;
  if (call.args.size() == 3 && AdminUpper(call.args[1]) == "COUNT") {
    Result<int64_t> n = AdminIntArg(call.args[2], "COUNT");
    if (!n.ok()) return n.status();
    if (*n < 1 || *n > kMaxHotKeysCount) {
      return Status::InvalidArgument("COUNT must be in [1, " +
                                     std::to_string(kMaxHotKeysCount) + "]");
    }
    count = *n;
  } else if (call.args.size() != 1) {
    return Status::InvalidArgument("syntax: HOTKEYS [COUNT n]");
  }
  const HotKeysOptions& o = c.hot_keys->options();
  AdminReply keys = AdminReply::Array();
  for (const HotKey& k :
       c.hot_keys->Top(static_cast<size_t>(count), c.now_ms())) {
    keys.elements.push_back(
        AdminReply::Map()
            .Put("key", AdminReply::Text(k.key))
            .Put("adds_per_sec", AdminReply::Text(Fixed2(k.adds_per_sec)))
            .Put("error_per_sec", AdminReply::Text(Fixed2(k.error_per_sec))));
  }
  // The sampling and window travel with the figures: they are estimates,
  // and an operator reading them needs to know how rough.
  return AdminReply::Map()
      .Put("sample_every", AdminReply::Integer(o.sample_every))
      .Put("window_seconds", AdminReply::Integer(o.window_ms / 1000))
      .Put("note",
           AdminReply::Text(
               o.sample_every == 0
                   ? "hot-key tracking is off (--hotkeys_sample_every=0)"
                   : "estimated adds/s, decayed over about the window, "
                     "from 1 in sample_every adds"))
      .Put("keys", std::move(keys));
}

Result<AdminReply> MemoryCommand(const KeyspaceCommandsContext& c,
                                 const AdminCall& call) {
  const std::string sub = AdminUpper(call.args[1]);
  if (sub == "USAGE" && call.args.size() == 3) {
    Result<KeyInfo> info = c.engine->Inspect(call.args[2]);
    // Redis answers nil for a key that does not exist.
    if (!info.ok()) {
      if (info.status().code() == Code::kNotFound) return AdminReply::Nil();
      return info.status();
    }
    return AdminReply::Integer(info->bytes);
  }
  if (sub == "STATS" && call.args.size() == 2) {
    // The figures of INFO memory, as a map (Redis' MEMORY STATS shape).
    const EngineStats s = c.engine->Stats();
    const DedupeStats d =
        c.dedupe != nullptr ? c.dedupe->Stats() : DedupeStats{};
    const int64_t per_key =
        s.keys == 0 ? 0 : s.bytes / static_cast<int64_t>(s.keys);
    return AdminReply::Map()
        .Put("used_bytes", AdminReply::Integer(s.bytes + d.bytes))
        .Put("engine_bytes", AdminReply::Integer(s.bytes))
        .Put("table_bytes", AdminReply::Integer(s.table_bytes))
        .Put("dedupe_bytes", AdminReply::Integer(d.bytes))
        .Put("keys.count", AdminReply::Integer(static_cast<int64_t>(s.keys)))
        .Put("buckets.count",
             AdminReply::Integer(static_cast<int64_t>(s.buckets)))
        .Put("keys.bytes-per-key", AdminReply::Integer(per_key))
        .Put("dedupe.entries",
             AdminReply::Integer(static_cast<int64_t>(d.entries)));
  }
  return Status::InvalidArgument("syntax: MEMORY USAGE key | MEMORY STATS");
}

}  // namespace

void RegisterKeyspaceCommands(AdminCommands* commands,
                              KeyspaceCommandsContext context) {
  auto shared =
      std::make_shared<const KeyspaceCommandsContext>(std::move(context));
  commands->Register({.name = "HOTKEYS",
                      .arity = -1,
                      .syntax = "HOTKEYS [COUNT n]",
                      .summary =
                          "The keys with the highest recent add rate (sampled "
                          "estimates, highest first; n defaults to 10).",
                      .handler = [shared](const AdminCall& call) {
                        return HotKeysCommand(*shared, call);
                      }});
  commands->Register(
      {.name = "MEMORY",
       .arity = -2,
       .syntax = "MEMORY USAGE key | MEMORY STATS",
       .summary = "Bytes held by one key (nil if absent), or the engine's "
                  "and dedupe table's byte figures.",
       .handler = [shared](const AdminCall& call) {
         return MemoryCommand(*shared, call);
       }});
}

}  // namespace tally
