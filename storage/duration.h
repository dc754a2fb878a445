// Durations as operators write them: "250ms", "60s", "5m", "1h", "7d", or a
// plain number of milliseconds. Shared by the policy parser, the CLI and the
// benchmark so that every tool spells time the same way.

#ifndef TALLY_STORAGE_DURATION_H_
#define TALLY_STORAGE_DURATION_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "protocol/result.h"

namespace tally {

inline constexpr int64_t kSecondMs = 1000;
inline constexpr int64_t kMinuteMs = 60 * kSecondMs;
inline constexpr int64_t kHourMs = 60 * kMinuteMs;
inline constexpr int64_t kDayMs = 24 * kHourMs;

// Parses "<digits>[ms|s|m|h|d]" (no unit = milliseconds). Rejects empty input,
// signs, fractions, unknown units and values that overflow int64 ms.
Result<int64_t> ParseDuration(std::string_view text);

// The shortest exact spelling: 7200000 -> "2h", 90000 -> "90s", 1500 ->
// "1500ms".
std::string FormatDuration(int64_t ms);

}  // namespace tally

#endif  // TALLY_STORAGE_DURATION_H_
