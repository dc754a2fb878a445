// End-to-end tests of the `tally` CLI against a real `tallyd --port=0`:
// every command one-shot with --json (parsed and compared field by field;
// covered_* depend on the clock, so only their shape is checked), text
// replies, exit codes, pipe mode with 5,000 mixed lines, and the REPL driven
// through tmux.
//
// Every process is bounded: tallyd (tests/support/tallyd_process.h) dies
// with this test and is stopped in TearDown; each CLI run goes through
// timeout(1) (tests/support/shell.h); the REPL runs under timeout(1) inside
// a private tmux server that is killed at the end. TALLY_BIN and TALLYD_BIN
// are set by tests/CMakeLists.txt.

#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/shell.h"
#include "tests/support/tallyd_process.h"

namespace {

using Json = nlohmann::json;
using tally::test::RunResult;
using tally::test::Shell;

std::string Quoted(const std::string& arg) {
  std::string out = "'";
  for (char c : arg) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

class TallyCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(tallyd_.Start(
        {.binary = TALLYD_BIN, .flags = {"--distinct_exact_limit=10"}}))
        << "tallyd did not start: " << tallyd_.output();
    port_ = tallyd_.port();
    ASSERT_GT(port_, 0);
    tmp_ = std::filesystem::temp_directory_path() /
           ("tally_cli_test." + std::to_string(getpid()));
    std::filesystem::create_directories(tmp_);
  }

  void TearDown() override {
    tallyd_.Stop();
    std::error_code ignored;
    if (!tmp_.empty()) std::filesystem::remove_all(tmp_, ignored);
  }

  std::string Cli(const std::string& flags = "") const {
    return std::string(TALLY_BIN) + " -p " + std::to_string(port_) + " " +
           flags;
  }

  // One-shot --json; `args` are shell-quoted one by one.
  Json JsonCall(const std::vector<std::string>& args, int want_exit = 0) {
    std::string command = Cli("--json");
    for (const std::string& a : args) command += " " + Quoted(a);
    RunResult run = Shell(command);
    EXPECT_EQ(run.exit_code, want_exit) << command << "\n" << run.out;
    EXPECT_FALSE(run.out.empty()) << command;
    EXPECT_EQ(run.out.find('\n'), run.out.size() - 1)
        << "not exactly one line: " << run.out;
    Json j = Json::parse(run.out, nullptr, /*allow_exceptions=*/false);
    EXPECT_FALSE(j.is_discarded()) << run.out;
    return j;
  }

  tally::test::TallydProcess tallyd_;
  int port_ = 0;
  std::filesystem::path tmp_;
};

void ExpectQueryShape(const Json& q) {
  for (const char* field :
       {"count", "sum", "min", "max", "avg", "distinct", "exact",
        "covered_from_ms", "covered_to_ms", "resolution_ms"}) {
    EXPECT_TRUE(q.contains(field)) << field << " missing in " << q;
  }
}

