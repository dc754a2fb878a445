// The CLI's special modes, modelled on redis-cli 7.0's (docs/operations.md,
// "CLI special modes"): --stat, --latency, --latency-history, --scan,
// --bigkeys, --memkeys and --hotkeys. Their output copies redis-cli's text
// (the golden strings in special_modes_test.cc were captured from
// redis-cli 7.0.15), with tally's fields where Redis' do not exist.
//
// The modes talk to the server only through the call functions below, so
// unit tests drive them with a fake server; formatting is split into pure
// functions (special_modes_format.cc).
//
// Thread safety: none needed; each mode runs on the caller's thread (the
// async call's completion may run on another thread: RunBigKeys waits for
// it under a mutex).

#ifndef TALLY_TOOLS_CLI_SPECIAL_MODES_H_
#define TALLY_TOOLS_CLI_SPECIAL_MODES_H_

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/messages.h"

namespace tally::cli {

// One request, its response (transport errors as error responses).
using CallFn = std::function<proto::Response(const proto::Request&)>;
// The same, answered through `done`, possibly on another thread.
using AsyncCallFn = std::function<void(
    proto::Request, std::function<void(proto::Response)> done)>;

struct SpecialModeOptions {
  // -i in seconds; < 0 when not given (each mode has its own default).
  double interval_s = -1;
  // --raw, or stdout is not a terminal: redis-cli's raw forms.
  bool raw = false;
  std::string pattern;  // --scan --pattern
  uint32_t count = 0;   // --count: SCAN COUNT / HOTKEYS COUNT; 0 = default
  // Requests in flight at once while --bigkeys/--memkeys inspect a page.
  size_t window = 64;
  // Stop after this many lines (--stat) or ranges (--latency-history);
  // < 0: until interrupted. For tests.
  int64_t max_lines = -1;
  // How the modes wait; tests replace it.
  std::function<void(double seconds)> sleep;
};

int RunStat(const CallFn& call, const SpecialModeOptions& options,
            std::ostream& out);
int RunLatency(const CallFn& call, bool history,
               const SpecialModeOptions& options, std::ostream& out);
int RunScan(const CallFn& call, const SpecialModeOptions& options,
            std::ostream& out);
// --bigkeys (memkeys = false: sizes in entries) or --memkeys (bytes).
int RunBigKeys(const AsyncCallFn& call, bool memkeys,
               const SpecialModeOptions& options, std::ostream& out);
int RunHotKeys(const CallFn& call, const SpecialModeOptions& options,
               std::ostream& out);

// ----------------------------------------------------------- pure formatting

// redis-cli's bytesToHuman: 1023B, 1.00K, 1.16M, 2.00G...
std::string BytesToHuman(int64_t bytes);

// INFO's "field:value" lines (section headers and blank lines skipped).
std::map<std::string, std::string, std::less<>> ParseInfo(
    std::string_view text);

// --stat: the two header lines, and one line from an INFO reply.
// *prev_requests carries the last line's request count for "(+delta)".
std::string StatHeader();
std::string StatLine(
    const std::map<std::string, std::string, std::less<>>& info,
    std::optional<int64_t>* prev_requests);

// --latency: "min: 0, max: 1, avg: 0.19 (97 samples)", or raw
// "0 1 0.19 97".
struct LatencyStats {
  int64_t min_ms = 0;
  int64_t max_ms = 0;
  int64_t total_ms = 0;
  int64_t count = 0;
  void Add(int64_t ms);
  double avg() const;
};
std::string LatencyFigures(const LatencyStats& stats, bool raw);

// --bigkeys/--memkeys: the running biggest key per policy and the summary,
// as redis-cli prints them per type (a tally key's "type" is its policy).
class KeySizeReport {
 public:
  // unit: "entries" (--bigkeys) or "bytes" (--memkeys).
  explicit KeySizeReport(std::string unit) : unit_(std::move(unit)) {}
  // The scan's opening lines.
  static std::string Banner();
  // Adds a key; returns the "[pct%] Biggest ..." line if it is the biggest
  // of its policy so far ("" otherwise). pct: as redis-cli, the share of
  // DBSIZE sampled before the key's SCAN page.
  std::string Add(std::string_view key, std::string_view policy, int64_t size,
                  double pct);
  std::string Summary() const;
  uint64_t sampled() const { return sampled_; }

 private:
  struct PerPolicy {
    uint64_t keys = 0;
    int64_t total = 0;
    std::string biggest_key;
    int64_t biggest = 0;  // as redis-cli: a key of size 0 is never "biggest"
    bool found = false;
  };
  std::string unit_;
  uint64_t sampled_ = 0;
  uint64_t key_bytes_ = 0;
  std::map<std::string, PerPolicy, std::less<>> policies_;
};

// --hotkeys: HOTKEYS' reply in redis-cli --hotkeys' shape.
std::string FormatHotKeys(const proto::AdminReply& reply);

}  // namespace tally::cli

#endif  // TALLY_TOOLS_CLI_SPECIAL_MODES_H_
