// Built against an installed tally (find_package or pkg-config) by
// tests/packaging/install_consumer_test.sh: adds N to a key on a running
// tallyd, reads its count back, exits 0 when it is EXPECTED.
//   consumer PORT KEY N EXPECTED

#include <tally/async.h>  // compiles too: the installed tree has what it needs
#include <tally/client.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: consumer PORT KEY N EXPECTED\n");
    return 2;
  }
  tally::ClientOptions options;
  options.endpoints = {
      {"127.0.0.1", static_cast<uint16_t>(std::atoi(argv[1]))}};
  options.default_timeout = std::chrono::seconds(5);
  tally::Client client(options);
  const std::string key = argv[2];
  const int n = std::atoi(argv[3]);
  for (int i = 0; i < n; ++i) {
    tally::CallResult<tally::proto::AddItemResult> added = client.Add(key);
    if (!added.ok() || added.value.code != tally::Code::kOk) {
      std::fprintf(stderr, "add failed: %s %s\n", added.message.c_str(),
                   added.value.message.c_str());
      return 1;
    }
  }
  tally::CallResult<tally::proto::Aggregates> counted =
      client.Query(key, 3'600'000, tally::proto::kAggCountBit);
  if (!counted.ok()) {
    std::fprintf(stderr, "query failed: %s\n", counted.message.c_str());
    return 1;
  }
  std::printf("count=%lld\n", static_cast<long long>(counted.value.count));
  return counted.value.count == std::atoll(argv[4]) ? 0 : 1;
}
