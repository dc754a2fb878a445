// The write-ahead log's on-disk format (docs/wal_format.md has the grammar).
// Everything here is persisted: DO NOT CHANGE: persisted (docs/wal_format.md).
//
//   data_dir/wal/<first LSN, 20 digits>.wal    one segment
//
//   segment := segment_header record* zero_fill
//   segment_header (40 B) := magic "TALLYWAL" | version u32 | header_size
//       u32 | first_lsn u64 | hash_seed u64 | shard_bits u32 | crc32c u32
//   record := header (32 B) | payload[length]
//   header := crc32c u32 | length u32 | type u8 | flags u8 | reserved u16
//             | reserved u32 | lsn u64 | time_ms i64
//
// All integers little-endian. The record CRC (CRC-32C, storage/crc32c.h)
// covers header bytes [4, 32) and the payload: everything but itself. A
// header of 32 zero bytes marks the end of the written part of a segment
// (segments are preallocated zero-filled); type 0 is never written.

#ifndef TALLY_STORAGE_WAL_FORMAT_H_
#define TALLY_STORAGE_WAL_FORMAT_H_

#include <bit>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace tally::wal {

// DO NOT CHANGE: persisted (docs/wal_format.md).
// The bytes "TALLYWAL" read as a little-endian u64.
inline constexpr uint64_t kSegmentMagic = 0x4C4157594C4C4154ull;
inline constexpr uint32_t kFormatVersion = 1;
inline constexpr size_t kSegmentHeaderSize = 40;
inline constexpr size_t kRecordHeaderSize = 32;
// The largest payload a reader accepts, checked before anything is
// allocated. A record holds one request's mutations; requests are at most
// 16 MiB (protocol/limits.h), so a legal record is always smaller.
inline constexpr uint32_t kMaxPayload = 32u << 20;
inline constexpr const char* kWalDirName = "wal";
inline constexpr const char* kSegmentSuffix = ".wal";

enum class RecordType : uint8_t {
  kAddBatch = 1,  // events, in order; see wal_record.h
  kDelete = 2,    // one key
  kSweep = 3,     // expire shards [first, first + count) at time_ms
  kPolicies = 4,  // put a policy set in force (a reload); see wal_record.h
};
inline bool IsKnownType(uint8_t t) { return t >= 1 && t <= 4; }

struct SegmentHeader {
  uint64_t first_lsn = 0;   // LSN of the segment's first record
  uint64_t hash_seed = 0;   // the engine's key-hash seed (sweeps name shards)
  uint32_t shard_bits = 8;  // the engine's 2^shard_bits shards (likewise)
};

struct RecordHeader {
  uint32_t crc = 0;
  uint32_t length = 0;
  uint8_t type = 0;
  uint64_t lsn = 0;
  int64_t time_ms = 0;  // the server time the mutation was judged at
};

inline void PutU32(uint8_t* p, uint32_t v) { std::memcpy(p, &v, 4); }
inline void PutU64(uint8_t* p, uint64_t v) { std::memcpy(p, &v, 8); }
inline uint32_t GetU32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
inline uint64_t GetU64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}
static_assert(std::endian::native == std::endian::little,
              "the WAL is little-endian; add byte swaps for this target");

// Segment header: magic u64 | version u32 | header_size u32 | first_lsn u64 |
// hash_seed u64 | shard_bits u32 | crc32c u32 of bytes [0, 36).
void EncodeSegmentHeader(const SegmentHeader& h, uint8_t* out);
// False when the magic, version, size or CRC is wrong.
bool DecodeSegmentHeader(const uint8_t* in, SegmentHeader* h);

// Writes the 32-byte header for `payload` (computing the CRC) at out.
void EncodeRecordHeader(RecordType type, uint64_t lsn, int64_t time_ms,
                        std::string_view payload, uint8_t* out);
// Appends a whole record (header + payload) to *out.
void AppendRecord(RecordType type, uint64_t lsn, int64_t time_ms,
                  std::string_view payload, std::string* out);
// Parses the fixed fields; checks nothing.
RecordHeader ParseRecordHeader(const uint8_t* in);
// The CRC a record with this header and payload must carry.
uint32_t RecordCrc(const uint8_t* header, std::string_view payload);

// "00000000000000000042.wal" for first LSN 42.
std::string SegmentFileName(uint64_t first_lsn);
// The first LSN named by a segment file name; false if it is not one.
bool ParseSegmentFileName(std::string_view name, uint64_t* first_lsn);

}  // namespace tally::wal

#endif  // TALLY_STORAGE_WAL_FORMAT_H_
