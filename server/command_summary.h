// CommandSummary: what SLOWLOG and MONITOR show of a request, Redis style:
// the operation's name, its first key (or the admin command's words) and
// how many more items the batch had. Never a token: an AUTH request is
// summarized as just "auth", and callers log no AUTH at all.
//
// Cheap on purpose: it copies one key (usually short enough for the string's
// inline buffer) and, for admin requests only, their words, so a connection
// can keep one per request that is answered later.
//
// Thread safety: a plain value.

#ifndef TALLY_SERVER_COMMAND_SUMMARY_H_
#define TALLY_SERVER_COMMAND_SUMMARY_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/messages.h"

namespace tally {

struct CommandSummary {
  proto::Op op = proto::Op::kNone;
  bool has_key = false;
  std::string key;     // the first item's key (or the range/inspect key)
  uint64_t items = 0;  // items in the batch (adds + queries, keys)
  std::vector<std::string> admin_args;  // kAdmin only: the command words
  std::string detail;  // scan pattern, info section, hello client name

  static CommandSummary Of(const proto::Request& request);

  // The words: the op name (or, for admin, the command's words), then the
  // key, then "... (N more items)" for a batch of more than one.
  std::vector<std::string> Words() const;
};

}  // namespace tally

#endif  // TALLY_SERVER_COMMAND_SUMMARY_H_
