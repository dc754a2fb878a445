#include "server/latency_command.h"

#include <string>

namespace tally {
namespace {

using proto::AdminReply;

// Redis 7 replies, per command, "calls" and "histogram_usec": cumulative
// counts at bucket upper bounds in microseconds. Its bounds are powers of
// two; ours are the Prometheus bounds (10 us .. 10 s, 1-2.5-5 steps), which
// CommandStats counts exactly, so the figures equal /metrics'
// tally_command_duration_seconds buckets. Buckets past the one holding every
// call are left out, as Redis does.
AdminReply Histogram(const CommandSnapshot& c) {
  AdminReply buckets = AdminReply::Map();
  for (size_t i = 0; i < kPromBoundsNs.size(); ++i) {
    const uint64_t cumulative = c.latency.CumulativeCount(i);
    buckets.Put(std::to_string(kPromBoundsNs[i] / 1000),
                AdminReply::Integer(static_cast<int64_t>(cumulative)));
    if (cumulative == c.latency.count()) break;
  }
  if (c.latency.CumulativeCount(kPromBoundsNs.size() - 1) < c.latency.count()) {
    buckets.Put("+inf",
                AdminReply::Integer(static_cast<int64_t>(c.latency.count())));
  }
  return AdminReply::Map()
      .Put("calls", AdminReply::Integer(static_cast<int64_t>(c.calls)))
      .Put("histogram_usec", std::move(buckets));
}

}  // namespace

void RegisterLatencyCommand(const CommandStats* stats,
                            AdminCommands* commands) {
  commands->Register(
      {.name = "LATENCY",
       .arity = -2,
       .syntax = "LATENCY HISTOGRAM [command ...]",
       .summary = "Per-command latency (frame read to reply queued): calls "
                  "and cumulative counts at bucket bounds in microseconds. "
                  "Commands are protocol operations: add, query, "
                  "add_and_query, range, inspect, scan, delete, info, "
                  "admin, ...",
       .handler = [stats](const AdminCall& call) -> Result<AdminReply> {
         if (AdminUpper(call.args[1]) != "HISTOGRAM") {
           return Status::InvalidArgument(
               "unknown LATENCY subcommand '" + call.args[1] +
               "'; this server has LATENCY HISTOGRAM [command ...]");
         }
         const CommandStatsSnapshot snapshot = stats->Snapshot();
         AdminReply out = AdminReply::Map();
         for (const CommandSnapshot& c : snapshot.commands) {
           const std::string name(proto::OpName(c.op));
           bool wanted = call.args.size() == 2;
           for (size_t i = 2; i < call.args.size(); ++i) {
             std::string arg = call.args[i];
             for (char& ch : arg) {
               ch = static_cast<char>(
                   std::tolower(static_cast<unsigned char>(ch)));
             }
             wanted = wanted || arg == name;
           }
           if (wanted) out.Put(name, Histogram(c));
         }
         return out;
       }});
}

}  // namespace tally
