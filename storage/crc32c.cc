#include "storage/crc32c.h"

#include <array>
#include <cstring>

#if defined(__x86_64__)
#include <nmmintrin.h>
#define TALLY_CRC32C_HAVE_SSE42_PATH 1
#endif

namespace tally::crc32c {
namespace {

// Reflected form of 0x1EDC6F41: bit i of the polynomial is bit 31 - i here,
// because CRC-32C processes the least significant bit of each byte first.
constexpr uint32_t kPolynomial = 0x82F63B78;

using Table = std::array<std::array<uint32_t, 256>, 8>;

// kTables[0][b] is the CRC register after shifting byte b through it; and
// kTables[k][b] is kTables[0][b] followed by k zero bytes, so eight table
// lookups advance the register over eight input bytes at once.
constexpr Table MakeTables() {
  Table t{};
  for (uint32_t b = 0; b < 256; ++b) {
    uint32_t crc = b;
    for (int bit = 0; bit < 8; ++bit) {
      crc = (crc >> 1) ^ ((crc & 1) ? kPolynomial : 0);
    }
    t[0][b] = crc;
  }
  for (int k = 1; k < 8; ++k) {
    for (uint32_t b = 0; b < 256; ++b) {
      uint32_t prev = t[k - 1][b];
      t[k][b] = (prev >> 8) ^ t[0][prev & 0xFF];
    }
  }
  return t;
}

constexpr Table kTables = MakeTables();

// Little-endian load whatever the host order, so the table path gives the
// same value on every machine.
inline uint32_t LoadLe32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) |
         (static_cast<uint32_t>(p[2]) << 16) |
         (static_cast<uint32_t>(p[3]) << 24);
}

#ifdef TALLY_CRC32C_HAVE_SSE42_PATH
__attribute__((target("sse4.2"))) uint32_t ExtendSse42(uint32_t crc,
                                                       const void* data,
                                                       size_t n) {
  const auto* p = static_cast<const uint8_t*>(data);
  uint64_t reg = ~crc;
  // Byte steps up to 8-byte alignment: unaligned 8-byte loads are legal on
  // x86 but split cache lines on long buffers.
  while (n > 0 && (reinterpret_cast<uintptr_t>(p) & 7) != 0) {
    reg = _mm_crc32_u8(static_cast<uint32_t>(reg), *p++);
    --n;
  }
  while (n >= 8) {
    uint64_t word;
    std::memcpy(&word, p, 8);
    reg = _mm_crc32_u64(reg, word);
    p += 8;
    n -= 8;
  }
  while (n > 0) {
    reg = _mm_crc32_u8(static_cast<uint32_t>(reg), *p++);
    --n;
  }
  return ~static_cast<uint32_t>(reg);
}
#endif

using ExtendFn = uint32_t (*)(uint32_t, const void*, size_t);

struct Choice {
  ExtendFn fn;
  const char* name;
};

// Chosen on first use (a function-local static, so it is safe even from
// other translation units' static initialisers).
const Choice& Chosen() {
  static const Choice choice = [] {
#ifdef TALLY_CRC32C_HAVE_SSE42_PATH
    __builtin_cpu_init();
    if (__builtin_cpu_supports("sse4.2")) {
      return Choice{&ExtendSse42, "sse4.2"};
    }
#endif
    return Choice{&ExtendPortable, "table"};
  }();
  return choice;
}

}  // namespace

uint32_t ExtendPortable(uint32_t crc, const void* data, size_t n) {
  const auto* p = static_cast<const uint8_t*>(data);
  const auto& t = kTables;
  uint32_t reg = ~crc;
  while (n >= 8) {
    uint32_t lo = reg ^ LoadLe32(p);
    uint32_t hi = LoadLe32(p + 4);
    reg = t[7][lo & 0xFF] ^ t[6][(lo >> 8) & 0xFF] ^ t[5][(lo >> 16) & 0xFF] ^
          t[4][lo >> 24] ^ t[3][hi & 0xFF] ^ t[2][(hi >> 8) & 0xFF] ^
          t[1][(hi >> 16) & 0xFF] ^ t[0][hi >> 24];
    p += 8;
    n -= 8;
  }
  while (n > 0) {
    reg = (reg >> 8) ^ t[0][(reg ^ *p++) & 0xFF];
    --n;
  }
  return ~reg;
}

uint32_t Extend(uint32_t crc, const void* data, size_t n) {
  return Chosen().fn(crc, data, n);
}

const char* Implementation() { return Chosen().name; }

}  // namespace tally::crc32c
