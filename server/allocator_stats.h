// AllocatorStats: jemalloc's own view of the heap, for INFO memory and the
// Prometheus endpoint (tally_allocator_*_bytes).
//
// Libraries never link an allocator (tools/allocator_config.cc; only
// executables do, through tally_link_allocator), so the server library
// cannot call jemalloc directly. It declares jemalloc's `mallctl` as a weak
// symbol instead: in an executable linked with jemalloc it resolves, and in
// one without (sanitizer builds, tests) it is null and ReadAllocatorStats
// returns nullopt, so the figures are omitted rather than made up.
//
// Thread safety: ReadAllocatorStats may be called from any thread (mallctl
// is thread-safe); it refreshes jemalloc's statistics epoch, so it costs
// microseconds and belongs on a scrape or INFO, never on a request path.

#ifndef TALLY_SERVER_ALLOCATOR_STATS_H_
#define TALLY_SERVER_ALLOCATOR_STATS_H_

#include <cstdint>
#include <optional>

namespace tally {

struct AllocatorStats {
  uint64_t allocated = 0;  // bytes the application holds (stats.allocated)
  uint64_t active = 0;     // bytes in active pages (stats.active)
  uint64_t resident = 0;   // bytes resident in the allocator (stats.resident)
  uint64_t mapped = 0;     // bytes mapped by the allocator (stats.mapped)
  uint64_t retained = 0;   // bytes retained, not returned to the OS
  // active / allocated, as Redis' allocator_frag_ratio.
  double frag_ratio() const {
    return allocated == 0 ? 0.0 : static_cast<double>(active) / allocated;
  }
};

// jemalloc's statistics, or nullopt when this process has no jemalloc.
std::optional<AllocatorStats> ReadAllocatorStats();

// "jemalloc-<version>" or "libc".
const char* AllocatorName();

}  // namespace tally

#endif  // TALLY_SERVER_ALLOCATOR_STATS_H_
