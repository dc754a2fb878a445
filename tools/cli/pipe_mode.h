// Pipe mode: stdin is not a terminal, so read one command per line and write
// exactly one reply line per input line, in input order, while keeping up to
// `window` requests in flight (pipelined; thousands of lines per second).
// A bad line gets its "(error) ERR ..." line and the run goes on.
//
//   RunPipe(std::cin, std::cout, {.format = {.json = true, .one_line = true}},
//           [&](proto::Request r, auto done) { client.CallAsync(...); });
//
// Thread safety: `execute` may call `done` on any thread, at most once per
// call, possibly before `execute` returns.

#ifndef TALLY_TOOLS_CLI_PIPE_MODE_H_
#define TALLY_TOOLS_CLI_PIPE_MODE_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <istream>
#include <ostream>

#include "protocol/messages.h"
#include "tools/cli/formatter.h"

namespace tally::cli {

using AsyncExecutor = std::function<void(
    proto::Request request, std::function<void(proto::Response)> done)>;

struct PipeOptions {
  FormatOptions format;  // one_line is forced on
  size_t window = 256;   // requests in flight (keep below the client's
                         // max_in_flight)
};

struct PipeStats {
  uint64_t replies = 0;  // lines written
  uint64_t errors = 0;   // of which errors (syntax, server or transport)
};

// Runs until `in` ends or a QUIT line (answered "OK"). Blocks until every
// reply is written.
PipeStats RunPipe(std::istream& in, std::ostream& out,
                  const PipeOptions& options, const AsyncExecutor& execute);

}  // namespace tally::cli

#endif  // TALLY_TOOLS_CLI_PIPE_MODE_H_
