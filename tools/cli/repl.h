// Repl: the interactive mode (stdin is a terminal), on libedit. Prompt
// "host:port> ", history in ~/.tally_cli_history (TALLY_CLI_HISTFILE
// overrides it; "/dev/null" disables history), TAB completes command names,
// HELP [command], CLEAR, QUIT/EXIT or Ctrl-D to leave.
//
// The REPL knows nothing of the network: it hands each request to an
// Executor and prints the text it returns.
//
// Thread safety: libedit is global state; run one Repl at a time.

#ifndef TALLY_TOOLS_CLI_REPL_H_
#define TALLY_TOOLS_CLI_REPL_H_

#include <functional>
#include <string>
#include <string_view>

#include "protocol/messages.h"

namespace tally::cli {

// Runs one request and returns the formatted reply (without a newline).
using Executor = std::function<std::string(const proto::Request&)>;

struct ReplOptions {
  std::string prompt;        // e.g. "127.0.0.1:7379> "
  std::string history_file;  // "" = no history
};

// Reads and runs commands until QUIT, EXIT or end of input. Returns the
// process exit code (0).
int RunRepl(const ReplOptions& options, const Executor& execute);

// TALLY_CLI_HISTFILE if set, else $HOME/.tally_cli_history; "" when the
// chosen path is /dev/null or no home is known.
std::string HistoryFilePath();

// HELP's text: every command ("" topic) or one; an unknown topic says so.
std::string HelpText(std::string_view topic);

}  // namespace tally::cli

#endif  // TALLY_TOOLS_CLI_REPL_H_
