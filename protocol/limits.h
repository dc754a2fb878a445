// Protocol limits: the defaults every tally server and client agree on.
// docs/protocol.md ("Limits") explains each one; the server may be configured
// with lower values, never higher ones than a peer was built with.

#ifndef TALLY_PROTOCOL_LIMITS_H_
#define TALLY_PROTOCOL_LIMITS_H_

#include <cstddef>
#include <cstdint>

namespace tally {

// The protocol version this build speaks (Hello negotiates it; it is not the
// frame header's version byte, which versions only the 24-byte header).
inline constexpr uint32_t kProtocolVersion = 1;
// The oldest protocol version this build still accepts.
inline constexpr uint32_t kMinProtocolVersion = 1;

// Largest frame body accepted by default (TigerBeetle's message size). A
// larger body_length fails the frame with FRAME_TOO_LARGE before any of the
// body is buffered.
inline constexpr size_t kDefaultMaxFrameBody = size_t{1} << 20;

// Keys are 1..kMaxKeyBytes bytes, binary-safe (DESIGN.md, "Data model").
inline constexpr size_t kMaxKeyBytes = 256;
// A distinct member and an idempotency id are at most this long.
inline constexpr size_t kMaxMemberBytes = 256;
inline constexpr size_t kMaxIdBytes = 128;
// Scan patterns are at most this long.
inline constexpr size_t kMaxPatternBytes = 256;

// Items in one request: AddRequest items, QueryRequest items, the adds plus the
// queries of an AddAndQueryRequest, DeleteRequest keys. More is a whole-request
// RESOURCE_EXHAUSTED.
inline constexpr size_t kMaxBatchItems = 10000;
// Largest page a Scan may ask for; larger counts are INVALID_ARGUMENT.
inline constexpr uint32_t kMaxScanCount = 10000;
// An admin command (AdminRequest) has at most this many arguments, the name
// included.
inline constexpr size_t kMaxAdminArgs = 64;

// FlatBuffers Verifier bounds used by the codec (docs/protocol.md, "Input
// handling"). Tables nest at most 3 deep today; 16 leaves room for appended
// fields. max_tables is derived from the body size: at most one table per
// kMinTableBytes of body plus a little slack, so a buffer that makes the
// verifier visit the same table again and again (offset reuse) is rejected and
// verification stays linear in the body size.
inline constexpr uint32_t kVerifierMaxDepth = 16;
inline constexpr size_t kMinTableBytes = 4;

// Bytes of keys, members, ids and text one decoded message may hold: the
// larger of this and the body size. A full batch of valid items needs at most
// kMaxBatchItems * (256 + 256 + 128) = 6.4 MB; only a buffer that points many
// items at one large vector (decoding amplification) goes beyond, and is
// rejected with PROTOCOL_ERROR.
inline constexpr size_t kMaxDecodedFieldBytes = size_t{8} << 20;

}  // namespace tally

#endif  // TALLY_PROTOCOL_LIMITS_H_
