// Replays the fuzz targets (fuzz/targets.h) in every build, so the Release
// and ASan suites catch a regression without libFuzzer:
//   - every file in fuzz/regressions/<target>/ (inputs that once crashed)
//     and fuzz/seeds/<target>/ (committed seeds, if any);
//   - the seeds fuzz_seed_gen generates;
//   - a bounded number of seeded random mutations of those seeds (byte
//     flips, overwrites, truncations, splices): a small fuzz run that needs
//     no libFuzzer. TALLY_SEED=<n> replays one seed; TALLY_FUZZ_MUTATIONS
//     sets the number of mutations per seed (default 40).

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "fuzz/mem_file_system.h"
#include "fuzz/seeds.h"
#include "fuzz/targets.h"
#include "protocol/codec.h"
#include "protocol/frame.h"
#include "storage/recovery.h"
#include "storage/snapshot.h"
#include "storage/wal_format.h"

namespace tally::fuzz {
namespace {

const std::vector<Seed>& Generated() {
  static const std::vector<Seed>* seeds =
      new std::vector<Seed>(GenerateSeeds());
  return *seeds;
}

std::vector<std::string> GeneratedFor(const std::string& target) {
  std::vector<std::string> out;
  for (const Seed& s : Generated()) {
    if (s.target == target) out.push_back(s.bytes);
  }
  return out;
}

void RunTarget(const Target& target, const std::string& bytes) {
  target.run(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
}

uint64_t EnvOr(const char* name, uint64_t fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::strtoull(v, nullptr, 10) : fallback;
}

class FuzzRegressionTest : public testing::TestWithParam<Target> {};

TEST_P(FuzzRegressionTest, CommittedInputs) {
  const Target& target = GetParam();
  int files = 0;
  for (const char* kind : {"regressions", "seeds"}) {
    const std::filesystem::path dir =
        std::filesystem::path(TALLY_FUZZ_DIR) / kind / target.name;
    if (!std::filesystem::is_directory(dir)) continue;
    std::vector<std::filesystem::path> paths;
    for (const auto& entry : std::filesystem::directory_iterator(dir)) {
      if (entry.is_regular_file()) paths.push_back(entry.path());
    }
    std::sort(paths.begin(), paths.end());
    for (const auto& path : paths) {
      SCOPED_TRACE(path.string());
      std::ifstream in(path, std::ios::binary);
      std::string bytes((std::istreambuf_iterator<char>(in)),
                        std::istreambuf_iterator<char>());
      RunTarget(target, bytes);
      ++files;
    }
  }
  std::printf("%s: %d committed inputs replayed\n", target.name, files);
}

TEST_P(FuzzRegressionTest, GeneratedSeeds) {
  const Target& target = GetParam();
  const std::vector<std::string> seeds = GeneratedFor(target.name);
  ASSERT_FALSE(seeds.empty()) << "no seeds generated for " << target.name;
  for (const std::string& bytes : seeds) RunTarget(target, bytes);
}

TEST_P(FuzzRegressionTest, SeededMutations) {
  const Target& target = GetParam();
  const uint64_t seed = EnvOr("TALLY_SEED", std::random_device{}());
  const uint64_t per_seed = EnvOr("TALLY_FUZZ_MUTATIONS", 40);
  std::printf("%s: TALLY_SEED=%llu\n", target.name,
              static_cast<unsigned long long>(seed));
  SCOPED_TRACE(testing::Message() << "replay with TALLY_SEED=" << seed);
  std::mt19937_64 rng(seed);
  const std::vector<std::string> seeds = GeneratedFor(target.name);
  for (const std::string& original : seeds) {
    for (uint64_t i = 0; i < per_seed; ++i) {
      std::string bytes = original;
      const int edits = 1 + static_cast<int>(rng() % 8);
      for (int e = 0; e < edits && !bytes.empty(); ++e) {
        const size_t at = rng() % bytes.size();
        switch (rng() % 5) {
          case 0:
            bytes[at] = static_cast<char>(bytes[at] ^ (1 << (rng() % 8)));
            break;
          case 1:
            bytes[at] = static_cast<char>(rng());
            break;
          case 2:
            bytes.resize(at);
            break;
          case 3: {  // an interesting value over 1, 2, 4 or 8 bytes
            static const uint64_t kValues[] = {
                0,      1,          0x7F,       0x80,        0xFF,
                0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF, ~uint64_t{0}};
            const uint64_t v = kValues[rng() % std::size(kValues)];
            const size_t width = size_t{1} << (rng() % 4);
            for (size_t b = 0; b < width && at + b < bytes.size(); ++b) {
              bytes[at + b] = static_cast<char>(v >> (8 * b));
            }
            break;
          }
          default: {  // splice in a piece of another seed
            const std::string& other = seeds[rng() % seeds.size()];
            const size_t from = rng() % (other.size() + 1);
            const size_t n = std::min<size_t>(rng() % 64, other.size() - from);
            bytes.insert(at, other, from, n);
            break;
          }
        }
      }
      RunTarget(target, bytes);
    }
  }
}

// The seeds are real: frames decode, and the WAL segment and the snapshot
// each recover to the keys that were written (else the fuzzer would start
// from inputs the readers reject at the first check).
TEST(FuzzSeedsTest, SeedsAreValidFramesAndFiles) {
  int frames = 0, segments = 0, snapshots = 0;
  for (const Seed& seed : Generated()) {
    SCOPED_TRACE(seed.target + "/" + seed.name);
    if (seed.target == "request_frames" || seed.target == "response_decode") {
      if (seed.name == "frame_then_garbage") continue;
      FrameDecoder decoder;
      ASSERT_EQ(decoder.Append(std::span(
                    reinterpret_cast<const uint8_t*>(seed.bytes.data()),
                    seed.bytes.size())),
                seed.bytes.size());
      for (;;) {
        Result<std::optional<Frame>> next = decoder.Next();
        ASSERT_TRUE(next.ok()) << next.status().ToString();
        if (!next->has_value()) break;
        if (seed.target == "request_frames") {
          EXPECT_TRUE(DecodeRequest((**next).body).ok());
        } else {
          EXPECT_TRUE(DecodeResponse((**next).body).ok());
        }
        ++frames;
      }
      EXPECT_EQ(decoder.buffered(), 0u);
      continue;
    }
    MemFileSystem fs;
    if (seed.target == "wal_reader") {
      fs.Put("/d/wal/" + wal::SegmentFileName(1), seed.bytes);
      ++segments;
    } else {
      PutSnapshot(&fs, "/d", seed.bytes);
      ++snapshots;
    }
    RecoveryOptions options;
    options.fs = &fs;
    options.data_dir = "/d";
    options.mode = RecoveryMode::kAbsolute;  // no torn tail either
    options.engine.policies = Policies();
    options.engine.shard_bits = 2;
    Result<Recovered> recovered = Recover(options);
    ASSERT_TRUE(recovered.ok()) << recovered.status().ToString();
    EXPECT_GT(recovered->engine->Stats().keys, 3u);
    EXPECT_GT(recovered->report.last_lsn, 0u);
  }
  EXPECT_GT(frames, 40);
  EXPECT_EQ(segments, 1);
  EXPECT_EQ(snapshots, 2);
}

INSTANTIATE_TEST_SUITE_P(Targets, FuzzRegressionTest,
                         testing::ValuesIn(Targets().begin(), Targets().end()),
                         [](const testing::TestParamInfo<Target>& param) {
                           return std::string(param.param.name);
                         });

}  // namespace
}  // namespace tally::fuzz
