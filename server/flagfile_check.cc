#include "server/flagfile_check.h"

namespace tally {

Status CheckFlagfile(std::string_view name, std::string_view text,
                     const std::function<bool(std::string_view)>& is_flag) {
  size_t line_number = 0;
  while (!text.empty()) {
    const size_t end = text.find('\n');
    std::string_view line = text.substr(0, end);
    text = end == std::string_view::npos ? std::string_view()
                                         : text.substr(end + 1);
    ++line_number;
    // gflags strips leading whitespace and a trailing '\r' is not part of
    // the name either.
    while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) {
      line.remove_prefix(1);
    }
    while (!line.empty() &&
           (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) {
      line.remove_suffix(1);
    }
    if (line.empty() || line.front() == '#' || line.front() != '-') continue;
    line.remove_prefix(line.size() > 1 && line[1] == '-' ? 2 : 1);
    const std::string_view flag = line.substr(0, line.find('='));
    if (is_flag(flag)) continue;
    if (flag.size() > 2 && flag.substr(0, 2) == "no" &&
        line.find('=') == std::string_view::npos && is_flag(flag.substr(2))) {
      continue;  // --nofoo: gflags' false for bool foo
    }
    return Status::InvalidArgument(std::string(name) + ":" +
                                   std::to_string(line_number) +
                                   ": unknown flag --" + std::string(flag));
  }
  return Status::Ok();
}

}  // namespace tally
