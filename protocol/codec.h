// Codec: proto::Request / proto::Response <-> the FlatBuffer bodies of frames
// (schema protocol/tally.fbs, spec docs/protocol.md). The FlatBuffers types
// stay inside protocol/*.cc; callers see only the plain structs of
// protocol/messages.h.
//
// Decoding is the input-handling pipeline of RELIABILITY.md 4.6, in order:
//   1. size check: an empty body or one over max_body is rejected before
//      anything reads it;
//   2. the FlatBuffers Verifier, with max_depth = kVerifierMaxDepth and
//      max_tables derived from the size (protocol/limits.h); no accessor runs
//      on a buffer that fails it (PROTOCOL_ERROR);
//   3. structural checks: a known operation with its body present
//      (PROTOCOL_ERROR), at most kMaxBatchItems items (RESOURCE_EXHAUSTED).
// Items are decoded as sent, even invalid ones; the server fails a bad item on
// its own with protocol/validation.h.
//
// Thread safety: pure functions.

#ifndef TALLY_PROTOCOL_CODEC_H_
#define TALLY_PROTOCOL_CODEC_H_

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "protocol/limits.h"
#include "protocol/messages.h"
#include "protocol/result.h"

namespace tally {

// The FlatBuffer body of a request frame. Its size is a multiple of 8, so that
// frames written back to back keep every body 8-byte aligned.
std::vector<uint8_t> EncodeRequest(const proto::Request& request);

// Errors: FRAME_TOO_LARGE (body over max_body), PROTOCOL_ERROR (empty,
// unverifiable, no or unknown operation, operation without its body),
// RESOURCE_EXHAUSTED (more than kMaxBatchItems items).
// `body` may have any alignment (a misaligned one is copied first).
Result<proto::Request> DecodeRequest(std::span<const uint8_t> body,
                                     size_t max_body = kDefaultMaxFrameBody);

// The FlatBuffer body of a response frame; size a multiple of 8.
std::vector<uint8_t> EncodeResponse(const proto::Response& response);

// Errors: FRAME_TOO_LARGE, PROTOCOL_ERROR (empty, unverifiable, an unknown
// body, an OK response without a body). Response codes unknown to this build
// are kept as their number (a newer server's code is still an error).
Result<proto::Response> DecodeResponse(std::span<const uint8_t> body,
                                       size_t max_body = kDefaultMaxFrameBody);

}  // namespace tally

#endif  // TALLY_PROTOCOL_CODEC_H_
