#include "tools/cli/command_parser.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <limits>
#include <optional>
#include <utility>

#include "storage/duration.h"

namespace tally::cli {

namespace {

constexpr std::array<CommandDoc, 14> kDocs = {{
    {"ADD", "key [COUNT n] [AMOUNT v] [MEMBER m] [TS ms|*] [ID id]",
     "record an event (COUNT 1, AMOUNT 0, now unless TS)"},
    {"CLEAR", "", "clear the screen"},
    {"COMMAND", "LIST | COUNT | DOCS [command ...]",
     "the server's admin commands; any command not listed here is sent to "
     "the server as an admin command"},
    {"DEL", "key [key ...]", "delete keys; replies how many existed"},
    {"EXIT", "", "leave the CLI"},
    {"HELLO", "", "server name, version, protocol and clock"},
    {"HELP", "[command]", "list commands, or show one"},
    {"INFO", "[section]",
     "server information (server memory keyspace stats persistence all)"},
    {"INSPECT", "key", "a key's policy, tiers and memory"},
    {"PING", "", "check the connection"},
    {"QUERY", "key WINDOW dur [AT ms] | key FROM ms TO ms",
     "count, sum, min, max, avg and distinct over a window"},
    {"QUIT", "", "leave the CLI"},
    {"RANGE", "key FROM ms TO ms STEP dur", "one aggregate per step"},
    {"SCAN", "cursor [MATCH glob] [COUNT n]", "iterate keys; cursor 0 starts"},
}};

Status SyntaxError(std::string message) {
  return Status::InvalidArgument(message);
}

std::string Upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  }
  return out;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

bool IsBlank(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' ||
         c == '\f';
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

template <typename Int>
Result<Int> ParseInt(std::string_view text, std::string_view what) {
  Int value{};
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (text.empty() || ec != std::errc() || ptr != end) {
    if constexpr (std::is_signed_v<Int>) {
      return SyntaxError(std::string(what) + " value '" + std::string(text) +
                         "' is not an integer");
    } else {
      return SyntaxError(std::string(what) + " value '" + std::string(text) +
                         "' is not an integer in [0, " +
                         std::to_string(std::numeric_limits<Int>::max()) + "]");
    }
  }
  return value;
}

// A Unix ms time, or "*" for the server's clock (sent as 0).
Result<int64_t> ParseTime(std::string_view text, std::string_view what) {
  if (text == "*") return int64_t{0};
  return ParseInt<int64_t>(text, what);
}

// A positive duration, e.g. "5m" or "300000".
Result<int64_t> ParsePositiveDuration(std::string_view text,
                                      std::string_view what) {
  Result<int64_t> ms = ParseDuration(Lower(text));
  if (!ms.ok()) {
    return SyntaxError("invalid " + std::string(what) + ": " +
                       std::string(ms.status().message()));
  }
  if (*ms <= 0) {
    return SyntaxError(std::string(what) + " must be greater than 0");
  }
  return *ms;
}

Status WrongArity(std::string_view name) {
  return SyntaxError("wrong number of arguments for '" + std::string(name) +
                     "' command");
}

// "NAME value" pairs after a command's fixed arguments, each at most once.
class Options {
 public:
  static Result<Options> Parse(
      std::string_view command, const std::vector<std::string>& args,
      size_t first, std::initializer_list<std::string_view> allowed) {
    Options out;
    for (size_t i = first; i < args.size(); i += 2) {
      const std::string name = Upper(args[i]);
      if (std::find(allowed.begin(), allowed.end(), name) == allowed.end()) {
        std::string expected;
        size_t n = 0;
        for (std::string_view a : allowed) {
          if (n > 0) expected += (n + 1 == allowed.size()) ? " or " : ", ";
          expected += a;
          ++n;
        }
        return SyntaxError("syntax error: unknown option '" + args[i] +
                           "' for '" + std::string(command) + "' (expected " +
                           expected + ")");
      }
      if (i + 1 >= args.size()) {
        return SyntaxError("syntax error: " + name + " needs a value");
      }
      if (out.Get(name) != nullptr) {
        return SyntaxError("syntax error: " + name + " given twice");
      }
      out.values_.emplace_back(name, args[i + 1]);
    }
    return out;
  }

  const std::string* Get(std::string_view name) const {
    for (const auto& [n, v] : values_) {
      if (n == name) return &v;
    }
    return nullptr;
  }

 private:
  std::vector<std::pair<std::string, std::string>> values_;
};

// Stores a parsed value, or passes the parse error on.
template <typename T, typename U>
Status Store(Result<T> parsed, U* out) {
  if (!parsed.ok()) return parsed.status();
  *out = *parsed;
  return Status::Ok();
}

Result<proto::Request> ParseAdd(const std::vector<std::string>& args) {
  if (args.size() < 2) return WrongArity("ADD");
  Result<Options> options =
      Options::Parse("ADD", args, 2, {"COUNT", "AMOUNT", "MEMBER", "TS", "ID"});
  if (!options.ok()) return options.status();
  proto::AddItem item;
  item.key = args[1];
  if (const std::string* v = options->Get("COUNT")) {
    if (Status s = Store(ParseInt<int64_t>(*v, "COUNT"), &item.count);
        !s.ok()) {
      return s;
    }
  }
  if (const std::string* v = options->Get("AMOUNT")) {
    if (Status s = Store(ParseInt<int64_t>(*v, "AMOUNT"), &item.amount);
        !s.ok()) {
      return s;
    }
  }
  if (const std::string* v = options->Get("TS")) {
    if (Status s = Store(ParseTime(*v, "TS"), &item.time_ms); !s.ok()) {
      return s;
    }
  }
  if (const std::string* v = options->Get("MEMBER")) item.member = *v;
  if (const std::string* v = options->Get("ID")) item.id = *v;
  proto::Request request;
  request.body = proto::AddRequest{.items = {std::move(item)}};
  return request;
}

Result<proto::Request> ParseQuery(const std::vector<std::string>& args) {
  if (args.size() < 4) return WrongArity("QUERY");
  Result<Options> options =
      Options::Parse("QUERY", args, 2, {"WINDOW", "AT", "FROM", "TO"});
  if (!options.ok()) return options.status();
  const std::string* window = options->Get("WINDOW");
  const std::string* at = options->Get("AT");
  const std::string* from = options->Get("FROM");
  const std::string* to = options->Get("TO");
  proto::QueryItem item;
  item.key = args[1];
  if (window != nullptr) {
    if (from != nullptr || to != nullptr) {
      return SyntaxError(
          "syntax error: QUERY takes WINDOW or FROM/TO, not both");
    }
    if (Status s =
            Store(ParsePositiveDuration(*window, "WINDOW"), &item.last_ms);
        !s.ok()) {
      return s;
    }
    if (at != nullptr) {
      if (Status s = Store(ParseTime(*at, "AT"), &item.at_ms); !s.ok()) {
        return s;
      }
    }
  } else {
    if (at != nullptr) {
      return SyntaxError("syntax error: AT goes with WINDOW, not FROM/TO");
    }
    if (from == nullptr || to == nullptr) {
      return SyntaxError(
          "syntax error: QUERY needs WINDOW dur or FROM ms TO ms");
    }
    if (Status s = Store(ParseInt<int64_t>(*from, "FROM"), &item.from_ms);
        !s.ok()) {
      return s;
    }
    if (Status s = Store(ParseInt<int64_t>(*to, "TO"), &item.to_ms); !s.ok()) {
      return s;
    }
  }
  proto::Request request;
  request.body = proto::QueryRequest{.items = {std::move(item)}};
  return request;
}

Result<proto::Request> ParseRange(const std::vector<std::string>& args) {
  if (args.size() != 8) return WrongArity("RANGE");
  Result<Options> options =
      Options::Parse("RANGE", args, 2, {"FROM", "TO", "STEP"});
  if (!options.ok()) return options.status();
  proto::RangeRequest range;
  range.key = args[1];
  if (Status s = Store(ParseInt<int64_t>(*options->Get("FROM"), "FROM"),
                       &range.from_ms);
      !s.ok()) {
    return s;
  }
  if (Status s =
          Store(ParseInt<int64_t>(*options->Get("TO"), "TO"), &range.to_ms);
      !s.ok()) {
    return s;
  }
  if (Status s = Store(ParsePositiveDuration(*options->Get("STEP"), "STEP"),
                       &range.step_ms);
      !s.ok()) {
    return s;
  }
  proto::Request request;
  request.body = std::move(range);
  return request;
}

Result<proto::Request> ParseScan(const std::vector<std::string>& args) {
  if (args.size() < 2) return WrongArity("SCAN");
  Result<Options> options = Options::Parse("SCAN", args, 2, {"MATCH", "COUNT"});
  if (!options.ok()) return options.status();
  proto::ScanRequest scan;
  if (Status s = Store(ParseInt<uint64_t>(args[1], "cursor"), &scan.cursor);
      !s.ok()) {
    return s;
  }
  if (const std::string* v = options->Get("MATCH")) scan.pattern = *v;
  if (const std::string* v = options->Get("COUNT")) {
    if (Status s = Store(ParseInt<uint32_t>(*v, "COUNT"), &scan.count);
        !s.ok()) {
      return s;
    }
  }
  proto::Request request;
  request.body = std::move(scan);
  return request;
}

}  // namespace

Result<std::vector<std::string>> Tokenize(std::string_view line) {
  std::vector<std::string> out;
  size_t i = 0;
  const size_t n = line.size();
  while (true) {
    while (i < n && IsBlank(line[i])) ++i;
    if (i == n) return out;
    std::string arg;
    const char quote = (line[i] == '"' || line[i] == '\'') ? line[i] : 0;
    if (quote == 0) {
      while (i < n && !IsBlank(line[i])) arg += line[i++];
      out.push_back(std::move(arg));
      continue;
    }
    ++i;  // the opening quote
    bool closed = false;
    while (i < n) {
      const char c = line[i];
      if (c == quote) {
        closed = true;
        ++i;
        break;
      }
      if (c == '\\' && i + 1 < n) {
        const char e = line[i + 1];
        if (quote == '\'') {
          if (e == '\'') {
            arg += '\'';
            i += 2;
            continue;
          }
          arg += c;
          ++i;
          continue;
        }
        if (e == 'x' && i + 3 < n && HexValue(line[i + 2]) >= 0 &&
            HexValue(line[i + 3]) >= 0) {
          arg += static_cast<char>(HexValue(line[i + 2]) * 16 +
                                   HexValue(line[i + 3]));
          i += 4;
          continue;
        }
        switch (e) {
          case 'n':
            arg += '\n';
            break;
          case 'r':
            arg += '\r';
            break;
          case 't':
            arg += '\t';
            break;
          case 'a':
            arg += '\a';
            break;
          case 'b':
            arg += '\b';
            break;
          default:
            arg += e;  // \" \\ and any other escaped character
        }
        i += 2;
        continue;
      }
      arg += c;
      ++i;
    }
    if (!closed) return SyntaxError("unbalanced quotes");
    if (i < n && !IsBlank(line[i])) {
      return SyntaxError(
          "a closing quote must be followed by a space or the end of the "
          "line");
    }
    out.push_back(std::move(arg));
  }
}

Result<Command> ParseCommand(const std::vector<std::string>& args) {
  if (args.empty()) return SyntaxError("empty command");
  Command cmd;
  cmd.name = Upper(args[0]);
  const std::string& name = cmd.name;
  const size_t argc = args.size();
  Result<proto::Request> request = proto::Request{};
  if (name == "PING") {
    if (argc != 1) return WrongArity(name);
    request->body = proto::PingRequest{};
  } else if (name == "HELLO") {
    if (argc != 1) return WrongArity(name);
    request->body = proto::HelloRequest{.client_name = "tally-cli"};
  } else if (name == "ADD") {
    request = ParseAdd(args);
  } else if (name == "QUERY") {
    request = ParseQuery(args);
  } else if (name == "RANGE") {
    request = ParseRange(args);
  } else if (name == "INSPECT") {
    if (argc != 2) return WrongArity(name);
    request->body = proto::InspectRequest{.key = args[1]};
  } else if (name == "SCAN") {
    request = ParseScan(args);
  } else if (name == "DEL") {
    if (argc < 2) return WrongArity(name);
    request->body = proto::DeleteRequest{
        .keys = std::vector<std::string>(args.begin() + 1, args.end())};
  } else if (name == "INFO") {
    if (argc > 2) return WrongArity(name);
    request->body =
        proto::InfoRequest{.section = argc == 2 ? Lower(args[1]) : ""};
  } else if (name == "HELP") {
    if (argc > 2) return WrongArity(name);
    cmd.kind = CommandKind::kHelp;
    if (argc == 2) cmd.topic = Upper(args[1]);
    return cmd;
  } else if (name == "QUIT" || name == "EXIT") {
    cmd.kind = CommandKind::kQuit;
    return cmd;
  } else if (name == "CLEAR") {
    cmd.kind = CommandKind::kClear;
    return cmd;
  } else {
    // Everything else is an admin command (SLOWLOG, CONFIG, CLIENT, ...),
    // sent as typed for the server to run or refuse, as redis-cli does: the
    // server, not this CLI, knows which commands it has (COMMAND LIST).
    cmd.request.body = proto::AdminRequest{.args = args};
    return cmd;
  }
  if (!request.ok()) return request.status();
  cmd.request = std::move(request).value();
  return cmd;
}

Result<Command> ParseLine(std::string_view line) {
  Result<std::vector<std::string>> args = Tokenize(line);
  if (!args.ok()) return args.status();
  return ParseCommand(*args);
}

std::span<const CommandDoc> CommandDocs() { return kDocs; }

}  // namespace tally::cli
