// The helpers of the resource-limit tests (tests/limits_test.cc for the
// connection limits P3-P9, tests/capacity_limits_test.cc for the configured
// caps, F4 and F5): an in-process server's options, a client whose reads
// give up after 5 s, INFO's counters and a bounded wait. The sockets and the
// tallyd child come from tests/support.

#ifndef TALLY_TESTS_LIMITS_HARNESS_H_
#define TALLY_TESTS_LIMITS_HARNESS_H_

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <string>
#include <thread>

#include "protocol/messages.h"
#include "server/in_process_server.h"
#include "tests/support/raw_connection.h"

namespace tally::limits_test {

using SteadyClock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using test::Req;
using test::RequestFrame;

inline double Ms(SteadyClock::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

// Raises the soft descriptor limit to at least `want` (up to the hard one);
// returns the soft limit now.
inline rlim_t RaiseNofile(rlim_t want) {
  rlimit r{};
  getrlimit(RLIMIT_NOFILE, &r);
  if (r.rlim_cur < want) {
    r.rlim_cur = std::min(want, r.rlim_max);
    setrlimit(RLIMIT_NOFILE, &r);
    getrlimit(RLIMIT_NOFILE, &r);
  }
  return r.rlim_cur;
}

inline proto::Request Add(std::string key, int64_t amount = 1) {
  proto::AddItem item;
  item.key = std::move(key);
  item.amount = amount;
  return Req(proto::AddRequest{{item}});
}

inline proto::Request Query(std::string key) {
  return Req(
      proto::QueryRequest{{proto::QueryItem::Last(std::move(key), 3'600'000)}});
}

// One request, one reply, on a connection whose reads give up after 5 s.
class Client : public test::RawConnection {
 public:
  explicit Client(uint16_t port)
      : RawConnection(port, {.read_timeout = milliseconds(5000)}) {}
  // Times one call (ms), or -1 when it failed.
  double TimedPing() {
    const auto start = SteadyClock::now();
    auto r = Call(Req(proto::PingRequest{}));
    return r && r->code == Code::kOk ? Ms(SteadyClock::now() - start) : -1;
  }
};

// "field:value" of an INFO section.
inline uint64_t InfoField(Client& client, const std::string& field,
                          const std::string& section = "limits") {
  auto r = client.Call(Req(proto::InfoRequest{section}));
  if (!r || r->code != Code::kOk) return UINT64_MAX;
  const std::string& text = std::get<proto::InfoResult>(r->body).text;
  const std::string key = "\n" + field + ":";
  const size_t at = text.find(key);
  if (at == std::string::npos) return UINT64_MAX;
  return std::stoull(text.substr(at + key.size()));
}

// Polls `done` every 10 ms for at most `limit`.
template <typename F>
bool WaitFor(F done, milliseconds limit = milliseconds(10000)) {
  const auto until = SteadyClock::now() + limit;
  while (SteadyClock::now() < until) {
    if (done()) return true;
    std::this_thread::sleep_for(milliseconds(10));
  }
  return done();
}

inline InProcessServerOptions Options() {
  InProcessServerOptions o;
  o.server.port = 0;
  o.server.threads = 2;
  return o;
}

}  // namespace tally::limits_test

#endif  // TALLY_TESTS_LIMITS_HARNESS_H_
