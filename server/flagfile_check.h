// Finds the flags in a gflags --flagfile that the program does not define.
//
// Why: gflags silently ignores unknown flags read from a flagfile (on the
// command line it rejects them), so a typo in /etc/tally/tallyd.flags
// ("--prot=7380") would start tallyd with the default instead. tallyd_main
// runs this over every --flagfile and refuses to start on a finding.
//
// Pure (no gflags, no files): the caller passes the text and a predicate
// that knows the program's flags (gflags::GetCommandLineFlagInfo).

#ifndef TALLY_SERVER_FLAGFILE_CHECK_H_
#define TALLY_SERVER_FLAGFILE_CHECK_H_

#include <functional>
#include <string>
#include <string_view>

#include "protocol/status.h"

namespace tally {

// Checks each flag line of `text` (the contents of flagfile `name`) with
// `is_flag`. gflags' flagfile grammar: blank lines and lines starting with
// '#' are skipped; a line starting with '-' is "-name", "--name",
// "-name=value" or "--name=value"; "--noname" is accepted when `name` is a
// flag (gflags' negated bool); any other line is a program-name glob, which
// scopes later lines in gflags and is left alone here. Returns
// INVALID_ARGUMENT "NAME:LINE: unknown flag --x" for the first unknown one.
[[nodiscard]] Status CheckFlagfile(
    std::string_view name, std::string_view text,
    const std::function<bool(std::string_view)>& is_flag);

}  // namespace tally

#endif  // TALLY_SERVER_FLAGFILE_CHECK_H_
