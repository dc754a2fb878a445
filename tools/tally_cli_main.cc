// tally: the operator CLI, modelled on redis-cli.
//
//   tally [-h host] [-p port | -s socket] [-t seconds] [--json] [--token T |
//         --token_file F] [COMMAND args...]
//   tally token new <id> <reader|writer|admin> [key-prefix...]
//
// With a command: run it, print the reply, exit 0 (1 on an error reply).
// Without one on a terminal: the REPL (tools/cli/repl.h). Without one on a
// pipe: one reply line per input line, pipelined (tools/cli/pipe_mode.h);
// exit 1 when any line got an error. Commands: tools/cli/command_parser.h.

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "client/tally/client.h"
#include "server/auth.h"
#include "tools/cli/command_parser.h"
#include "tools/cli/formatter.h"
#include "tools/cli/monitor_mode.h"
#include "tools/cli/pipe_mode.h"
#include "tools/cli/repl.h"
#include "tools/cli/special_modes.h"

#ifndef TALLY_VERSION
#define TALLY_VERSION "unknown"
#endif

namespace {

using tally::cli::FormatOptions;

// A call's outcome as one response: transport errors (deadline, refused
// connection) become error responses like the server's own.
tally::proto::Response ToResponse(
    tally::CallResult<tally::proto::Response> result) {
  if (!result.ok() && result.value.code == tally::Code::kOk) {
    return tally::proto::Response::Error(
        tally::Status(result.code, result.message));
  }
  return std::move(result.value);
}

tally::ClientOptions CliClientOptions(const tally::Endpoint& endpoint,
                                      double timeout_seconds) {
  tally::ClientOptions options;
  options.endpoints = {endpoint};
  const auto timeout = std::chrono::microseconds(
      std::llround(std::max(timeout_seconds, 0.001) * 1e6));
  options.default_timeout = timeout;
  options.connect_timeout =
      std::max(std::chrono::milliseconds(1),
               std::chrono::duration_cast<std::chrono::milliseconds>(timeout));
  // One connection keeps a pipe's lines in order on the server; no retries,
  // breaker or fallback: an operator sees exactly what the server said.
  options.connections_per_endpoint = 1;
  options.max_in_flight = 1024;
  options.retry.max_attempts = 1;
  options.breaker.enabled = false;
  options.fallback = tally::Fallback::kError;
  options.auto_idempotency_ids = false;  // ADD ... ID id is the operator's
  options.client_name = "tally-cli";
  return options;
}

// `tally token new <id> <role> [prefix...]`: a new secret, printed once,
// and the line for the server's token file (only its SHA-256).
int RunTokenCommand(const std::vector<std::string>& args) {
  if (args.size() < 4 || args[1] != "new") {
    std::cerr << "usage: tally token new <id> <reader|writer|admin> "
                 "[key-prefix...]\n";
    return 2;
  }
  tally::Result<tally::Role> role = tally::ParseRole(args[3]);
  if (!role.ok()) {
    std::cerr << "tally token: " << role.status().message() << '\n';
    return 2;
  }
  const std::vector<std::string> prefixes(args.begin() + 4, args.end());
  tally::Result<std::string> secret = tally::NewSecret();
  if (!secret.ok()) {
    std::cerr << "tally token: " << secret.status().ToString() << '\n';
    return 1;
  }
  const std::string line = tally::TokenLine(args[2], *role, *secret, prefixes);
  // Check the line the way tallyd will read it (id, prefixes).
  if (tally::Result<std::vector<tally::Token>> parsed =
          tally::ParseTokenFile(line);
      !parsed.ok()) {
    std::cerr << "tally token: " << parsed.status().message() << '\n';
    return 2;
  }
  std::cout << "secret (shown once; give it to the client, e.g. "
               "TALLY_TOKEN):\n  "
            << *secret
            << "\nline for tallyd's --token_file (then kill -HUP "
               "tallyd):\n  "
            << line << '\n';
  return 0;
}

// The token to send: --token, else the first line of --token_file, else
// $TALLY_TOKEN; empty: none.
tally::Result<std::string> CliToken(const std::string& token,
                                    const std::string& token_file) {
  if (!token.empty()) return token;
  if (!token_file.empty()) {
    std::ifstream in(token_file);
    std::string line;
    if (!in || !std::getline(in, line)) {
      return tally::Status(tally::Code::kIoError,
                           "cannot read --token_file " + token_file);
    }
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) {
      line.pop_back();
    }
    return line;
  }
  const char* env = std::getenv("TALLY_TOKEN");
  return std::string(env == nullptr ? "" : env);
}

