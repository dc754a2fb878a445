#include "tools/cli/repl.h"

// libedit's readline emulation (editline/readline.h) needs <cstdio> first.
#include <editline/readline.h>
#include <fmt/format.h>

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>

#include "tools/cli/command_parser.h"
#include "tools/cli/formatter.h"

namespace tally::cli {

namespace {

constexpr int kHistoryMax = 1000;

bool StartsWithNoCase(std::string_view s, std::string_view prefix) {
  if (prefix.size() > s.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    if (std::toupper(static_cast<unsigned char>(s[i])) !=
        std::toupper(static_cast<unsigned char>(prefix[i]))) {
      return false;
    }
  }
  return true;
}

// libedit calls this with state 0 first, then 1, 2, ... until it gets null.
// Completions keep the case the operator started typing in.
char* CommandNameGenerator(const char* text, int state) {
  static size_t next = 0;
  if (state == 0) next = 0;
  const std::string_view prefix(text);
  const bool lower =
      !prefix.empty() && std::islower(static_cast<unsigned char>(text[0]));
  const auto docs = CommandDocs();
  while (next < docs.size()) {
    std::string_view name = docs[next++].name;
    if (!StartsWithNoCase(name, prefix)) continue;
    std::string out(name);
    if (lower) {
      for (char& c : out) c = static_cast<char>(std::tolower(c));
    }
    return strdup(out.c_str());  // libedit frees it
  }
  return nullptr;
}

char* NoCompletion(const char*, int) { return nullptr; }

// Only the first word (the command) is completed; never file names.
char** Complete(const char* text, int start, int /*end*/) {
  rl_attempted_completion_over = 1;
  if (start != 0) return nullptr;
  return rl_completion_matches(text, CommandNameGenerator);
}

}  // namespace

std::string HistoryFilePath() {
  std::string path;
  if (const char* env = std::getenv("TALLY_CLI_HISTFILE")) {
    path = env;
  } else if (const char* home = std::getenv("HOME")) {
    path = std::string(home) + "/.tally_cli_history";
  }
  if (path == "/dev/null") return "";
  return path;
}

std::string HelpText(std::string_view topic) {
  std::string out;
  for (const CommandDoc& doc : CommandDocs()) {
    if (!topic.empty() && doc.name != topic) continue;
    if (!out.empty()) out += '\n';
    out +=
        fmt::format("{:<8} {}\n         {}", doc.name, doc.args, doc.summary);
  }
  if (out.empty()) {
    return fmt::format("(error) ERR unknown command '{}' (HELP lists them)",
                       topic);
  }
  if (topic.empty()) {
    out =
        "tally: durations are 250ms 60s 5m 1h 7d or plain ms; times are "
        "Unix ms; quote keys with spaces: \"a b\"\n\n" +
        out;
  }
  return out;
}

int RunRepl(const ReplOptions& options, const Executor& execute) {
  rl_readline_name = "tally";
  rl_attempted_completion_function = Complete;
  rl_completion_entry_function = NoCompletion;
  using_history();
  stifle_history(kHistoryMax);
  if (!options.history_file.empty()) {
    read_history(options.history_file.c_str());  // absent on first run
  }

  while (char* raw = readline(options.prompt.c_str())) {
    std::string line(raw);
    std::free(raw);
    if (line.find_first_not_of(" \t\r\n") == std::string::npos) continue;
    add_history(line.c_str());
    if (!options.history_file.empty()) {
      write_history(options.history_file.c_str());
    }

    Result<Command> command = ParseLine(line);
    std::string reply;
    if (!command.ok()) {
      reply = FormatSyntaxError(command.status().message(), {});
    } else if (command->kind == CommandKind::kQuit) {
      break;
    } else if (command->kind == CommandKind::kClear) {
      std::cout << "\033[H\033[2J" << std::flush;
      continue;
    } else if (command->kind == CommandKind::kHelp) {
      reply = HelpText(command->topic);
    } else {
      reply = execute(command->request);
    }
    std::cout << reply << '\n' << std::flush;
  }
  return 0;
}

}  // namespace tally::cli
