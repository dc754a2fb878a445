// RuntimeConfig: the settings an operator may read and change while tallyd
// runs (CONFIG GET / CONFIG SET, server/config_commands.h), like Redis'
// CONFIG over its config table.
//
// Each component registers the settings it can change safely at run time,
// with a getter and a validating setter that stores the new value where the
// component reads it (an atomic). Everything else (paths, durability,
// listeners, TLS, tokens) can be read but never set: a protocol command must
// not move files or turn on debug features (RELIABILITY.md S7). The
// read-only values come from a snapshot function supplied by tallyd's main,
// the only place that reads flags.
//
// Thread safety: Register*/SetReadOnlySource must finish before serving;
// Get/Set may then be called from many threads (setters must be
// thread-safe; two concurrent Sets of one setting: the last one wins).

#ifndef TALLY_SERVER_RUNTIME_CONFIG_H_
#define TALLY_SERVER_RUNTIME_CONFIG_H_

#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "protocol/result.h"
#include "protocol/status.h"

namespace tally {

// "64M" -> 64 MiB: digits with an optional K/M/G suffix (powers of 1024).
// Flags and CONFIG SET take sizes in this form.
Result<int64_t> ParseByteSize(std::string_view text);

class RuntimeConfig {
 public:
  using Getter = std::function<std::string()>;
  // Validates `value` and applies it; an error leaves the setting unchanged.
  using Setter = std::function<Status(std::string_view value)>;
  // Every startup setting's name and value (the flags), for CONFIG GET.
  using ReadOnlySource =
      std::function<std::vector<std::pair<std::string, std::string>>()>;

  // A setting changeable at run time. `help` says what it does and its
  // range. REQUIRES: the name is not registered yet.
  void Register(std::string name, std::string help, Getter get, Setter set);
  void SetReadOnlySource(ReadOnlySource source) {
    read_only_ = std::move(source);
  }
  // Called by CONFIG RESETSTAT (statistics counters).
  void AddStatsReset(std::function<void()> reset) {
    resets_.push_back(std::move(reset));
  }

  // Settings whose name matches the glob `pattern` (fnmatch(3)), sorted by
  // name: the run-time ones with their current value, then the read-only
  // ones not shadowed by a run-time one.
  std::vector<std::pair<std::string, std::string>> Get(
      std::string_view pattern) const;
  // INVALID_ARGUMENT for a bad value or an unknown name; NO_PERMISSION for a
  // setting that exists but cannot change at run time.
  Status Set(std::string_view name, std::string_view value) const;
  void ResetStats() const;
  bool IsSettable(std::string_view name) const {
    return settable_.contains(name);
  }

 private:
  struct Setting {
    std::string help;
    Getter get;
    Setter set;
  };
  std::map<std::string, Setting, std::less<>> settable_;
  ReadOnlySource read_only_;
  std::vector<std::function<void()>> resets_;
};

}  // namespace tally

#endif  // TALLY_SERVER_RUNTIME_CONFIG_H_
