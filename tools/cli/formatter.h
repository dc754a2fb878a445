// Formatter: a reply -> the text the operator sees. Pure (no I/O), unit
// tested against golden strings.
//
// Three shapes:
//   text        redis-cli-like typed text, possibly several lines
//               ("PONG", "OK", "(integer) 2", "count: 3" lines, "1) ..." lists)
//   one-line    the same words on exactly one line (pipe mode: one reply per
//               input line)
//   JSON        one JSON object on one line (--json), e.g. {"ok":true,
//               "duplicate":false} or {"error":{"code":"TIME_OUT_OF_RANGE",
//               "message":"..."}}
// Errors are "(error) CODE_NAME: message" for server and transport errors
// and "(error) ERR message" for the CLI's own syntax errors (JSON code
// "ERR"). Returned strings never end with a newline.

#ifndef TALLY_TOOLS_CLI_FORMATTER_H_
#define TALLY_TOOLS_CLI_FORMATTER_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/messages.h"
#include "protocol/status.h"

namespace tally::cli {

struct FormatOptions {
  bool json = false;
  bool one_line = false;  // text only: never emit a newline
  bool chart = false;     // text only, multi-line: sparkline under RANGE
};

// The reply `response` to `request`. Per-item errors of a single-item ADD or
// QUERY are shown as the reply's error.
std::string FormatResponse(const proto::Request& request,
                           const proto::Response& response,
                           const FormatOptions& options);

// An admin command's reply (tools/cli/admin_reply_format.cc): redis-cli's
// "(integer) 3", "(nil)", "1) ..." arrays and "1# name => value" maps.
std::string FormatAdminReply(const proto::AdminReply& reply,
                             const FormatOptions& options);

// True when `response` is an error or carries a per-item error.
bool IsError(const proto::Response& response);

// A server or transport error: "(error) TIME_OUT_OF_RANGE: message".
std::string FormatError(Code code, std::string_view message,
                        const FormatOptions& options);

// The CLI's own error (unknown command, bad arguments): "(error) ERR message".
std::string FormatSyntaxError(std::string_view message,
                              const FormatOptions& options);

// A one-line chart of `values` with the blocks ▁▂▃▄▅▆▇█, scaled from 0 to the
// largest value; at most `width` characters (neighbours are summed to fit).
std::string Sparkline(const std::vector<int64_t>& values, size_t width = 80);

// redis-cli's quoting of a binary string: "a b", "line\n", "\x00".
std::string Quote(std::string_view bytes);

}  // namespace tally::cli

#endif  // TALLY_TOOLS_CLI_FORMATTER_H_
