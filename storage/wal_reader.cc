#include "storage/wal_reader.h"

#include <algorithm>
#include <cstring>

namespace tally::wal {

namespace {

// A segment is at most segment_bytes plus one oversized record; anything
// larger than this is not a segment tally wrote.
constexpr uint64_t kMaxSegmentFile = uint64_t{4} << 30;

bool AllZero(const uint8_t* p, size_t n) {
  return std::all_of(p, p + n, [](uint8_t b) { return b == 0; });
}

enum class Check : uint8_t { kOk, kEnd, kBad };

// Whether a valid record starts at `pos` of `data` (CRC included).
// *why says what is wrong when it is not.
Check CheckRecord(const std::string& data, size_t pos, RecordHeader* h,
                  std::string* why) {
  const auto* p = reinterpret_cast<const uint8_t*>(data.data());
  const size_t size = data.size();
  if (size - pos < kRecordHeaderSize) {
    if (AllZero(p + pos, size - pos)) return Check::kEnd;
    *why = "partial record header";
    return Check::kBad;
  }
  if (AllZero(p + pos, kRecordHeaderSize)) return Check::kEnd;
  *h = ParseRecordHeader(p + pos);
  if (!IsKnownType(h->type) || !AllZero(p + pos + 9, 7)) {
    *why = "bad record type or reserved bytes";
    return Check::kBad;
  }
  if (h->length > kMaxPayload || h->length > size - pos - kRecordHeaderSize) {
    *why = "bad record length " + std::to_string(h->length);
    return Check::kBad;
  }
  const std::string_view payload(data.data() + pos + kRecordHeaderSize,
                                 h->length);
  if (RecordCrc(p + pos, payload) != h->crc) {
    *why = "bad record checksum";
    return Check::kBad;
  }
  return Check::kOk;
}

// Valid records anywhere in data[from, size): how many and where the first
// is. Scans byte by byte (records are not aligned), checking the CRC only
// where the header could be one.
struct Found {
  uint64_t records = 0;
  size_t first_offset = 0;
};
size_t LastNonZero(const std::string& data, size_t from) {
  size_t end = data.size();
  // Word at a time: segments end in megabytes of zeros.
  while (end >= from + 8) {
    uint64_t w;
    std::memcpy(&w, data.data() + end - 8, 8);
    if (w != 0) break;
    end -= 8;
  }
  while (end > from && data[end - 1] == 0) --end;
  return end;
}

Found FindValidRecords(const std::string& data, size_t from) {
  Found found;
  std::string why;
  RecordHeader h;
  // Nothing past the last non-zero byte can start a record (a header has a
  // non-zero type byte).
  const size_t limit = LastNonZero(data, from);
  size_t pos = from;
  while (pos < limit && pos + kRecordHeaderSize <= data.size()) {
    // A header's type byte (offset 8) is 1..3: jump between candidates.
    if (!IsKnownType(static_cast<uint8_t>(data[pos + 8]))) {
      ++pos;
      continue;
    }
    if (CheckRecord(data, pos, &h, &why) == Check::kOk) {
      if (found.records++ == 0) found.first_offset = pos;
      pos += kRecordHeaderSize + h.length;
    } else {
      ++pos;
    }
  }
  return found;
}

}  // namespace

std::string DescribePosition(const std::string& segment, uint64_t offset) {
  return "segment " + segment + " offset " + std::to_string(offset);
}

Result<std::vector<SegmentFile>> ListSegments(FileSystem* fs,
                                              const std::string& wal_dir) {
  std::vector<SegmentFile> out;
  if (!fs->Exists(wal_dir)) return out;
  Result<std::vector<std::string>> names = fs->ListDir(wal_dir);
  if (!names.ok()) return names.status();
  for (const std::string& name : *names) {
    uint64_t lsn = 0;
    if (ParseSegmentFileName(name, &lsn)) out.push_back({name, lsn});
  }
  std::sort(out.begin(), out.end(),
            [](const SegmentFile& a, const SegmentFile& b) {
              return a.first_lsn < b.first_lsn;
            });
  return out;
}

Result<ReadReport> ReadWal(FileSystem* fs, const std::string& wal_dir,
                           const ReadOptions& options,
                           const RecordVisitor& visit) {
  ReadReport rep;
  Result<std::vector<SegmentFile>> segments = ListSegments(fs, wal_dir);
  if (!segments.ok()) return segments.status();
  uint64_t expected = 0;  // the next record's LSN; 0 before the first segment

  // Marks the log as ending at (segment k, pos) for `end`, counting what
  // lies after it.
  auto finish = [&](size_t k, const std::string& data, size_t pos, LogEnd end,
                    std::string reason) -> Status {
    rep.end = end;
    rep.end_segment = (*segments)[k].name;
    rep.end_offset = pos;
    rep.reason = std::move(reason);
    if (end == LogEnd::kTornTail) {
      rep.discarded_bytes = LastNonZero(data, pos) - pos;
      return Status::Ok();
    }
    rep.discarded_bytes = data.size() - pos;
    rep.discarded_records = FindValidRecords(data, pos).records;
    for (size_t j = k + 1; j < segments->size(); ++j) {
      const std::string path = JoinPath(wal_dir, (*segments)[j].name);
      rep.later_segments.push_back((*segments)[j].name);
      Result<std::string> later = fs->ReadFile(path, kMaxSegmentFile);
      if (!later.ok()) return later.status();
      rep.discarded_bytes += later->size();
      rep.discarded_records +=
          FindValidRecords(*later, std::min(later->size(), kSegmentHeaderSize))
              .records;
    }
    return Status::Ok();
  };

  // Segments wholly at or below after_lsn are not read: they are kept only
  // as a fallback for an older snapshot.
  size_t first = 0;
  if (options.after_lsn > 0) {
    while (first + 1 < segments->size() &&
           (*segments)[first + 1].first_lsn <= options.after_lsn + 1) {
      ++first;
    }
  }
  for (size_t k = first; k < segments->size(); ++k) {
    const SegmentFile& seg = (*segments)[k];
    const bool last = k + 1 == segments->size();
    Result<std::string> read =
        fs->ReadFile(JoinPath(wal_dir, seg.name), kMaxSegmentFile);
    if (!read.ok()) return read.status();
    const std::string& data = *read;
    const auto* p = reinterpret_cast<const uint8_t*>(data.data());
    ++rep.segments;

    SegmentHeader sh;
    if (data.size() < kSegmentHeaderSize || !DecodeSegmentHeader(p, &sh) ||
        sh.first_lsn != seg.first_lsn) {
      // A crash while a new last segment was being created leaves it empty,
      // zero-filled or half-written, with no record in it: a torn tail.
      Status s;
      if (last && FindValidRecords(data, 0).records == 0) {
        s = finish(k, data, 0, LogEnd::kTornTail,
                   "segment header never completed (crash while creating "
                   "the segment)");
        rep.discarded_bytes = LastNonZero(data, 0);
      } else {
        s = finish(k, data, 0, LogEnd::kCorrupt, "bad segment header");
      }
      if (!s.ok()) return s;
      return rep;
    }
    if (!rep.has_seed) {
      rep.has_seed = true;
      rep.hash_seed = sh.hash_seed;
      rep.shard_bits = sh.shard_bits;
    }
    if (expected == 0) {
      expected = sh.first_lsn;
      if (sh.first_lsn > options.need_from_lsn + 1) {
        Status s =
            finish(k, data, 0, LogEnd::kCorrupt,
                   "the WAL starts at LSN " + std::to_string(sh.first_lsn) +
                       " but the snapshot needs every record after LSN " +
                       std::to_string(options.need_from_lsn) +
                       ": segments are missing");
        if (!s.ok()) return s;
        return rep;
      }
    } else if (sh.first_lsn != expected) {
      Status s =
          finish(k, data, 0, LogEnd::kCorrupt,
                 "segment starts at LSN " + std::to_string(sh.first_lsn) +
                     ", expected " + std::to_string(expected) +
                     ": a segment is missing or out of order");
      if (!s.ok()) return s;
      return rep;
    }

    size_t pos = kSegmentHeaderSize;
    std::string why;
    for (;;) {
      RecordHeader h;
      const Check check = CheckRecord(data, pos, &h, &why);
      if (check == Check::kOk && h.lsn != expected) {
        // A record that is intact but out of sequence is never a torn
        // write.
        Status s =
            finish(k, data, pos, LogEnd::kCorrupt,
                   "record LSN " + std::to_string(h.lsn) + " where LSN " +
                       std::to_string(expected) + " was expected (" +
                       (h.lsn > expected ? "gap" : "going backwards") + ")");
        if (!s.ok()) return s;
        return rep;
      }
      if (check == Check::kOk) {
        const std::string_view payload(data.data() + pos + kRecordHeaderSize,
                                       h.length);
        if (h.lsn > options.after_lsn && visit) {
          if (Status s = visit(h, payload); !s.ok()) return s;
        }
        if (rep.records++ == 0) rep.first_lsn = h.lsn;
        rep.last_lsn = h.lsn;
        rep.bytes += kRecordHeaderSize + h.length;
        ++expected;
        pos += kRecordHeaderSize + h.length;
        continue;
      }
      // The written part of this segment ends here. It is a clean end only
      // if nothing valid follows (and, before the last segment, nothing at
      // all follows).
      if (check == Check::kEnd) why = "zero-filled header";
      const Found after = FindValidRecords(data, pos + 1);
      const bool junk = LastNonZero(data, pos) > pos;
      if (after.records > 0) {
        Status s = finish(k, data, pos, LogEnd::kCorrupt,
                          why + " followed by a valid record at offset " +
                              std::to_string(after.first_offset));
        if (!s.ok()) return s;
        return rep;
      }
      if (!last && junk) {
        Status s = finish(k, data, pos, LogEnd::kCorrupt,
                          why + " in a segment that is not the last");
        if (!s.ok()) return s;
        return rep;
      }
      if (last && junk) {
        Status s = finish(k, data, pos, LogEnd::kTornTail, why);
        if (!s.ok()) return s;
        return rep;
      }
      rep.end_segment = seg.name;
      rep.end_offset = pos;
      break;  // clean end of this segment
    }
  }
  return rep;
}

}  // namespace tally::wal
