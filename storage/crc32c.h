// CRC-32C (Castagnoli, polynomial 0x1EDC6F41, reflected 0x82F63B78), the
// checksum of the WAL and snapshots (docs/wal_format.md). Debian 12 ships no
// C/C++ library for it, so it is written here: SSE4.2's crc32 instruction
// when the CPU has it (checked once at run time), a slicing-by-8 table
// otherwise. Both give the same values; tests check them against RFC 3720's
// vectors and against python3-crc32c.
//
// Conventions as in iSCSI/ext4/LevelDB: initial value and final XOR
// 0xFFFFFFFF, so Value("123456789") == 0xE3069283 and Extend(Value(a), b) ==
// Value(a + b).

#ifndef TALLY_STORAGE_CRC32C_H_
#define TALLY_STORAGE_CRC32C_H_

#include <cstddef>
#include <cstdint>

namespace tally::crc32c {

// The CRC of data[0, n) appended to a message whose CRC is `crc`.
uint32_t Extend(uint32_t crc, const void* data, size_t n);

// The CRC of data[0, n).
inline uint32_t Value(const void* data, size_t n) { return Extend(0, data, n); }

// Which implementation Extend uses: "sse4.2" or "table".
const char* Implementation();

// For tests: the table implementation, whatever the CPU.
uint32_t ExtendPortable(uint32_t crc, const void* data, size_t n);

}  // namespace tally::crc32c

#endif  // TALLY_STORAGE_CRC32C_H_
