#include "server/allocator_stats.h"

#include <cstddef>
#include <string>

// jemalloc's control interface (unprefixed in Debian's libjemalloc). Weak:
// null unless the executable links jemalloc (see the header).
extern "C" int mallctl(const char* name, void* oldp, size_t* oldlenp,
                       void* newp, size_t newlen) __attribute__((weak));

namespace tally {

namespace {

bool Read(const char* name, uint64_t* out) {
  size_t value = 0;
  size_t len = sizeof(value);
  if (mallctl(name, &value, &len, nullptr, 0) != 0) return false;
  *out = value;
  return true;
}

}  // namespace

std::optional<AllocatorStats> ReadAllocatorStats() {
  if (mallctl == nullptr) return std::nullopt;
  // Statistics are cached; writing the epoch refreshes them.
  uint64_t epoch = 1;
  size_t len = sizeof(epoch);
  if (mallctl("epoch", &epoch, &len, &epoch, len) != 0) return std::nullopt;
  AllocatorStats s;
  if (!Read("stats.allocated", &s.allocated) ||
      !Read("stats.active", &s.active) ||
      !Read("stats.resident", &s.resident) ||
      !Read("stats.mapped", &s.mapped) ||
      !Read("stats.retained", &s.retained)) {
    return std::nullopt;  // jemalloc built without --enable-stats
  }
  return s;
}

const char* AllocatorName() {
  if (mallctl == nullptr) return "libc";
  const char* version = nullptr;
  size_t len = sizeof(version);
  if (mallctl("version", &version, &len, nullptr, 0) != 0 ||
      version == nullptr) {
    return "jemalloc";
  }
  // jemalloc's version string is static; prefix it once.
  static const std::string name = std::string("jemalloc-") + version;
  return name.c_str();
}

}  // namespace tally
