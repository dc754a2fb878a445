#include "server/admin_commands.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace tally {
namespace {

using proto::AdminReply;

proto::Response RunArgs(const AdminCommands& commands,
                        std::vector<std::string> args,
                        uint64_t connection = 0) {
  return commands.Run(proto::AdminRequest{.args = std::move(args)}, connection);
}

const AdminReply& ReplyOf(const proto::Response& r) {
  return std::get<proto::AdminResult>(r.body).reply;
}

TEST(AdminCommandsTest, RunsARegisteredCommandCaseInsensitively) {
  AdminCommands commands;
  uint64_t seen_connection = 0;
  commands.Register(
      {.name = "echo",
       .arity = -2,
       .syntax = "ECHO word [word ...]",
       .summary = "test",
       .handler = [&](const AdminCall& call) -> Result<AdminReply> {
         seen_connection = call.connection_id;
         AdminReply out = AdminReply::Array();
         for (size_t i = 1; i < call.args.size(); ++i) {
           out.elements.push_back(AdminReply::Text(call.args[i]));
         }
         return out;
       }});
  proto::Response r = RunArgs(commands, {"eChO", "a", "b"}, 42);
  ASSERT_EQ(r.code, Code::kOk) << r.message;
  EXPECT_EQ(ReplyOf(r),
            AdminReply::Array({AdminReply::Text("a"), AdminReply::Text("b")}));
  EXPECT_EQ(seen_connection, 42u);
}

TEST(AdminCommandsTest, ChecksArityAndNamesTheSyntax) {
  AdminCommands commands;
  commands.Register({.name = "ONE",
                     .arity = 2,
                     .syntax = "ONE arg",
                     .summary = "",
                     .handler = [](const AdminCall&) -> Result<AdminReply> {
                       return AdminReply::StatusWord("OK");
                     }});
  EXPECT_EQ(RunArgs(commands, {"ONE", "x"}).code, Code::kOk);
  proto::Response few = RunArgs(commands, {"ONE"});
  EXPECT_EQ(few.code, Code::kInvalidArgument);
  EXPECT_EQ(few.message,
            "wrong number of arguments for 'ONE'; syntax: ONE arg");
  EXPECT_EQ(RunArgs(commands, {"ONE", "x", "y"}).code, Code::kInvalidArgument);
}

TEST(AdminCommandsTest, UnknownAndEmptyCommandsAreInvalidArguments) {
  AdminCommands commands;
  proto::Response unknown = RunArgs(commands, {"FLY"});
  EXPECT_EQ(unknown.code, Code::kInvalidArgument);
  EXPECT_EQ(unknown.message, "unknown command 'FLY' (try COMMAND LIST)");
  EXPECT_EQ(RunArgs(commands, {}).code, Code::kInvalidArgument);
}

TEST(AdminCommandsTest, HandlerErrorsBecomeTheResponse) {
  AdminCommands commands;
  commands.Register(
      {.name = "NUM",
       .arity = 2,
       .syntax = "NUM n",
       .summary = "",
       .handler = [](const AdminCall& call) -> Result<AdminReply> {
         Result<int64_t> n = AdminIntArg(call.args[1], "n");
         if (!n.ok()) return n.status();
         return AdminReply::Integer(*n * 2);
       }});
  EXPECT_EQ(ReplyOf(RunArgs(commands, {"NUM", "-21"})),
            AdminReply::Integer(-42));
  proto::Response bad = RunArgs(commands, {"NUM", "2x"});
  EXPECT_EQ(bad.code, Code::kInvalidArgument);
  EXPECT_EQ(bad.message, "n must be an integer, not '2x'");
  EXPECT_EQ(RunArgs(commands, {"NUM", ""}).code, Code::kInvalidArgument);
}

TEST(AdminCommandsTest, CommandListsCountsAndDocumentsTheTable) {
  AdminCommands commands;
  commands.Register({.name = "PONG",
                     .arity = 1,
                     .syntax = "PONG",
                     .summary = "answers",
                     .handler = [](const AdminCall&) -> Result<AdminReply> {
                       return AdminReply::Nil();
                     }});
  EXPECT_EQ(ReplyOf(RunArgs(commands, {"command", "count"})),
            AdminReply::Integer(2));
  EXPECT_EQ(ReplyOf(RunArgs(commands, {"COMMAND", "LIST"})),
            AdminReply::Array(
                {AdminReply::Text("COMMAND"), AdminReply::Text("PONG")}));
  AdminReply want = AdminReply::Map();
  want.Put("PONG", AdminReply::Map()
                       .Put("summary", AdminReply::Text("answers"))
                       .Put("syntax", AdminReply::Text("PONG"))
                       .Put("arity", AdminReply::Integer(1)));
  EXPECT_EQ(ReplyOf(RunArgs(commands, {"COMMAND", "DOCS", "pong", "nosuch"})),
            want);
  EXPECT_EQ(RunArgs(commands, {"COMMAND", "FLY"}).code, Code::kInvalidArgument);
}

}  // namespace
}  // namespace tally
