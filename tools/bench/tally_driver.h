// W1 against a running tallyd through its own protocol (WireConnection): the
// System that tally-bench's network mode and perf/compare.sh drive.

#ifndef TALLY_TOOLS_BENCH_TALLY_DRIVER_H_
#define TALLY_TOOLS_BENCH_TALLY_DRIVER_H_

#include <mutex>
#include <string>

#include "tools/bench/driver.h"
#include "tools/bench/wire_connection.h"

namespace tally::bench {

class TallySystem : public System {
 public:
  // `tls_ca_file` non-empty: every connection is TLS, verified against it.
  TallySystem(std::string host, uint16_t port, std::string tls_ca_file = "");
  std::string name() const override { return "tally"; }
  Result<std::unique_ptr<SystemConnection>> Connect() override;
  // cpu_seconds, rss_bytes (memory) and used_bytes (accounted) from INFO.
  SystemStats Stats() override;

 private:
  const std::string host_;
  const uint16_t port_;
  std::unique_ptr<boost::asio::ssl::context> tls_;  // null: plaintext
  std::mutex mu_;
  std::unique_ptr<WireConnection> info_;  // guarded by mu_
};

}  // namespace tally::bench

#endif  // TALLY_TOOLS_BENCH_TALLY_DRIVER_H_
