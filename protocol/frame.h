// Framing: the 24-byte header in front of every message, and FrameDecoder,
// which turns a byte stream into frames. Knows no sockets (the hiredis read.c
// model): the caller moves bytes in, frames or an error come out, so the
// decoder is tested and fuzzed on its own. The layout is specified in
// docs/protocol.md ("Frames").
//
// Thread safety: FrameDecoder is not thread-safe; one decoder belongs to one
// connection and is used by one thread (or strand) at a time. The free
// functions are thread-safe.

#ifndef TALLY_PROTOCOL_FRAME_H_
#define TALLY_PROTOCOL_FRAME_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "protocol/limits.h"
#include "protocol/result.h"
#include "protocol/status.h"

namespace tally {

// DO NOT CHANGE: wire format, see docs/protocol.md
// The magic u32 as a little-endian integer: the bytes 'T' 'A' 'L' 'Y'.
inline constexpr uint32_t kFrameMagic = 0x594C4154;
// DO NOT CHANGE: wire format, see docs/protocol.md
// Version of the frame header layout (not of the messages; Hello negotiates
// those).
inline constexpr uint8_t kFrameVersion = 1;
// DO NOT CHANGE: wire format, see docs/protocol.md
inline constexpr size_t kFrameHeaderSize = 24;

// DO NOT CHANGE: wire format, see docs/protocol.md
enum class FrameKind : uint8_t {
  kRequest = 1,
  kResponse = 2,
};

// A decoded header. The magic is implicit: a header that decodes had it.
struct FrameHeader {
  uint8_t version = kFrameVersion;
  FrameKind kind = FrameKind::kRequest;
  uint16_t flags = 0;        // reserved; must be 0
  uint32_t body_length = 0;  // bytes of FlatBuffer after the header
  uint32_t reserved = 0;     // must be 0
  uint64_t request_id = 0;   // chosen by the client, echoed by the server
};

// Writes the 24 header bytes, magic first, little-endian, to out[0..23].
void EncodeFrameHeader(const FrameHeader& header, uint8_t* out);

// Parses and checks 24 header bytes. Errors: PROTOCOL_ERROR (bad magic,
// unknown kind, non-zero flags or reserved), UNSUPPORTED_VERSION (version byte
// != kFrameVersion), FRAME_TOO_LARGE (body_length > max_body).
Result<FrameHeader> DecodeFrameHeader(
    std::span<const uint8_t, kFrameHeaderSize> bytes, size_t max_body);

// Appends a complete frame (header + body) to *out.
// REQUIRES: body.size() <= UINT32_MAX.
void AppendFrame(std::vector<uint8_t>* out, FrameKind kind, uint64_t request_id,
                 std::span<const uint8_t> body);

struct Frame {
  FrameHeader header;
  // header.body_length bytes, 8-byte aligned (FlatBuffers reads scalars in
  // place). Points into the decoder: valid until its next non-const call.
  std::span<const uint8_t> body;
};

// Splits a byte stream into frames. Usage, per connection:
//
//   FrameDecoder decoder;
//   for (;;) {
//     std::span<uint8_t> room = decoder.Prepare(64 * 1024);
//     size_t n = read(fd, room.data(), room.size());  // n > 0
//     decoder.Commit(n);
//     for (;;) {
//       Result<std::optional<Frame>> next = decoder.Next();
//       if (!next.ok()) { reply next.status(), then close; }
//       if (!next->has_value()) break;  // need more bytes
//       Handle(**next);
//     }
//   }
//
// Memory: the decoder never holds more than kFrameHeaderSize + max_body
// unconsumed bytes (writable() says how many more it takes), allocates its
// buffer on first use, and frees a large one once it is drained. A header
// whose body_length exceeds max_body fails the stream from the header alone,
// before any of the body is buffered. After any error the decoder stays
// failed: the stream is out of sync and the connection must close.
class FrameDecoder {
 public:
  // expected_kind: frames of any other kind are PROTOCOL_ERROR (a server
  // expects requests, a client responses); nullopt accepts both.
  explicit FrameDecoder(size_t max_body = kDefaultMaxFrameBody,
                        std::optional<FrameKind> expected_kind = std::nullopt);
  ~FrameDecoder();
  FrameDecoder(const FrameDecoder&) = delete;
  FrameDecoder& operator=(const FrameDecoder&) = delete;

  // Returns a writable region of min(n, writable()) bytes at the end of the
  // stream, for a read straight into the decoder. Empty once failed.
  std::span<uint8_t> Prepare(size_t n);
  // Adds the first n bytes of the region returned by the last Prepare() to
  // the stream. REQUIRES: n <= that region's size; no other non-const call
  // between Prepare() and Commit().
  void Commit(size_t n);

  // Copies in the first min(data.size(), writable()) bytes of data and
  // returns how many it took. The caller offers the rest again after Next()
  // has drained the frames buffered so far.
  size_t Append(std::span<const uint8_t> data);

  // The next complete frame; nullopt when more bytes are needed (then
  // writable() > 0); an error status when the stream is broken. Errors are
  // those of DecodeFrameHeader(), or PROTOCOL_ERROR for an unexpected kind.
  // The first bytes are checked against the magic as soon as they arrive, so
  // a garbage stream fails without waiting for a whole header.
  Result<std::optional<Frame>> Next();

  // Changes the largest body accepted for headers decoded from now on (e.g.
  // 4 KiB before authentication, then the configured maximum).
  void set_max_body(size_t max_body) { max_body_ = max_body; }
  size_t max_body() const { return max_body_; }

  // Frees the buffers while nothing is buffered or prepared, so an idle
  // connection holds no read buffer (the next Prepare() allocates again).
  void Shrink();

  // Bytes the decoder takes now; 0 once failed.
  size_t writable() const;
  // Bytes received and not yet returned in a frame.
  size_t buffered() const { return end_ - begin_; }
  // Bytes of memory held for buffering (for memory accounting and tests).
  size_t capacity() const { return capacity_ + scratch_capacity_; }
  bool failed() const { return !status_.ok(); }
  // The error that failed the decoder; OK while it has not failed.
  const Status& status() const { return status_; }

 private:
  // Resets offsets and frees large buffers once everything was consumed.
  void Reclaim();
  // Makes room for n more bytes at end_. REQUIRES: buffered() + n <= limit.
  void Reserve(size_t n);
  Status Fail(Status status);

  size_t max_body_;
  std::optional<FrameKind> expected_kind_;
  Status status_;
  // words, not bytes, so that the buffer is 8-byte aligned.
  std::unique_ptr<uint64_t[]> buffer_;
  size_t capacity_ = 0;  // bytes
  size_t begin_ = 0;     // first unconsumed byte
  size_t end_ = 0;       // one past the last received byte
  size_t prepared_ = 0;  // size of the region the last Prepare() returned
  // A body that starts misaligned in buffer_ is copied here before it is
  // returned (tally's own encoder pads bodies so this does not happen).
  std::unique_ptr<uint64_t[]> scratch_;
  size_t scratch_capacity_ = 0;  // bytes
};

}  // namespace tally

#endif  // TALLY_PROTOCOL_FRAME_H_
