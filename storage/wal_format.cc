#include "storage/wal_format.h"

#include <charconv>
#include <cstdio>

#include "storage/crc32c.h"

namespace tally::wal {

void EncodeSegmentHeader(const SegmentHeader& h, uint8_t* out) {
  std::memset(out, 0, kSegmentHeaderSize);
  PutU64(out, kSegmentMagic);
  PutU32(out + 8, kFormatVersion);
  PutU32(out + 12, kSegmentHeaderSize);
  PutU64(out + 16, h.first_lsn);
  PutU64(out + 24, h.hash_seed);
  PutU32(out + 32, h.shard_bits);
  PutU32(out + 36, crc32c::Value(out, 36));
}

bool DecodeSegmentHeader(const uint8_t* in, SegmentHeader* h) {
  if (GetU64(in) != kSegmentMagic || GetU32(in + 8) != kFormatVersion ||
      GetU32(in + 12) != kSegmentHeaderSize || GetU32(in + 32) < 1 ||
      GetU32(in + 32) > 16 || GetU32(in + 36) != crc32c::Value(in, 36)) {
    return false;
  }
  h->first_lsn = GetU64(in + 16);
  h->hash_seed = GetU64(in + 24);
  h->shard_bits = GetU32(in + 32);
  return true;
}

uint32_t RecordCrc(const uint8_t* header, std::string_view payload) {
  const uint32_t crc = crc32c::Value(header + 4, kRecordHeaderSize - 4);
  return crc32c::Extend(crc, payload.data(), payload.size());
}

void EncodeRecordHeader(RecordType type, uint64_t lsn, int64_t time_ms,
                        std::string_view payload, uint8_t* out) {
  std::memset(out, 0, kRecordHeaderSize);
  PutU32(out + 4, static_cast<uint32_t>(payload.size()));
  out[8] = static_cast<uint8_t>(type);
  PutU64(out + 16, lsn);
  PutU64(out + 24, static_cast<uint64_t>(time_ms));
  PutU32(out, RecordCrc(out, payload));
}

void AppendRecord(RecordType type, uint64_t lsn, int64_t time_ms,
                  std::string_view payload, std::string* out) {
  const size_t at = out->size();
  out->resize(at + kRecordHeaderSize);
  out->append(payload);
  EncodeRecordHeader(type, lsn, time_ms, payload,
                     reinterpret_cast<uint8_t*>(out->data() + at));
}

RecordHeader ParseRecordHeader(const uint8_t* in) {
  RecordHeader h;
  h.crc = GetU32(in);
  h.length = GetU32(in + 4);
  h.type = in[8];
  h.lsn = GetU64(in + 16);
  h.time_ms = static_cast<int64_t>(GetU64(in + 24));
  return h;
}

std::string SegmentFileName(uint64_t first_lsn) {
  char name[32];
  std::snprintf(name, sizeof(name), "%020llu%s",
                static_cast<unsigned long long>(first_lsn), kSegmentSuffix);
  return name;
}

bool ParseSegmentFileName(std::string_view name, uint64_t* first_lsn) {
  const std::string_view suffix = kSegmentSuffix;
  if (name.size() != 20 + suffix.size() || !name.ends_with(suffix)) {
    return false;
  }
  const char* end = name.data() + 20;
  auto [ptr, ec] = std::from_chars(name.data(), end, *first_lsn);
  return ec == std::errc() && ptr == end;
}

}  // namespace tally::wal
