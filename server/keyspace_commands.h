// Admin commands about keys and memory (docs/operations.md, "Admin
// commands"): HOTKEYS [COUNT n], MEMORY USAGE key, MEMORY STATS. Kept out of
// service.cc, which registers them (Service::RegisterAdminCommands).

#ifndef TALLY_SERVER_KEYSPACE_COMMANDS_H_
#define TALLY_SERVER_KEYSPACE_COMMANDS_H_

#include <cstdint>
#include <functional>

#include "server/admin_commands.h"
#include "storage/dedupe_table.h"
#include "storage/engine.h"
#include "storage/hot_keys.h"

namespace tally {

struct KeyspaceCommandsContext {
  Engine* engine = nullptr;
  const DedupeTable* dedupe = nullptr;  // may be null: no dedupe figures
  const HotKeys* hot_keys = nullptr;
  // Milliseconds on the clock the hot-key tracker is fed with.
  std::function<int64_t()> now_ms;
};

// The most keys HOTKEYS answers with.
inline constexpr int64_t kMaxHotKeysCount = 1000;

// REQUIRES: context.engine, context.hot_keys and context.now_ms set; they
// outlive `commands`.
void RegisterKeyspaceCommands(AdminCommands* commands,
                              KeyspaceCommandsContext context);

}  // namespace tally

#endif  // TALLY_SERVER_KEYSPACE_COMMANDS_H_
