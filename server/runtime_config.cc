#include "server/runtime_config.h"

#include <fnmatch.h>

#include <algorithm>
#include <limits>
#include <string>

namespace tally {
namespace {

bool Matches(std::string_view pattern, const std::string& name) {
  const std::string p(pattern);
  return fnmatch(p.c_str(), name.c_str(), 0) == 0;
}

}  // namespace

Result<int64_t> ParseByteSize(std::string_view text) {
  if (text.empty()) return Status::InvalidArgument("empty size");
  int64_t unit = 1;
  switch (text.back()) {
    case 'k':
    case 'K':
      unit = int64_t{1} << 10;
      break;
    case 'm':
    case 'M':
      unit = int64_t{1} << 20;
      break;
    case 'g':
    case 'G':
      unit = int64_t{1} << 30;
      break;
    default:
      break;
  }
  if (unit != 1) text.remove_suffix(1);
  if (text.empty() || text.size() > 18 ||
      text.find_first_not_of("0123456789") != std::string_view::npos) {
    return Status::InvalidArgument(
        "not a size: digits with an optional "
        "K/M/G suffix expected");
  }
  const int64_t value = std::stoll(std::string(text));
  if (value > std::numeric_limits<int64_t>::max() / unit) {
    return Status::InvalidArgument("size too large");
  }
  return value * unit;
}

void RuntimeConfig::Register(std::string name, std::string help, Getter get,
                             Setter set) {
  settable_.emplace(std::move(name),
                    Setting{std::move(help), std::move(get), std::move(set)});
}

std::vector<std::pair<std::string, std::string>> RuntimeConfig::Get(
    std::string_view pattern) const {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& [name, setting] : settable_) {
    if (Matches(pattern, name)) out.emplace_back(name, setting.get());
  }
  if (read_only_) {
    for (auto& [name, value] : read_only_()) {
      if (!settable_.contains(name) && Matches(pattern, name)) {
        out.emplace_back(std::move(name), std::move(value));
      }
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

Status RuntimeConfig::Set(std::string_view name, std::string_view value) const {
  auto it = settable_.find(name);
  if (it != settable_.end()) return it->second.set(value);
  bool exists = false;
  if (read_only_) {
    for (const auto& [flag, unused] : read_only_()) {
      if (flag == name) exists = true;
    }
  }
  std::string settable;
  for (const auto& [n, setting] : settable_) {
    settable += (settable.empty() ? "" : ", ") + n;
  }
  if (exists) {
    return Status(Code::kNoPermission,
                  "'" + std::string(name) +
                      "' cannot be changed at run time; set the flag and "
                      "restart (settable: " +
                      settable + ")");
  }
  return Status::InvalidArgument("unknown setting '" + std::string(name) +
                                 "' (settable: " + settable + ")");
}

void RuntimeConfig::ResetStats() const {
  for (const auto& reset : resets_) reset();
}

}  // namespace tally
