// Validation of decoded messages that needs no engine: key lengths, field
// ranges, window shapes. The codec (protocol/codec.h) only rejects what makes
// a whole request impossible to process (an unverifiable buffer, an unknown
// operation, too many items); a bad *item* is kept by the decoder and failed
// on its own by the server with the status these functions return, so one
// bad event never costs the rest of its batch (docs/protocol.md, "Errors").
//
// The engine checks what depends on its state or configuration (event time
// against the policy's lateness and skew, window length against retention,
// distinct asked of a policy that does not track it, overflow).
//
// Thread safety: pure functions.

#ifndef TALLY_PROTOCOL_VALIDATION_H_
#define TALLY_PROTOCOL_VALIDATION_H_

#include <cstdint>
#include <string_view>

#include "protocol/messages.h"
#include "protocol/status.h"

namespace tally::proto {

// INVALID_KEY unless 1 <= key.size() <= kMaxKeyBytes.
Status ValidateKey(std::string_view key);

// INVALID_ARGUMENT for bits outside kAggAllBits (0 = all is valid).
Status ValidateAggs(uint32_t aggs);

// Key; INVALID_ARGUMENT for time_ms < 0, count < 1, a member longer than
// kMaxMemberBytes, an id that is empty or longer than kMaxIdBytes.
Status ValidateAddItem(const AddItem& item);

// Key; aggs; INVALID_WINDOW unless the item is exactly one window shape:
// `last` (last_ms > 0, at_ms >= 0, from_ms == to_ms == 0) or absolute
// (last_ms == at_ms == 0, 0 <= from_ms < to_ms).
Status ValidateQueryItem(const QueryItem& item);

// Key; aggs; INVALID_WINDOW unless 0 <= from_ms < to_ms; INVALID_ARGUMENT
// unless step_ms > 0. (The engine bounds the number of points.)
Status ValidateRangeRequest(const RangeRequest& request);

// INVALID_ARGUMENT for a pattern longer than kMaxPatternBytes or a count above
// kMaxScanCount.
Status ValidateScanRequest(const ScanRequest& request);

}  // namespace tally::proto

#endif  // TALLY_PROTOCOL_VALIDATION_H_
