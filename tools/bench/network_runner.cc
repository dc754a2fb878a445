#include "tools/bench/network_runner.h"

#include "tools/bench/system_runner.h"
#include "tools/bench/tally_driver.h"

namespace tally::bench {

BenchReport RunNetwork(const RunOptions& options, const std::string& host,
                       uint16_t port) {
  TallySystem tally(host, port);
  return RunSystem(options, &tally);
}

}  // namespace tally::bench