TEST_F(TallyCliTest, EveryCommandOneShotJson) {
  EXPECT_EQ(JsonCall({"PING"}), Json::parse(R"({"reply":"PONG"})"));
  EXPECT_EQ(JsonCall({"hello"})["server"], "tallyd");

  const int64_t now = NowMs();
  Json add = JsonCall({"ADD", "user 42", "AMOUNT", "100", "MEMBER", "dev a"});
  EXPECT_EQ(add["ok"], true);
  EXPECT_EQ(add["duplicate"], false);
  JsonCall({"add", "user 42", "amount", "300", "member", "dev b", "count", "2",
            "ts", std::to_string(now)});
  EXPECT_EQ(JsonCall({"ADD", "user 42", "ID", "tx-1"})["duplicate"], false);
  EXPECT_EQ(JsonCall({"ADD", "user 42", "ID", "tx-1"})["duplicate"], true);

  Json q = JsonCall({"QUERY", "user 42", "WINDOW", "5m"});
  ExpectQueryShape(q);
  EXPECT_EQ(q["count"], 4);
  EXPECT_EQ(q["sum"], 400);
  EXPECT_EQ(q["min"], 0);
  EXPECT_EQ(q["max"], 300);
  EXPECT_DOUBLE_EQ(q["avg"].get<double>(), 100.0);
  EXPECT_EQ(q["distinct"], 2);
  EXPECT_EQ(q["exact"], true);
  EXPECT_FALSE(q.contains("distinct_error"));
  EXPECT_GT(q["covered_to_ms"].get<int64_t>(),
            q["covered_from_ms"].get<int64_t>());
  EXPECT_LE(
      q["covered_to_ms"].get<int64_t>() - q["covered_from_ms"].get<int64_t>(),
      300'000 + q["resolution_ms"].get<int64_t>());

  Json at = JsonCall({"QUERY", "user 42", "WINDOW", "60000", "AT",
                      std::to_string(now + 1000)});
  EXPECT_EQ(at["count"], 4);
  Json between =
      JsonCall({"QUERY", "user 42", "FROM", std::to_string(now - 60'000), "TO",
                std::to_string(now + 60'000)});
  EXPECT_EQ(between["count"], 4);

  Json range =
      JsonCall({"RANGE", "user 42", "FROM", std::to_string(now - 120'000), "TO",
                std::to_string(now + 60'000), "STEP", "1m"});
  ASSERT_TRUE(range["buckets"].is_array());
  ASSERT_EQ(range["buckets"].size(), 3u);
  int64_t total = 0;
  for (size_t i = 0; i < 3; ++i) {
    const Json& b = range["buckets"][i];
    EXPECT_EQ(b["start_ms"], now - 120'000 + static_cast<int64_t>(i) * 60'000);
    ExpectQueryShape(b);
    total += b["count"].get<int64_t>();
  }
  EXPECT_EQ(total, 4);

  Json inspect = JsonCall({"INSPECT", "user 42"});
  EXPECT_EQ(inspect["key"], "user 42");
  EXPECT_EQ(inspect["policy"], "default");
  EXPECT_TRUE(inspect["tiers"].is_array());
  EXPECT_FALSE(inspect["tiers"].empty());

  Json scan = JsonCall({"SCAN", "0", "MATCH", "user*", "COUNT", "100"});
  EXPECT_EQ(scan, Json::parse(R"({"cursor":0,"keys":["user 42"]})"));

  Json info = JsonCall({"INFO"});
  EXPECT_EQ(info["info"]["server"]["server"], "tallyd");
  EXPECT_EQ(JsonCall({"info", "keyspace"})["info"]["keyspace"]["keys"], 1);

  EXPECT_EQ(JsonCall({"DEL", "user 42", "nope"}),
            Json::parse(R"({"deleted":1,"existed":[true,false]})"));
  EXPECT_EQ(JsonCall({"INSPECT", "user 42"}, 1)["error"]["code"], "NOT_FOUND");
  EXPECT_EQ(JsonCall({"QUERY", "user 42", "WINDOW", "5m"})["count"], 0);
}

TEST_F(TallyCliTest, ErrorsAsJson) {
  Json old = JsonCall({"ADD", "k", "TS", "5"}, 1);
  EXPECT_EQ(old["error"]["code"], "TIME_OUT_OF_RANGE");
  EXPECT_TRUE(old["error"]["message"].is_string());
  EXPECT_EQ(JsonCall({"FLY"}, 1),
            Json::parse(
                R"j({"error":{"code":"INVALID_ARGUMENT",)j"
                R"j("message":"unknown command 'FLY' (try COMMAND LIST)"}})j"));
  EXPECT_EQ(JsonCall({"QUERY", "k", "WINDOW", "5x"}, 1)["error"]["code"],
            "ERR");
  EXPECT_EQ(JsonCall({"RANGE", "k", "FROM", "10", "TO", "5", "STEP", "1s"},
                     1)["error"]["code"],
            "INVALID_WINDOW");
}

TEST_F(TallyCliTest, EstimatedDistinctCarriesItsError) {
  // tallyd runs with --distinct_exact_limit=10.
  std::ofstream(tmp_ / "members.txt") << [] {
    std::string lines;
    for (int i = 0; i < 200; ++i) {
      lines += "ADD card MEMBER m" + std::to_string(i) + "\n";
    }
    return lines;
  }();
  RunResult fill = Shell(Cli() + " < " + (tmp_ / "members.txt").string());
  ASSERT_EQ(fill.exit_code, 0) << fill.out;
  Json q = JsonCall({"QUERY", "card", "WINDOW", "1h"});
  EXPECT_EQ(q["count"], 200);
  EXPECT_EQ(q["exact"], false);
  ASSERT_TRUE(q.contains("distinct_error"));
  EXPECT_GT(q["distinct_error"].get<double>(), 0);
  EXPECT_NEAR(q["distinct"].get<double>(), 200, 40);
}

TEST_F(TallyCliTest, AdminCommandsGoToTheServer) {
  ASSERT_EQ(Shell(Cli() + " ADD k1").exit_code, 0);
  ASSERT_EQ(Shell(Cli() + " ADD k2").exit_code, 0);
  RunResult dbsize = Shell(Cli() + " dbsize");
  EXPECT_EQ(dbsize.exit_code, 0);
  EXPECT_EQ(dbsize.out, "(integer) 2\n");
  RunResult list = Shell(Cli() + " COMMAND LIST");
  EXPECT_EQ(list.exit_code, 0);
  EXPECT_NE(list.out.find(") \"DBSIZE\"\n"), std::string::npos) << list.out;
  Json docs = JsonCall({"COMMAND", "DOCS", "dbsize"});
  EXPECT_EQ(docs["DBSIZE"]["arity"], 1);
  EXPECT_EQ(docs["DBSIZE"]["syntax"], "DBSIZE");
  // S7: CONFIG reads every flag but changes only the run-time limits.
  Json flags = JsonCall({"CONFIG", "GET", "*"});
  EXPECT_TRUE(flags.contains("data_dir")) << flags;
  EXPECT_EQ(flags["max_key_bytes"], "256");
  EXPECT_FALSE(flags.contains("logtostderr"));  // glog's, not tallyd's
  RunResult path = Shell(Cli() + " CONFIG SET data_dir /tmp/elsewhere");
  EXPECT_EQ(path.exit_code, 1);
  EXPECT_EQ(path.out.rfind("(error) NO_PERMISSION: 'data_dir' cannot be "
                           "changed at run time",
                           0),
            0u)
      << path.out;
  EXPECT_EQ(Shell(Cli() + " CONFIG SET max_key_bytes 64").out, "OK\n");
  EXPECT_EQ(JsonCall({"CONFIG", "GET", "max_key*"})["max_key_bytes"], "64");
  RunResult arity = Shell(Cli() + " DBSIZE now");
  EXPECT_EQ(arity.exit_code, 1);
  EXPECT_EQ(arity.out,
            "(error) INVALID_ARGUMENT: wrong number of arguments for "
            "'DBSIZE'; syntax: DBSIZE\n");
}

TEST_F(TallyCliTest, MonitorPrintsAnotherClientsRequestsUntilKilled) {
  int out[2];
  ASSERT_EQ(pipe(out), 0);
  const std::string port = std::to_string(port_);
  const pid_t monitor = fork();
  ASSERT_GE(monitor, 0);
  if (monitor == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    dup2(out[1], STDOUT_FILENO);
    close(out[0]);
    close(out[1]);
    execl(TALLY_BIN, TALLY_BIN, "-p", port.c_str(), "MONITOR", "MATCH", "cli:*",
          static_cast<char*>(nullptr));
    _exit(127);
  }
  close(out[1]);
  // Reads stdout until `want` shows up (or 15 s pass: a failure).
  std::string text;
  auto read_until = [&](const std::string& want) {
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::seconds(15);
    while (text.find(want) == std::string::npos &&
           std::chrono::steady_clock::now() < deadline) {
      pollfd p{.fd = out[0], .events = POLLIN, .revents = 0};
      if (poll(&p, 1, 100) <= 0) continue;
      char c[256];
      const ssize_t n = read(out[0], c, sizeof c);
      if (n <= 0) break;
      text.append(c, static_cast<size_t>(n));
    }
    return text.find(want) != std::string::npos;
  };
  EXPECT_TRUE(read_until("OK\n")) << text;  // attached
  ASSERT_EQ(Shell(Cli() + " ADD other:1").exit_code, 0);
  ASSERT_EQ(Shell(Cli() + " ADD cli:1").exit_code, 0);
  EXPECT_TRUE(read_until("] add \"cli:1\"\n")) << text;
  EXPECT_EQ(text.find("other:1"), std::string::npos) << text;  // MATCH
  kill(monitor, SIGTERM);
  int status = 0;
  waitpid(monitor, &status, 0);
  close(out[0]);

  // A pipe cannot carry a stream: refused, the other lines still run.
  RunResult piped = Shell("printf 'MONITOR\\nPING\\n' | " + Cli());
  EXPECT_EQ(piped.exit_code, 1);
  EXPECT_NE(piped.out.find("MONITOR streams until interrupted"),
            std::string::npos)
      << piped.out;
  EXPECT_NE(piped.out.find("PONG"), std::string::npos) << piped.out;
}

TEST_F(TallyCliTest, TextRepliesAndExitCodes) {
  RunResult ping = Shell(Cli() + " ping");
  EXPECT_EQ(ping.exit_code, 0);
  EXPECT_EQ(ping.out, "PONG\n");
  RunResult add = Shell(Cli() + " ADD \"a b\" AMOUNT -5");
  EXPECT_EQ(add.exit_code, 0);
  EXPECT_EQ(add.out, "OK\n");
  RunResult query = Shell(Cli() + " QUERY \"a b\" WINDOW 1h");
  EXPECT_EQ(query.exit_code, 0);
  EXPECT_NE(query.out.find("count: 1\nsum: -5\n"), std::string::npos)
      << query.out;
  RunResult del = Shell(Cli() + " DEL \"a b\"");
  EXPECT_EQ(del.out, "(integer) 1\n");

  RunResult unknown = Shell(Cli() + " FLY");
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_EQ(unknown.out,
            "(error) INVALID_ARGUMENT: unknown command 'FLY' (try COMMAND "
            "LIST)\n");
  RunResult arity = Shell(Cli() + " INSPECT");
  EXPECT_EQ(arity.exit_code, 1);
  EXPECT_EQ(arity.out,
            "(error) ERR wrong number of arguments for 'INSPECT' command\n");
  RunResult late = Shell(Cli() + " ADD k TS 5");
  EXPECT_EQ(late.exit_code, 1);
  EXPECT_EQ(late.out.rfind("(error) TIME_OUT_OF_RANGE: ", 0), 0u) << late.out;

  RunResult help = Shell(std::string(TALLY_BIN) + " --help");
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.out.find("--json"), std::string::npos);
  RunResult version = Shell(std::string(TALLY_BIN) + " --version");
  EXPECT_EQ(version.exit_code, 0);
  EXPECT_EQ(version.out.rfind("tally ", 0), 0u);
  EXPECT_NE(Shell(std::string(TALLY_BIN) + " --bogus 2>/dev/null").exit_code,
            0);
}

TEST_F(TallyCliTest, UnreachableServerFailsWithinTheTimeout) {
  // A port nobody listens on: bind-free port 1 is refused at once.
  const auto start = std::chrono::steady_clock::now();
  RunResult run = Shell(std::string(TALLY_BIN) + " -p 1 -t 0.5 --json PING");
  EXPECT_EQ(run.exit_code, 1);
  Json j = Json::parse(run.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << run.out;
  const std::string code = j["error"]["code"];
  EXPECT_TRUE(code == "UNAVAILABLE" || code == "DEADLINE_EXCEEDED") << code;
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
}

TEST_F(TallyCliTest, PipeModeFiveThousandLines) {
  constexpr int kLines = 5000;
  const std::vector<int> bad = {777, 2500, 4321};  // 1-based line numbers
  std::string input;
  int adds = 0;
  for (int line = 1; line <= kLines; ++line) {
    if (line == bad[0]) {
      input += "FLY away\n";
    } else if (line == bad[1]) {
      input += "QUERY pk WINDOW 5x\n";
    } else if (line == bad[2]) {
      input += "ADD pk TS 5\n";  // a server-side error
    } else if (line == kLines || line % 10 == 0) {
      input += "QUERY pk WINDOW 1h\n";
    } else {
      input += "ADD pk AMOUNT 2\n";
      ++adds;
    }
  }
  const std::filesystem::path in = tmp_ / "in.txt";
  std::ofstream(in) << input;

  const auto start = std::chrono::steady_clock::now();
  RunResult run = Shell(Cli("--json") + " < " + in.string());
  const auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(run.exit_code, 1);                   // some lines failed
  EXPECT_LT(elapsed, std::chrono::seconds(10));  // pipelined, not 5000 RTTs

  std::vector<Json> replies;
  std::istringstream lines(run.out);
  for (std::string line; std::getline(lines, line);) {
    replies.push_back(Json::parse(line, nullptr, false));
    ASSERT_FALSE(replies.back().is_discarded()) << line;
  }
  ASSERT_EQ(replies.size(), static_cast<size_t>(kLines));
  int errors = 0;
  int64_t last_count = -1;
  for (int line = 1; line <= kLines; ++line) {
    const Json& r = replies[line - 1];
    if (r.contains("error")) {
      ++errors;
      if (line == bad[0]) {  // an unknown command: the server refuses it
        EXPECT_EQ(r["error"]["code"], "INVALID_ARGUMENT") << "line " << line;
      } else if (line == bad[1]) {  // a syntax error the CLI catches
        EXPECT_EQ(r["error"]["code"], "ERR") << "line " << line;
      } else {
        EXPECT_EQ(line, bad[2]) << r;
        EXPECT_EQ(r["error"]["code"], "TIME_OUT_OF_RANGE");
      }
    } else if (r.contains("count")) {
      // Lines run in order: a query sees every add above it.
      EXPECT_GT(r["count"].get<int64_t>(), last_count) << "line " << line;
      last_count = r["count"];
    } else {
      EXPECT_EQ(r["ok"], true) << "line " << line;
    }
  }
  EXPECT_EQ(errors, 3);
  EXPECT_EQ(replies.back()["count"], adds);
  EXPECT_EQ(replies.back()["sum"], 2 * adds);

  // Text mode: still one line per reply.
  RunResult text = Shell(Cli() + " < " + in.string());
  EXPECT_EQ(std::count(text.out.begin(), text.out.end(), '\n'), kLines);
  std::istringstream text_lines(text.out);
  std::string line;
  for (int n = 1; std::getline(text_lines, line); ++n) {
    if (n == bad[0]) {
      EXPECT_EQ(line,
                "(error) INVALID_ARGUMENT: unknown command 'FLY' (try "
                "COMMAND LIST)");
    }
    if (n == 10) {
      EXPECT_EQ(line.rfind("count=", 0), 0u) << line;
    }
  }
}

// The REPL on a real terminal: tmux gives it one.
class Tmux {
 public:
  explicit Tmux(const std::string& socket) : socket_(socket) {}
  ~Tmux() { Shell("tmux -L " + socket_ + " kill-server 2>/dev/null"); }
  bool Start(const std::string& command) {
    return Shell("tmux -L " + socket_ +
                 " new-session -d -s repl -x 160 -y 50 " + Quoted(command))
               .exit_code == 0;
  }
  void Type(const std::string& keys) {
    Shell("tmux -L " + socket_ + " send-keys -t repl -l " + Quoted(keys));
  }
  void Press(const std::string& key) {
    Shell("tmux -L " + socket_ + " send-keys -t repl " + key);
  }
  std::string Screen() {
    return Shell("tmux -L " + socket_ + " capture-pane -p -t repl").out;
  }
  // Polls the screen until it contains `text` (5 s at most).
  bool WaitFor(const std::string& text) {
    for (int i = 0; i < 100; ++i) {
      if (Screen().find(text) != std::string::npos) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }

 private:
  std::string socket_;
};

TEST_F(TallyCliTest, ReplThroughTmux) {
  if (Shell("tmux -V >/dev/null 2>&1").exit_code != 0) {
    GTEST_SKIP() << "tmux is not installed (tools/install-deps.sh)";
  }
  const std::filesystem::path history = tmp_ / "history";
  Tmux tmux("tally-cli-test-" + std::to_string(getpid()));
  ASSERT_TRUE(tmux.Start("env TALLY_CLI_HISTFILE=" + history.string() +
                         " TERM=xterm timeout -k 5 60 " + Cli()));
  const std::string prompt =
      "127.0.0.1:" + std::to_string(port_) + ">";  // capture-pane trims blanks
  ASSERT_TRUE(tmux.WaitFor(prompt)) << tmux.Screen();

  tmux.Type("PING");
  tmux.Press("Enter");
  EXPECT_TRUE(tmux.WaitFor("PONG")) << tmux.Screen();
  tmux.Type("ADD \"repl key\" AMOUNT 7");
  tmux.Press("Enter");
  EXPECT_TRUE(tmux.WaitFor("OK")) << tmux.Screen();
  tmux.Type("query \"repl key\" window 5m");
  tmux.Press("Enter");
  EXPECT_TRUE(tmux.WaitFor("count: 1")) << tmux.Screen();
  EXPECT_TRUE(tmux.WaitFor("sum: 7")) << tmux.Screen();
  // TAB completes the command name.
  tmux.Type("INSP");
  tmux.Press("Tab");
  tmux.Type(" \"repl key\"");
  tmux.Press("Enter");
  EXPECT_TRUE(tmux.WaitFor("policy: default")) << tmux.Screen();
  tmux.Type("BOGUS");
  tmux.Press("Enter");
  EXPECT_TRUE(tmux.WaitFor(
      "(error) INVALID_ARGUMENT: unknown command 'BOGUS' (try COMMAND LIST)"))
      << tmux.Screen();
  tmux.Type("QUIT");
  tmux.Press("Enter");
  // History was saved.
  bool saved = false;
  for (int i = 0; i < 100 && !saved; ++i) {
    std::ifstream file(history);
    std::stringstream s;
    s << file.rdbuf();
    saved = s.str().find("PING") != std::string::npos;
    if (!saved) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_TRUE(saved) << "no history in " << history;
}

}  // namespace
