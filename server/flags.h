// tallyd's command-line flags, turned into option structs. The only place
// (with tallyd_main.cc) that reads gflags values.

#ifndef TALLY_SERVER_FLAGS_H_
#define TALLY_SERVER_FLAGS_H_

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "protocol/result.h"
#include "server/auth.h"
#include "server/server.h"
#include "server/service.h"
#include "storage/dedupe_table.h"
#include "storage/engine.h"
#include "storage/journal.h"
#include "storage/recovery.h"

namespace tally {

struct TallydConfig {
  ServerOptions server;
  ServiceOptions service;
  PolicySet policies;
  std::string policy_file;  // empty: built-in policies
  uint32_t distinct_exact_limit = 1000;
  std::string data_dir;
  DedupeOptions dedupe;
  RecoveryMode recovery = RecoveryMode::kTolerateTornTail;
  // data_dir empty when --unsafe_no_wal.
  JournalOptions journal;
  bool unsafe_no_wal = false;
  // Security (docs/security.md). token_file empty: no authentication.
  std::string token_file;
  bool allow_root = false;
  // The bind policy's warning, logged at every start (empty: none).
  std::string bind_warning;
};

// Every tallyd flag (those defined in server/flags.cc) with its current
// value, for CONFIG GET.
std::vector<std::pair<std::string, std::string>> FlagValues();

// Validates the flags (and reads --policy_file) into a config.
Result<TallydConfig> ConfigFromFlags();

}  // namespace tally

#endif  // TALLY_SERVER_FLAGS_H_
