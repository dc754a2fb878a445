#include "tools/bench/network_runner.h"

#include "tools/bench/system_runner.h"
#include "tools/bench/tally_driver.h"

namespace tally::bench {

BenchReport RunNetwork(const RunOptions& options, const std::string& host,
                       uint16_t port, const std::string& tls_ca_file) {
  TallySystem tally(host, port, tls_ca_file);
  return RunSystem(options, &tally);
}

}  // namespace tally::bench
