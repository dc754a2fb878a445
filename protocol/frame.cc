#include "protocol/frame.h"

#include <algorithm>
#include <cassert>
#include <cstring>
#include <string>

namespace tally {
namespace {

// Smallest buffer allocated, and the largest kept once drained: a connection
// that once received a big frame does not hold on to its memory.
constexpr size_t kMinCapacity = 4096;
constexpr size_t kKeepCapacity = 64 * 1024;

// Header offsets (docs/protocol.md, "Frames").
constexpr size_t kMagicOffset = 0;
constexpr size_t kVersionOffset = 4;
constexpr size_t kKindOffset = 5;
constexpr size_t kFlagsOffset = 6;
constexpr size_t kBodyLengthOffset = 8;
constexpr size_t kReservedOffset = 12;
constexpr size_t kRequestIdOffset = 16;

template <typename T>
void PutLittle(uint8_t* out, T value) {
  for (size_t i = 0; i < sizeof(T); ++i) {
    out[i] = static_cast<uint8_t>(value >> (8 * i));
  }
}

template <typename T>
T GetLittle(const uint8_t* in) {
  T value = 0;
  for (size_t i = 0; i < sizeof(T); ++i) {
    value |= static_cast<T>(static_cast<T>(in[i]) << (8 * i));
  }
  return value;
}

size_t WordsFor(size_t bytes) { return (bytes + 7) / 8; }

}  // namespace

void EncodeFrameHeader(const FrameHeader& header, uint8_t* out) {
  PutLittle<uint32_t>(out + kMagicOffset, kFrameMagic);
  out[kVersionOffset] = header.version;
  out[kKindOffset] = static_cast<uint8_t>(header.kind);
  PutLittle<uint16_t>(out + kFlagsOffset, header.flags);
  PutLittle<uint32_t>(out + kBodyLengthOffset, header.body_length);
  PutLittle<uint32_t>(out + kReservedOffset, header.reserved);
  PutLittle<uint64_t>(out + kRequestIdOffset, header.request_id);
}

Result<FrameHeader> DecodeFrameHeader(
    std::span<const uint8_t, kFrameHeaderSize> bytes, size_t max_body) {
  const uint8_t* in = bytes.data();
  if (GetLittle<uint32_t>(in + kMagicOffset) != kFrameMagic) {
    return Status(Code::kProtocolError, "bad frame magic (expected \"TALY\")");
  }
  FrameHeader header;
  header.version = in[kVersionOffset];
  if (header.version != kFrameVersion) {
    return Status(Code::kUnsupportedVersion,
                  "frame version " + std::to_string(header.version) +
                      " (this peer speaks " + std::to_string(kFrameVersion) +
                      ")");
  }
  const uint8_t kind = in[kKindOffset];
  if (kind != static_cast<uint8_t>(FrameKind::kRequest) &&
      kind != static_cast<uint8_t>(FrameKind::kResponse)) {
    return Status(Code::kProtocolError,
                  "unknown frame kind " + std::to_string(kind));
  }
  header.kind = static_cast<FrameKind>(kind);
  header.flags = GetLittle<uint16_t>(in + kFlagsOffset);
  header.body_length = GetLittle<uint32_t>(in + kBodyLengthOffset);
  header.reserved = GetLittle<uint32_t>(in + kReservedOffset);
  header.request_id = GetLittle<uint64_t>(in + kRequestIdOffset);
  if (header.flags != 0 || header.reserved != 0) {
    return Status(Code::kProtocolError,
                  "reserved frame header bits are set (flags " +
                      std::to_string(header.flags) + ", reserved " +
                      std::to_string(header.reserved) + ")");
  }
  if (header.body_length > max_body) {
    return Status(Code::kFrameTooLarge, "frame body of " +
                                            std::to_string(header.body_length) +
                                            " bytes exceeds the limit of " +
                                            std::to_string(max_body));
  }
  return header;
}

void AppendFrame(std::vector<uint8_t>* out, FrameKind kind, uint64_t request_id,
                 std::span<const uint8_t> body) {
  assert(body.size() <= UINT32_MAX);
  FrameHeader header;
  header.kind = kind;
  header.body_length = static_cast<uint32_t>(body.size());
  header.request_id = request_id;
  const size_t at = out->size();
  out->resize(at + kFrameHeaderSize + body.size());
  EncodeFrameHeader(header, out->data() + at);
  if (!body.empty()) {
    std::memcpy(out->data() + at + kFrameHeaderSize, body.data(), body.size());
  }
}

FrameDecoder::FrameDecoder(size_t max_body,
                           std::optional<FrameKind> expected_kind)
    : max_body_(max_body), expected_kind_(expected_kind) {}

FrameDecoder::~FrameDecoder() = default;

size_t FrameDecoder::writable() const {
  if (failed()) return 0;
  const size_t limit = kFrameHeaderSize + max_body_;
  return buffered() >= limit ? 0 : limit - buffered();
}

void FrameDecoder::Reclaim() {
  prepared_ = 0;
  if (begin_ != end_) return;
  begin_ = end_ = 0;
  if (capacity_ > kKeepCapacity) {
    buffer_.reset();
    capacity_ = 0;
  }
  if (scratch_capacity_ > kKeepCapacity) {
    scratch_.reset();
    scratch_capacity_ = 0;
  }
}

void FrameDecoder::Shrink() {
  if (begin_ != end_ || prepared_ != 0) return;
  begin_ = end_ = 0;
  buffer_.reset();
  scratch_.reset();
  capacity_ = scratch_capacity_ = 0;
}

void FrameDecoder::Reserve(size_t n) {
  if (capacity_ - end_ >= n) return;
  const size_t live = buffered();
  if (capacity_ >= live + n) {
    // Enough room once the consumed prefix is dropped.
    std::memmove(buffer_.get(),
                 reinterpret_cast<uint8_t*>(buffer_.get()) + begin_, live);
  } else {
    const size_t limit = kFrameHeaderSize + max_body_;
    size_t capacity = std::max({live + n, 2 * capacity_, kMinCapacity});
    capacity = std::max(std::min(capacity, limit), live + n);
    auto grown = std::make_unique_for_overwrite<uint64_t[]>(WordsFor(capacity));
    if (live > 0) {
      std::memcpy(grown.get(),
                  reinterpret_cast<uint8_t*>(buffer_.get()) + begin_, live);
    }
    buffer_ = std::move(grown);
    capacity_ = WordsFor(capacity) * 8;
  }
  begin_ = 0;
  end_ = live;
}

std::span<uint8_t> FrameDecoder::Prepare(size_t n) {
  Reclaim();
  n = std::min(n, writable());
  if (n == 0) return {};
  Reserve(n);
  prepared_ = n;
  return {reinterpret_cast<uint8_t*>(buffer_.get()) + end_, n};
}

void FrameDecoder::Commit(size_t n) {
  assert(n <= prepared_);
  n = std::min(n, prepared_);
  end_ += n;
  prepared_ = 0;
}

size_t FrameDecoder::Append(std::span<const uint8_t> data) {
  std::span<uint8_t> room = Prepare(data.size());
  if (!room.empty()) std::memcpy(room.data(), data.data(), room.size());
  Commit(room.size());
  return room.size();
}

Status FrameDecoder::Fail(Status status) {
  status_ = std::move(status);
  // The stream is out of sync; nothing buffered will ever be read.
  buffer_.reset();
  scratch_.reset();
  capacity_ = scratch_capacity_ = 0;
  begin_ = end_ = prepared_ = 0;
  return status_;
}

Result<std::optional<Frame>> FrameDecoder::Next() {
  if (failed()) return status_;
  Reclaim();
  const uint8_t* data =
      reinterpret_cast<const uint8_t*>(buffer_.get()) + begin_;
  const size_t avail = buffered();
  if (avail < kFrameHeaderSize) {
    // Check the magic bytes received so far: garbage fails at once.
    uint8_t magic[4];
    PutLittle<uint32_t>(magic, kFrameMagic);
    if (avail > 0 &&
        std::memcmp(data, magic, std::min<size_t>(avail, 4)) != 0) {
      return Fail(
          Status(Code::kProtocolError, "bad frame magic (expected \"TALY\")"));
    }
    return std::optional<Frame>();
  }
  Result<FrameHeader> header = DecodeFrameHeader(
      std::span<const uint8_t, kFrameHeaderSize>(data, kFrameHeaderSize),
      max_body_);
  if (!header.ok()) return Fail(header.status());
  if (expected_kind_.has_value() && header->kind != *expected_kind_) {
    return Fail(Status(Code::kProtocolError,
                       "unexpected frame kind " +
                           std::to_string(static_cast<int>(header->kind))));
  }
  const size_t body_length = header->body_length;
  if (avail - kFrameHeaderSize < body_length) return std::optional<Frame>();

  const uint8_t* body = data + kFrameHeaderSize;
  if (body_length == 0) {
    // Nothing to copy (and scratch_ may not exist yet: memcpy to a null
    // pointer is undefined even for 0 bytes); still hand out an aligned
    // pointer, as for every body.
    static constexpr uint64_t kEmptyBody = 0;
    body = reinterpret_cast<const uint8_t*>(&kEmptyBody);
  } else if (reinterpret_cast<uintptr_t>(body) % 8 != 0) {
    if (scratch_capacity_ < body_length) {
      scratch_ =
          std::make_unique_for_overwrite<uint64_t[]>(WordsFor(body_length));
      scratch_capacity_ = WordsFor(body_length) * 8;
    }
    std::memcpy(scratch_.get(), body, body_length);
    body = reinterpret_cast<const uint8_t*>(scratch_.get());
  }
  begin_ += kFrameHeaderSize + body_length;
  return std::optional<Frame>(
      Frame{.header = *header, .body = {body, body_length}});
}

}  // namespace tally