std::string CommandList() {
  std::string out =
      "Without COMMAND: a REPL on a terminal; on a pipe, one reply line per\n"
      "stdin line (exit 1 if any failed). Commands are case-insensitive;\n"
      "durations are 250ms 60s 5m 1h 7d or ms; times are Unix ms:\n";
  for (const tally::cli::CommandDoc& doc : tally::cli::CommandDocs()) {
    out += "  " + std::string(doc.name);
    if (!doc.args.empty()) out += " " + std::string(doc.args);
    out += "\n";
  }
  out +=
      "Local, no server: tally token new <id> <reader|writer|admin> "
      "[key-prefix...]\n";
  return out;
}

// CLI11's usage line does not know that arguments after the options are a
// command.
class UsageFormatter : public CLI::Formatter {
 public:
  std::string make_usage(const CLI::App* /*app*/,
                         std::string name) const override {
    return "Usage: " + name + " [OPTIONS] [COMMAND [ARG ...]]\n";
  }
};

int RunOneShot(tally::Client& client, const std::vector<std::string>& args,
               const FormatOptions& format) {
  tally::Result<tally::cli::Command> command = tally::cli::ParseCommand(args);
  if (!command.ok()) {
    std::cout << tally::cli::FormatSyntaxError(command.status().message(),
                                               format)
              << '\n';
    return 1;
  }
  switch (command->kind) {
    case tally::cli::CommandKind::kHelp:
      std::cout << tally::cli::HelpText(command->topic) << '\n';
      return 0;
    case tally::cli::CommandKind::kQuit:
    case tally::cli::CommandKind::kClear:
      return 0;
    case tally::cli::CommandKind::kRequest:
      break;
  }
  if (tally::cli::IsMonitor(command->request)) {
    return tally::cli::RunMonitor(client, command->request, format, std::cout);
  }
  tally::proto::Response response = ToResponse(client.Call(command->request));
  std::cout << tally::cli::FormatResponse(command->request, response, format)
            << '\n';
  return tally::cli::IsError(response) ? 1 : 0;
}

// The redis-cli special modes (tools/cli/special_modes.h), in the order in
// which they win when several are given: --latency-history over --latency,
// --memkeys over --bigkeys.
enum class Mode : uint8_t {
  kStat,
  kLatencyHistory,
  kLatency,
  kScan,
  kMemKeys,
  kBigKeys,
  kHotKeys,
};
constexpr size_t kModes = static_cast<size_t>(Mode::kHotKeys) + 1;

// Each mode's flag, in the order --help lists them.
struct ModeFlag {
  Mode mode;
  const char* name;
  const char* help;
};
constexpr ModeFlag kModeFlags[] = {
    {Mode::kStat, "--stat",
     "Print keys, memory, clients and requests every -i seconds"},
    {Mode::kLatency, "--latency",
     "Sample PING round trips: min, max, avg in ms (redis-cli)"},
    {Mode::kLatencyHistory, "--latency-history",
     "Like --latency, a new line every -i seconds (default 15)"},
    {Mode::kScan, "--scan", "List keys (SCAN), one per line"},
    {Mode::kBigKeys, "--bigkeys",
     "Scan every key; biggest per policy by buckets held"},
    {Mode::kMemKeys, "--memkeys",
     "Scan every key; biggest per policy by bytes held"},
    {Mode::kHotKeys, "--hotkeys",
     "Keys with the highest recent add rate (server-sampled)"},
};

