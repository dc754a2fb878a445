// LimitStats: counters of the resource limits (docs/operations.md,
// "Limits"): connections, and every rejection by reason. Bumped by the
// Server, each Connection and the Service with relaxed atomics (a counter is
// never used to synchronise anything); shown by INFO limits.

#ifndef TALLY_SERVER_LIMIT_STATS_H_
#define TALLY_SERVER_LIMIT_STATS_H_

#include <atomic>
#include <cstdint>

namespace tally {

struct LimitStats {
  using Counter = std::atomic<uint64_t>;

  static void Bump(Counter& c) { c.fetch_add(1, std::memory_order_relaxed); }

  // The effective --max_connections (after the RLIMIT_NOFILE clamp); 0
  // until a server has started.
  Counter max_connections{0};
  Counter connections_current{0};
  Counter connections_total{0};
  // Rejections and limit events, by reason.
  Counter rejected_max_connections{0};  // refused at accept
  Counter accept_retries{0};            // accept failed (EMFILE...), backed off
  Counter frame_timeout{0};             // closed: a frame too slow (slowloris)
  Counter idle_timeout{0};              // closed: no frame for --idle_timeout_s
  Counter frame_too_large{0};   // closed: a header over --max_frame_bytes
  Counter protocol_error{0};    // closed: broken framing (magic, version...)
  Counter output_paused{0};     // reads paused: replies over the output cap
  Counter in_flight_paused{0};  // reads paused: requests over the in-flight cap
  Counter max_memory{0};        // add items refused: new key at --max_memory
  Counter key_too_long{0};      // items refused: key over --max_key_bytes
  Counter batch_too_large{0};   // requests refused: over --max_batch_items
  // Closed at accept, before any TLS or frame: the source is in AUTH
  // back-off (server/auth.h AuthThrottle).
  Counter auth_backoff{0};
  Counter auth_failures_delayed{0};  // failed AUTH replies held back
  // Admin operations refused: the peer is not loopback and
  // --admin_allow_remote is off.
  Counter admin_remote{0};
  // Requests refused: their token's ops/s bucket was empty.
  Counter token_rate{0};
};

}  // namespace tally

#endif  // TALLY_SERVER_LIMIT_STATS_H_
