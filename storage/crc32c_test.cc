#include "storage/crc32c.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace tally::crc32c {
namespace {

std::vector<uint8_t> Filled(size_t n, uint8_t byte) {
  return std::vector<uint8_t>(n, byte);
}

std::vector<uint8_t> RandomBytes(std::mt19937_64& rng, size_t n) {
  std::vector<uint8_t> out(n);
  for (auto& b : out) b = static_cast<uint8_t>(rng());
  return out;
}

// Both implementations, so every vector checks the one the CPU picked and
// the table fallback.
void ExpectBoth(const std::vector<uint8_t>& data, uint32_t want) {
  EXPECT_EQ(Value(data.data(), data.size()), want);
  EXPECT_EQ(ExtendPortable(0, data.data(), data.size()), want);
}

TEST(Crc32cTest, MatchesRfc3720Vectors) {
  ExpectBoth(Filled(32, 0x00), 0x8A9136AA);
  ExpectBoth(Filled(32, 0xFF), 0x62A8AB43);
  std::vector<uint8_t> ascending(32);
  std::vector<uint8_t> descending(32);
  for (int i = 0; i < 32; ++i) {
    ascending[i] = static_cast<uint8_t>(i);
    descending[i] = static_cast<uint8_t>(31 - i);
  }
  ExpectBoth(ascending, 0x46DD794E);
  ExpectBoth(descending, 0x113FDB5C);
}

TEST(Crc32cTest, MatchesTheStandardCheckValue) {
  const std::string s = "123456789";
  ExpectBoth(std::vector<uint8_t>(s.begin(), s.end()), 0xE3069283);
}

TEST(Crc32cTest, EmptyInputIsZeroAndExtendOfNothingIsIdentity) {
  EXPECT_EQ(Value(nullptr, 0), 0u);
  EXPECT_EQ(Extend(0xE3069283, nullptr, 0), 0xE3069283);
  EXPECT_EQ(ExtendPortable(0xE3069283, nullptr, 0), 0xE3069283);
}

TEST(Crc32cTest, ExtendComposesAtEverySplitPoint) {
  std::mt19937_64 rng(1);
  std::vector<uint8_t> data = RandomBytes(rng, 100);
  uint32_t whole = Value(data.data(), data.size());
  for (size_t split = 0; split <= data.size(); ++split) {
    uint32_t head = Value(data.data(), split);
    EXPECT_EQ(Extend(head, data.data() + split, data.size() - split), whole)
        << "split " << split;
    EXPECT_EQ(ExtendPortable(ExtendPortable(0, data.data(), split),
                             data.data() + split, data.size() - split),
              whole)
        << "split " << split;
  }
}

TEST(Crc32cTest, ReportsWhichImplementationItUses) {
  std::string impl = Implementation();
  EXPECT_TRUE(impl == "sse4.2" || impl == "table") << impl;
  std::cout << "crc32c implementation: " << impl << "\n";
}

TEST(Crc32cTest, HardwareAndTableAgreeAtEveryLengthAndAlignment) {
  std::mt19937_64 rng(42);
  // 8 bytes of slack so every offset 0..7 can start a 300-byte slice.
  std::vector<uint8_t> buf = RandomBytes(rng, 300 + 8);
  for (size_t offset = 0; offset < 8; ++offset) {
    for (size_t len = 0; len <= 300; ++len) {
      const uint8_t* p = buf.data() + offset;
      uint32_t seed = static_cast<uint32_t>(rng());
      ASSERT_EQ(Extend(seed, p, len), ExtendPortable(seed, p, len))
          << "offset " << offset << " len " << len;
    }
  }
}

// An independent implementation as the oracle: python3-crc32c (Debian) is
// Intel's/Mark Adler's C code, not this one.
TEST(Crc32cTest, AgreesWithPythonCrc32cOnRandomBuffers) {
  if (std::system("/usr/bin/python3 -c 'import crc32c' >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "python3 module crc32c is missing (Debian package "
                    "python3-crc32c; tools/install-deps.sh installs it)";
  }
  char dir_template[] = "/tmp/crc32c_test.XXXXXX";
  ASSERT_NE(mkdtemp(dir_template), nullptr);
  const std::string dir = dir_template;
  const std::string data_path = dir + "/buffers.bin";

  // Format: per buffer, a 4-byte little-endian length, then the bytes.
  std::mt19937_64 rng(7);
  std::vector<uint32_t> want;
  {
    std::ofstream out(data_path, std::ios::binary);
    for (int i = 0; i < 200; ++i) {
      size_t len = rng() % 5000;
      std::vector<uint8_t> buf = RandomBytes(rng, len);
      uint8_t header[4] = {
          static_cast<uint8_t>(len), static_cast<uint8_t>(len >> 8),
          static_cast<uint8_t>(len >> 16), static_cast<uint8_t>(len >> 24)};
      out.write(reinterpret_cast<const char*>(header), 4);
      out.write(reinterpret_cast<const char*>(buf.data()),
                static_cast<std::streamsize>(len));
      want.push_back(Value(buf.data(), buf.size()));
    }
    ASSERT_TRUE(out.good());
  }

  const std::string command =
      "/usr/bin/python3 -c '\n"
      "import crc32c, struct, sys\n"
      "data = open(sys.argv[1], \"rb\").read()\n"
      "i = 0\n"
      "while i < len(data):\n"
      "    (n,) = struct.unpack_from(\"<I\", data, i)\n"
      "    print(crc32c.crc32c(data[i + 4:i + 4 + n]))\n"
      "    i += 4 + n\n"
      "' " +
      data_path;
  FILE* pipe = popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string output;
  char chunk[4096];
  size_t got;
  while ((got = fread(chunk, 1, sizeof(chunk), pipe)) > 0) {
    output.append(chunk, got);
  }
  int rc = pclose(pipe);
  unlink(data_path.c_str());
  rmdir(dir.c_str());
  ASSERT_EQ(rc, 0) << "python oracle failed";

  std::istringstream lines(output);
  std::vector<uint32_t> got_values;
  uint64_t v;
  while (lines >> v) got_values.push_back(static_cast<uint32_t>(v));
  ASSERT_EQ(got_values.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(got_values[i], want[i]) << "buffer " << i;
  }
}

}  // namespace
}  // namespace tally::crc32c