struct ModeFlags {
  std::array<bool, kModes> on{};  // by Mode
  bool raw = false;
  tally::cli::SpecialModeOptions options;

  // The mode to run: the first given, in Mode's order.
  std::optional<Mode> selected() const {
    for (size_t i = 0; i < kModes; ++i) {
      if (on[i]) return static_cast<Mode>(i);
    }
    return std::nullopt;
  }
};

void AddModeOptions(CLI::App& app, ModeFlags& m) {
  for (const ModeFlag& flag : kModeFlags) {
    app.add_flag(flag.name, m.on[static_cast<size_t>(flag.mode)], flag.help);
    if (flag.mode != Mode::kScan) continue;
    // The scanning modes' options, listed right after --scan.
    app.add_option("--pattern", m.options.pattern,
                   "Glob for --scan, --bigkeys, --memkeys (fnmatch)");
    app.add_option("--count", m.options.count,
                   "SCAN COUNT for --scan/--bigkeys/--memkeys; HOTKEYS COUNT "
                   "for --hotkeys");
  }
  app.add_option("-i,--interval", m.options.interval_s,
                 "Seconds between --stat lines, --latency-history ranges, "
                 "SCAN pages (decimals ok)")
      ->check(CLI::NonNegativeNumber);
  app.add_flag("--raw", m.raw,
               "Raw output for the modes (the default when stdout is not "
               "a terminal)");
}

