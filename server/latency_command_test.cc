#include "server/latency_command.h"

#include <gtest/gtest.h>

namespace tally {
namespace {

using proto::AdminReply;

proto::Response Latency(const AdminCommands& commands,
                        std::vector<std::string> args) {
  return commands.Run(proto::AdminRequest{.args = std::move(args)}, 0);
}

TEST(LatencyCommandTest, HistogramIsCumulativeAndStopsWhereEveryCallIsIn) {
  CommandStats stats;
  AdminCommands commands;
  RegisterLatencyCommand(&stats, &commands);
  for (uint64_t us : {5, 20, 20, 400}) {
    stats.Started();
    stats.Record(proto::Op::kAdd, Code::kOk, us * 1000);
  }
  stats.Started();
  stats.Record(proto::Op::kQuery, Code::kOk, 30'000'000'000);  // 30 s
  proto::Response r = Latency(commands, {"latency", "histogram", "ADD"});
  ASSERT_EQ(r.code, Code::kOk) << r.message;
  AdminReply buckets = AdminReply::Map();
  buckets.Put("10", AdminReply::Integer(1))
      .Put("25", AdminReply::Integer(3))
      .Put("50", AdminReply::Integer(3))
      .Put("100", AdminReply::Integer(3))
      .Put("250", AdminReply::Integer(3))
      .Put("500", AdminReply::Integer(4));
  AdminReply want = AdminReply::Map();
  want.Put("add", AdminReply::Map()
                      .Put("calls", AdminReply::Integer(4))
                      .Put("histogram_usec", buckets));
  EXPECT_EQ(std::get<proto::AdminResult>(r.body).reply, want);

  // Every command by default; a call past the last bound shows as +inf.
  const AdminReply all = std::get<proto::AdminResult>(
                             Latency(commands, {"LATENCY", "HISTOGRAM"}).body)
                             .reply;
  ASSERT_EQ(all.elements.size(), 4u);
  EXPECT_EQ(all.elements[2].text, "query");
  const AdminReply& query = all.elements[3].elements[3];
  EXPECT_EQ(query.elements.back(), AdminReply::Integer(1));
  EXPECT_EQ(query.elements[query.elements.size() - 2].text, "+inf");
  EXPECT_EQ(Latency(commands, {"LATENCY", "DOCTOR"}).code,
            Code::kInvalidArgument);
}

}  // namespace
}  // namespace tally
