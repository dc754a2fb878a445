// CommandParser: one line an operator typed -> arguments -> proto::Request.
// Pure (no I/O, no clock), so every command and every syntax error is unit
// tested without a server.
//
//   Result<Command> cmd = ParseLine("ADD \"user 42\" AMOUNT 500 TS
//   1700000000000"); if (cmd.ok()) client.Call(cmd->request); else print
//   "(error) ERR " + cmd.status().message();
//
// Grammar (commands and option names are case-insensitive; durations are
// "250ms 60s 5m 1h 7d" or plain milliseconds; times are Unix ms):
//   PING | HELLO
//   ADD key [COUNT n] [AMOUNT v] [MEMBER m] [TS ms|*] [ID id]
//   QUERY key WINDOW dur [AT ms]  |  QUERY key FROM ms TO ms
//   RANGE key FROM ms TO ms STEP dur
//   INSPECT key | SCAN cursor [MATCH glob] [COUNT n] | DEL key [key ...]
//   INFO [section]
//   any other word: an admin command (ADMIN op), sent as typed, e.g.
//   SLOWLOG GET 10, CONFIG GET max_*, COMMAND LIST; the server knows them
//   HELP [command] | QUIT | EXIT | CLEAR   (handled by the CLI, not sent)
//
// Errors: every failure is INVALID_ARGUMENT whose message is what follows
// redis-cli's "ERR ", e.g. "wrong number of arguments for 'INSPECT'
// command". (An unknown command is the server's to refuse.) Range checks the
// server makes (key length, COUNT >= 1, time bounds) are left to the server so
// the two never disagree.

#ifndef TALLY_TOOLS_CLI_COMMAND_PARSER_H_
#define TALLY_TOOLS_CLI_COMMAND_PARSER_H_

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/messages.h"
#include "protocol/result.h"

namespace tally::cli {

// Splits a line into arguments like redis-cli: blanks separate; "..." takes
// the escapes \" \\ \n \r \t \a \b and \xHH; '...' takes only \'. A closing
// quote must be followed by a blank or the end of the line.
Result<std::vector<std::string>> Tokenize(std::string_view line);

enum class CommandKind : uint8_t {
  kRequest,  // send `request` to the server
  kHelp,     // print help for `topic` ("" = all commands)
  kQuit,
  kClear,
};

struct Command {
  CommandKind kind = CommandKind::kRequest;
  std::string name;  // upper-case, e.g. "QUERY"
  proto::Request request;
  std::string topic;  // kHelp only
};

// REQUIRES: nothing; an empty `args` is an error ("empty command").
Result<Command> ParseCommand(const std::vector<std::string>& args);

// Tokenize + ParseCommand.
Result<Command> ParseLine(std::string_view line);

// One entry per command, for HELP and tab completion.
struct CommandDoc {
  std::string_view name;
  std::string_view args;
  std::string_view summary;
};
std::span<const CommandDoc> CommandDocs();

}  // namespace tally::cli

#endif  // TALLY_TOOLS_CLI_COMMAND_PARSER_H_
