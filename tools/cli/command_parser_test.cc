#include "tools/cli/command_parser.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace tally::cli {
namespace {

using Args = std::vector<std::string>;

proto::Request Parsed(std::string_view line) {
  Result<Command> cmd = ParseLine(line);
  EXPECT_TRUE(cmd.ok()) << line << ": " << cmd.status().ToString();
  if (!cmd.ok()) return {};
  EXPECT_EQ(cmd->kind, CommandKind::kRequest);
  return cmd->request;
}

// The message after "ERR ", or "" when the line parsed.
std::string ErrorOf(std::string_view line) {
  Result<Command> cmd = ParseLine(line);
  if (cmd.ok()) return "";
  EXPECT_EQ(cmd.status().code(), Code::kInvalidArgument);
  return std::string(cmd.status().message());
}

proto::AddItem AddOf(std::string_view line) {
  proto::Request r = Parsed(line);
  auto* add = std::get_if<proto::AddRequest>(&r.body);
  EXPECT_NE(add, nullptr) << line;
  if (add == nullptr || add->items.size() != 1) return {};
  return add->items[0];
}

proto::QueryItem QueryOf(std::string_view line) {
  proto::Request r = Parsed(line);
  auto* q = std::get_if<proto::QueryRequest>(&r.body);
  EXPECT_NE(q, nullptr) << line;
  if (q == nullptr || q->items.size() != 1) return {};
  return q->items[0];
}

// ------------------------------------------------------------------ Tokenize

TEST(TokenizeTest, SplitsOnBlanks) {
  Result<Args> args = Tokenize("  ADD  k\tAMOUNT 5 ");
  ASSERT_TRUE(args.ok());
  EXPECT_EQ(*args, (Args{"ADD", "k", "AMOUNT", "5"}));
}

TEST(TokenizeTest, EmptyLineHasNoArguments) {
  Result<Args> args = Tokenize("   ");
  ASSERT_TRUE(args.ok());
  EXPECT_TRUE(args->empty());
}

TEST(TokenizeTest, DoubleQuotesKeepSpacesAndTakeEscapes) {
  Result<Args> args =
      Tokenize(R"(ADD "user 42" MEMBER "say \"hi\"\\ \n\x41" "")");
  ASSERT_TRUE(args.ok());
  EXPECT_EQ(*args, (Args{"ADD", "user 42", "MEMBER", "say \"hi\"\\ \nA", ""}));
}

TEST(TokenizeTest, SingleQuotesTakeOnlyEscapedQuote) {
  Result<Args> args = Tokenize(R"('it\'s a\n')");
  ASSERT_TRUE(args.ok());
  EXPECT_EQ(*args, (Args{"it's a\\n"}));
}

TEST(TokenizeTest, BinaryByteThroughHexEscape) {
  Result<Args> args = Tokenize(R"("a\x00b")");
  ASSERT_TRUE(args.ok());
  EXPECT_EQ((*args)[0], std::string("a\0b", 3));
}

TEST(TokenizeTest, UnbalancedQuotesIsAnError) {
  EXPECT_EQ(ErrorOf(R"(ADD "user 42)"), "unbalanced quotes");
  EXPECT_EQ(ErrorOf("ADD 'k"), "unbalanced quotes");
}

TEST(TokenizeTest, TextRightAfterClosingQuoteIsAnError) {
  EXPECT_EQ(ErrorOf(R"(ADD "a"b)"),
            "a closing quote must be followed by a space or the end of the "
            "line");
}

// ------------------------------------------------------------ every command

TEST(ParseCommandTest, Ping) {
  EXPECT_TRUE(std::holds_alternative<proto::PingRequest>(Parsed("PING").body));
  EXPECT_EQ(ErrorOf("PING x"), "wrong number of arguments for 'PING' command");
}

TEST(ParseCommandTest, Hello) {
  EXPECT_TRUE(
      std::holds_alternative<proto::HelloRequest>(Parsed("hello").body));
}

TEST(ParseCommandTest, CommandsAndOptionsAreCaseInsensitive) {
  EXPECT_TRUE(std::holds_alternative<proto::PingRequest>(Parsed("pInG").body));
  proto::AddItem item = AddOf("add k amount 5 Count 2");
  EXPECT_EQ(item.amount, 5);
  EXPECT_EQ(item.count, 2);
  EXPECT_EQ(QueryOf("query k window 5M").last_ms, 300'000);
}

TEST(ParseCommandTest, AddDefaults) {
  proto::AddItem item = AddOf("ADD user:42");
  EXPECT_EQ(item, (proto::AddItem{.key = "user:42"}));
}

TEST(ParseCommandTest, AddAllOptions) {
  proto::AddItem item = AddOf(
      R"(ADD "card 7" COUNT 3 AMOUNT -250 MEMBER "dev 1" TS 1700000000000 ID tx-9)");
  EXPECT_EQ(item.key, "card 7");
  EXPECT_EQ(item.count, 3);
  EXPECT_EQ(item.amount, -250);
  EXPECT_EQ(item.member, "dev 1");
  EXPECT_EQ(item.time_ms, 1'700'000'000'000);
  EXPECT_EQ(item.id, "tx-9");
}

TEST(ParseCommandTest, AddTimestampStarMeansNow) {
  EXPECT_EQ(AddOf("ADD k TS *").time_ms, 0);
}

TEST(ParseCommandTest, AddEmptyMemberIsAMember) {
  EXPECT_EQ(AddOf(R"(ADD k MEMBER "")").member, "");
}

TEST(ParseCommandTest, AddErrors) {
  EXPECT_EQ(ErrorOf("ADD"), "wrong number of arguments for 'ADD' command");
  EXPECT_EQ(ErrorOf("ADD k BOGUS 1"),
            "syntax error: unknown option 'BOGUS' for 'ADD' (expected COUNT, "
            "AMOUNT, MEMBER, TS or ID)");
  EXPECT_EQ(ErrorOf("ADD k COUNT"), "syntax error: COUNT needs a value");
  EXPECT_EQ(ErrorOf("ADD k COUNT 1 count 2"),
            "syntax error: COUNT given twice");
  EXPECT_EQ(ErrorOf("ADD k COUNT x"), "COUNT value 'x' is not an integer");
  EXPECT_EQ(ErrorOf("ADD k AMOUNT 1.5"),
            "AMOUNT value '1.5' is not an integer");
  EXPECT_EQ(ErrorOf("ADD k AMOUNT 99999999999999999999"),
            "AMOUNT value '99999999999999999999' is not an integer");
  EXPECT_EQ(ErrorOf("ADD k TS yesterday"),
            "TS value 'yesterday' is not an integer");
}

TEST(ParseCommandTest, QueryWindow) {
  proto::QueryItem item = QueryOf("QUERY user:42 WINDOW 5m");
  EXPECT_EQ(item, proto::QueryItem::Last("user:42", 300'000));
  EXPECT_EQ(QueryOf("QUERY k WINDOW 1h AT 1700000000000"),
            proto::QueryItem::Last("k", 3'600'000, 0, 1'700'000'000'000));
  EXPECT_EQ(QueryOf("QUERY k WINDOW 250").last_ms, 250);
}

TEST(ParseCommandTest, EveryDurationUnit) {
  EXPECT_EQ(QueryOf("QUERY k WINDOW 250ms").last_ms, 250);
  EXPECT_EQ(QueryOf("QUERY k WINDOW 60s").last_ms, 60'000);
  EXPECT_EQ(QueryOf("QUERY k WINDOW 5m").last_ms, 300'000);
  EXPECT_EQ(QueryOf("QUERY k WINDOW 1h").last_ms, 3'600'000);
  EXPECT_EQ(QueryOf("QUERY k WINDOW 7d").last_ms, 604'800'000);
  EXPECT_EQ(QueryOf("QUERY k WINDOW 1500").last_ms, 1500);
}

TEST(ParseCommandTest, QueryFromTo) {
  EXPECT_EQ(QueryOf("QUERY k FROM 1000 TO 2000"),
            proto::QueryItem::Between("k", 1000, 2000));
  EXPECT_EQ(QueryOf("QUERY k TO 2000 FROM 1000"),
            proto::QueryItem::Between("k", 1000, 2000));
}

TEST(ParseCommandTest, QueryErrors) {
  EXPECT_EQ(ErrorOf("QUERY k"),
            "wrong number of arguments for 'QUERY' command");
  EXPECT_EQ(ErrorOf("QUERY k WINDOW"),
            "wrong number of arguments for 'QUERY' command");
  EXPECT_EQ(ErrorOf("QUERY k WINDOW 5x"),
            "invalid WINDOW: duration '5x' has unknown unit 'x' (use ms, s, "
            "m, h or d)");
  EXPECT_EQ(ErrorOf("QUERY k WINDOW -5m"),
            "invalid WINDOW: duration '-5m' must start with digits, e.g. "
            "250ms, 60s, 5m, 1h, 7d");
  EXPECT_EQ(ErrorOf("QUERY k WINDOW 0"), "WINDOW must be greater than 0");
  EXPECT_EQ(ErrorOf("QUERY k WINDOW 5m FROM 1 TO 2"),
            "syntax error: QUERY takes WINDOW or FROM/TO, not both");
  EXPECT_EQ(ErrorOf("QUERY k FROM 1 TO 2 AT 3"),
            "syntax error: AT goes with WINDOW, not FROM/TO");
  EXPECT_EQ(ErrorOf("QUERY k FROM 1 FOO 2"),
            "syntax error: unknown option 'FOO' for 'QUERY' (expected "
            "WINDOW, AT, FROM or TO)");
  EXPECT_EQ(ErrorOf("QUERY k FROM 1 AT 2"),
            "syntax error: AT goes with WINDOW, not FROM/TO");
  EXPECT_EQ(ErrorOf("QUERY k FROM 1 FROM 2"), "syntax error: FROM given twice");
  EXPECT_EQ(ErrorOf("QUERY k TO 1 TO 2"), "syntax error: TO given twice");
  EXPECT_EQ(ErrorOf("QUERY k WINDOW 5m AT now"),
            "AT value 'now' is not an integer");
  EXPECT_EQ(ErrorOf("QUERY k FROM a TO 2"), "FROM value 'a' is not an integer");
}

TEST(ParseCommandTest, QueryOnlyFromIsIncomplete) {
  EXPECT_EQ(ErrorOf("QUERY k FROM 5 TO"), "syntax error: TO needs a value");
  EXPECT_EQ(ErrorOf("QUERY k WINDOW 5m AT"), "syntax error: AT needs a value");
  EXPECT_EQ(ErrorOf("QUERY k FROM 1 FROM"), "syntax error: FROM needs a value");
  EXPECT_EQ(ErrorOf("QUERY k AT 5 AT 6"), "syntax error: AT given twice");
  // Neither a window nor both bounds.
  EXPECT_EQ(ErrorOf("QUERY k FROM 5"),
            "syntax error: QUERY needs WINDOW dur or FROM ms TO ms");
  EXPECT_EQ(ErrorOf("QUERY k AT 5"),
            "syntax error: AT goes with WINDOW, not FROM/TO");
  EXPECT_EQ(ErrorOf("QUERY k TO 5"),
            "syntax error: QUERY needs WINDOW dur or FROM ms TO ms");
}

TEST(ParseCommandTest, Range) {
  proto::Request r = Parsed("RANGE k FROM 1000 TO 61000 STEP 10s");
  auto* range = std::get_if<proto::RangeRequest>(&r.body);
  ASSERT_NE(range, nullptr);
  EXPECT_EQ(
      *range,
      (proto::RangeRequest{
          .key = "k", .from_ms = 1000, .to_ms = 61000, .step_ms = 10'000}));
}

TEST(ParseCommandTest, RangeErrors) {
  EXPECT_EQ(ErrorOf("RANGE k FROM 1 TO 2"),
            "wrong number of arguments for 'RANGE' command");
  EXPECT_EQ(ErrorOf("RANGE k FROM 1 TO 2 STEP 0"),
            "STEP must be greater than 0");
  EXPECT_EQ(ErrorOf("RANGE k FROM 1 TO 2 STEP 1y"),
            "invalid STEP: duration '1y' has unknown unit 'y' (use ms, s, m, "
            "h or d)");
  EXPECT_EQ(ErrorOf("RANGE k FROM 1 FROM 2 STEP 1s"),
            "syntax error: FROM given twice");
  EXPECT_EQ(ErrorOf("RANGE k FROM 1 TO 2 WINDOW 1s"),
            "syntax error: unknown option 'WINDOW' for 'RANGE' (expected "
            "FROM, TO or STEP)");
  EXPECT_EQ(ErrorOf("RANGE k FROM x TO 2 STEP 1s"),
            "FROM value 'x' is not an integer");
}

TEST(ParseCommandTest, Inspect) {
  proto::Request r = Parsed(R"(INSPECT "a b")");
  auto* inspect = std::get_if<proto::InspectRequest>(&r.body);
  ASSERT_NE(inspect, nullptr);
  EXPECT_EQ(inspect->key, "a b");
  EXPECT_EQ(ErrorOf("INSPECT"),
            "wrong number of arguments for 'INSPECT' command");
  EXPECT_EQ(ErrorOf("INSPECT a b"),
            "wrong number of arguments for 'INSPECT' command");
}

TEST(ParseCommandTest, Scan) {
  proto::Request r = Parsed("SCAN 0");
  EXPECT_EQ(std::get<proto::ScanRequest>(r.body), proto::ScanRequest{});
  r = Parsed("scan 42 match user:* count 100");
  EXPECT_EQ(
      std::get<proto::ScanRequest>(r.body),
      (proto::ScanRequest{.cursor = 42, .pattern = "user:*", .count = 100}));
}

TEST(ParseCommandTest, ScanErrors) {
  EXPECT_EQ(ErrorOf("SCAN"), "wrong number of arguments for 'SCAN' command");
  EXPECT_EQ(ErrorOf("SCAN -1"),
            "cursor value '-1' is not an integer in [0, "
            "18446744073709551615]");
  EXPECT_EQ(ErrorOf("SCAN 0 COUNT 5000000000"),
            "COUNT value '5000000000' is not an integer in [0, 4294967295]");
  EXPECT_EQ(ErrorOf("SCAN 0 TYPE x"),
            "syntax error: unknown option 'TYPE' for 'SCAN' (expected MATCH "
            "or COUNT)");
}

TEST(ParseCommandTest, Del) {
  proto::Request r = Parsed(R"(DEL a "b c" d)");
  EXPECT_EQ(std::get<proto::DeleteRequest>(r.body).keys,
            (Args{"a", "b c", "d"}));
  EXPECT_EQ(ErrorOf("DEL"), "wrong number of arguments for 'DEL' command");
}

TEST(ParseCommandTest, Info) {
  EXPECT_EQ(std::get<proto::InfoRequest>(Parsed("INFO").body).section, "");
  EXPECT_EQ(std::get<proto::InfoRequest>(Parsed("info Memory").body).section,
            "memory");
  EXPECT_EQ(ErrorOf("INFO a b"),
            "wrong number of arguments for 'INFO' command");
}

TEST(ParseCommandTest, LocalCommands) {
  Result<Command> help = ParseLine("help query");
  ASSERT_TRUE(help.ok());
  EXPECT_EQ(help->kind, CommandKind::kHelp);
  EXPECT_EQ(help->topic, "QUERY");
  EXPECT_EQ(ParseLine("quit")->kind, CommandKind::kQuit);
  EXPECT_EQ(ParseLine("EXIT")->kind, CommandKind::kQuit);
  EXPECT_EQ(ParseLine("clear")->kind, CommandKind::kClear);
}

TEST(ParseCommandTest, OtherWordsAreAdminCommandsSentAsTyped) {
  Result<Command> cmd = ParseLine("slowlog get \"10\"");
  ASSERT_TRUE(cmd.ok());
  EXPECT_EQ(cmd->kind, CommandKind::kRequest);
  EXPECT_EQ(cmd->name, "SLOWLOG");
  EXPECT_EQ(std::get<proto::AdminRequest>(cmd->request.body).args,
            (std::vector<std::string>{"slowlog", "get", "10"}));
  // Unknown to the server too: it refuses it (the CLI test shows how).
  EXPECT_EQ(std::get<proto::AdminRequest>(ParseLine("FLY")->request.body).args,
            std::vector<std::string>{"FLY"});
}

TEST(ParseCommandTest, EmptyCommand) {
  EXPECT_EQ(ErrorOf(""), "empty command");
}

TEST(ParseCommandTest, ArgumentsFromTheShellNeedNoQuoting) {
  Result<Command> cmd = ParseCommand({"ADD", "a b", "MEMBER", "x\"y"});
  ASSERT_TRUE(cmd.ok());
  const auto& item = std::get<proto::AddRequest>(cmd->request.body).items[0];
  EXPECT_EQ(item.key, "a b");
  EXPECT_EQ(item.member, "x\"y");
}

TEST(CommandDocsTest, SortedAndComplete) {
  std::vector<std::string> names;
  for (const CommandDoc& doc : CommandDocs()) names.emplace_back(doc.name);
  EXPECT_TRUE(std::is_sorted(names.begin(), names.end()));
  for (const char* name : {"PING", "ADD", "QUERY", "RANGE", "INSPECT", "SCAN",
                           "DEL", "INFO", "HELP", "QUIT"}) {
    EXPECT_NE(std::find(names.begin(), names.end(), name), names.end()) << name;
  }
}

}  // namespace
}  // namespace tally::cli
