// AdminCommands: the operator commands carried by the ADMIN operation
// (docs/protocol.md, "Admin commands"), e.g. SLOWLOG GET 10 or CONFIG GET
// max_*. A table of name -> handler, like Redis' command table: each part of
// the server registers its own commands before serving (the Service its
// keyspace and COMMAND commands, the server its CLIENT commands, tallyd's main
// the CONFIG commands, which read flags), so no part needs to know the others.
//
// Names match case-insensitively. Arity follows Redis: N means exactly N
// words, -N at least N, the name included. A subcommand (the second word of
// "SLOWLOG GET") is the handler's business.
//
// Thread safety: Register is not thread-safe and must finish before the
// first Run; Run may then be called from many threads at once (handlers must
// be thread-safe).

#ifndef TALLY_SERVER_ADMIN_COMMANDS_H_
#define TALLY_SERVER_ADMIN_COMMANDS_H_

#include <cstdint>
#include <functional>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/messages.h"
#include "protocol/result.h"

namespace tally {

// One run of a command.
struct AdminCall {
  // args[0] is the command name as sent; the rest its arguments.
  std::span<const std::string> args;
  // The connection running it (server/connection.h); 0 when there is none
  // (tests, tools driving the Service directly).
  uint64_t connection_id = 0;
};

using AdminHandler =
    std::function<Result<proto::AdminReply>(const AdminCall& call)>;

struct AdminCommandSpec {
  std::string name;     // e.g. "SLOWLOG"; stored upper-case
  int arity = -1;       // Redis convention, the name included
  std::string syntax;   // e.g. "SLOWLOG GET [count] | LEN | RESET"
  std::string summary;  // one line, for COMMAND DOCS and the CLI's HELP
  AdminHandler handler;
};

class AdminCommands {
 public:
  // Registers COMMAND (COUNT, LIST, DOCS [name...]).
  AdminCommands();

  AdminCommands(const AdminCommands&) = delete;
  AdminCommands& operator=(const AdminCommands&) = delete;

  // Adds a command. REQUIRES: no command of that name yet; before any Run.
  void Register(AdminCommandSpec spec);

  // Runs the command of `request`: INVALID_ARGUMENT for an empty request, an
  // unknown command or a wrong number of arguments (with the syntax), else
  // the handler's reply or error.
  proto::Response Run(const proto::AdminRequest& request,
                      uint64_t connection_id) const;

  // The registered commands, by upper-case name.
  const std::map<std::string, AdminCommandSpec, std::less<>>& commands() const {
    return commands_;
  }

 private:
  Result<proto::AdminReply> Command(const AdminCall& call) const;

  std::map<std::string, AdminCommandSpec, std::less<>> commands_;
};

// Upper-cases ASCII letters (command and subcommand names).
std::string AdminUpper(std::string_view word);

// Parses a whole decimal integer argument; INVALID_ARGUMENT naming `what`
// otherwise.
Result<int64_t> AdminIntArg(std::string_view arg, std::string_view what);

}  // namespace tally

#endif  // TALLY_SERVER_ADMIN_COMMANDS_H_