int RunMode(tally::Client& client, Mode mode, ModeFlags& m) {
  m.options.raw = m.raw || isatty(STDOUT_FILENO) == 0;
  auto call = [&client](const tally::proto::Request& request) {
    return ToResponse(client.Call(request));
  };
  auto async = [&client](tally::proto::Request request,
                         std::function<void(tally::proto::Response)> done) {
    client.CallAsync(
        std::move(request), {},
        [done = std::move(done)](tally::CallResult<tally::proto::Response> r) {
          done(ToResponse(std::move(r)));
        });
  };
  switch (mode) {
    case Mode::kStat:
      return tally::cli::RunStat(call, m.options, std::cout);
    case Mode::kLatencyHistory:
    case Mode::kLatency:
      return tally::cli::RunLatency(call, mode == Mode::kLatencyHistory,
                                    m.options, std::cout);
    case Mode::kScan:
      return tally::cli::RunScan(call, m.options, std::cout);
    case Mode::kMemKeys:
    case Mode::kBigKeys:
      return tally::cli::RunBigKeys(async, mode == Mode::kMemKeys, m.options,
                                    std::cout);
    case Mode::kHotKeys:
      break;
  }
  return tally::cli::RunHotKeys(call, m.options, std::cout);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"tally: the operator CLI of the tally counter server"};
  app.set_help_flag("--help", "Print this help and exit");
  app.formatter(std::make_shared<UsageFormatter>());
  std::string host = "127.0.0.1";
  uint16_t port = 7379;
  bool json = false;
  double timeout_seconds = 1.0;
  app.add_option("-h,--host", host, "Server host name or address")
      ->capture_default_str();
  app.add_option("-p,--port", port, "Server TCP port")
      ->capture_default_str()
      ->check(CLI::Range(1, 65535));
  std::string unix_socket;
  app.add_option("-s,--socket", unix_socket,
                 "Server Unix socket (tallyd --unix_socket), as redis-cli "
                 "-s; overrides -h and -p, and is never TLS");
  app.add_flag("--json", json,
               "Print every reply as one JSON object on one line");
  app.add_option("-t,--timeout", timeout_seconds,
                 "Connect and per-command timeout in seconds (decimals ok); "
                 "1 s is ample on a LAN and still fails fast when down")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  std::string token;
  std::string token_file;
  app.add_option("--token", token,
                 "Authentication token (visible in ps: prefer --token_file "
                 "or $TALLY_TOKEN)");
  app.add_option("--token_file", token_file,
                 "File whose first line is the authentication token");
  tally::TlsOptions tls;
  app.add_flag("--tls", tls.enabled,
               "Connect over TLS (tallyd --tls_cert_file); the server's "
               "certificate and name are always verified");
  app.add_option("--tls_ca_file", tls.ca_file,
                 "PEM CA bundle for the server's certificate (default: the "
                 "system's CAs)");
  app.add_option("--tls_server_name", tls.server_name,
                 "Name the certificate must carry, sent as SNI (default: "
                 "--host)");
  app.add_option("--tls_cert_file", tls.cert_file,
                 "PEM client certificate for mutual TLS");
  app.add_option("--tls_key_file", tls.key_file,
                 "PEM private key of --tls_cert_file");
  ModeFlags modes;
  AddModeOptions(app, modes);
  app.set_version_flag("--version", "tally " TALLY_VERSION);
  app.prefix_command();  // everything from the first command word is its args
  app.footer(CommandList());
  CLI11_PARSE(app, argc, argv);
  const std::vector<std::string> args = app.remaining();
  if (!args.empty() && (args[0] == "token" || args[0] == "TOKEN")) {
    return RunTokenCommand(args);
  }
  tally::Result<std::string> auth_token = CliToken(token, token_file);
  if (!auth_token.ok()) {
    std::cerr << "tally: " << auth_token.status().message() << '\n';
    return 2;
  }

  const tally::Endpoint endpoint{
      .host = unix_socket.empty() ? host : "unix:" + unix_socket, .port = port};
  tally::ClientOptions client_options =
      CliClientOptions(endpoint, timeout_seconds);
  client_options.auth_token = std::move(*auth_token);
  // Any --tls_* option implies --tls: never fall back to plaintext silently.
  tls.enabled = tls.enabled || !tls.ca_file.empty() ||
                !tls.server_name.empty() || !tls.cert_file.empty();
  if (tls.enabled && !unix_socket.empty()) {
    // The library would connect in plaintext; an operator asking for TLS
    // must not get that silently.
    std::cerr << "tally: -s (a Unix socket) is never TLS; drop --tls*\n";
    return 2;
  }
  client_options.tls = tls;
  tally::Client client(std::move(client_options));

  if (const std::optional<Mode> mode = modes.selected()) {
    return RunMode(client, *mode, modes);
  }

  if (!args.empty()) {
    return RunOneShot(client, args,
                      {.json = json,
                       .one_line = json,
                       .chart = !json && isatty(STDOUT_FILENO) != 0});
  }

  if (isatty(STDIN_FILENO) != 0) {
    const FormatOptions format{.json = json, .one_line = false, .chart = !json};
    return tally::cli::RunRepl(
        {.prompt = tally::EndpointName(endpoint) + "> ",
         .history_file = tally::cli::HistoryFilePath()},
        [&](const tally::proto::Request& request) {
          if (tally::cli::IsMonitor(request)) {
            // Like redis-cli: the REPL becomes the stream until Ctrl-C.
            tally::cli::RunMonitor(client, request, format, std::cout);
            return std::string();
          }
          return tally::cli::FormatResponse(
              request, ToResponse(client.Call(request)), format);
        });
  }

  std::ios::sync_with_stdio(false);
  tally::cli::PipeStats stats = tally::cli::RunPipe(
      std::cin, std::cout,
      {.format = {.json = json, .one_line = true, .chart = false},
       .window = 256},
      [&](tally::proto::Request request,
          std::function<void(tally::proto::Response)> done) {
        if (tally::cli::IsMonitor(request)) {
          // The stream would never end the pipe's line.
          done(tally::proto::Response::Error(tally::Status::InvalidArgument(
              "MONITOR streams until interrupted: run it alone, as "
              "`tally MONITOR`")));
          return;
        }
        client.CallAsync(std::move(request), {},
                         [done = std::move(done)](
                             tally::CallResult<tally::proto::Response> r) {
                           done(ToResponse(std::move(r)));
                         });
      });
  return stats.errors == 0 ? 0 : 1;
}
