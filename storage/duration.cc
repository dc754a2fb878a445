#include "storage/duration.h"

#include <limits>

namespace tally {

Result<int64_t> ParseDuration(std::string_view text) {
  size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9')
    ++digits;
  if (digits == 0) {
    return Status::InvalidArgument(
        "duration '" + std::string(text) +
        "' must start with digits, e.g. 250ms, 60s, 5m, 1h, 7d");
  }
  int64_t value = 0;
  for (size_t i = 0; i < digits; ++i) {
    if (__builtin_mul_overflow(value, 10, &value) ||
        __builtin_add_overflow(value, text[i] - '0', &value)) {
      return Status::InvalidArgument("duration '" + std::string(text) +
                                     "' is too large");
    }
  }
  std::string_view unit = text.substr(digits);
  int64_t scale;
  if (unit.empty() || unit == "ms") {
    scale = 1;
  } else if (unit == "s") {
    scale = kSecondMs;
  } else if (unit == "m") {
    scale = kMinuteMs;
  } else if (unit == "h") {
    scale = kHourMs;
  } else if (unit == "d") {
    scale = kDayMs;
  } else {
    return Status::InvalidArgument("duration '" + std::string(text) +
                                   "' has unknown unit '" + std::string(unit) +
                                   "' (use ms, s, m, h or d)");
  }
  int64_t ms;
  if (__builtin_mul_overflow(value, scale, &ms)) {
    return Status::InvalidArgument("duration '" + std::string(text) +
                                   "' is too large");
  }
  return ms;
}

std::string FormatDuration(int64_t ms) {
  struct Unit {
    int64_t ms;
    const char* suffix;
  };
  static constexpr Unit kUnits[] = {
      {kDayMs, "d"}, {kHourMs, "h"}, {kMinuteMs, "m"}, {kSecondMs, "s"}};
  if (ms != 0) {
    for (const Unit& u : kUnits) {
      if (ms % u.ms == 0) return std::to_string(ms / u.ms) + u.suffix;
    }
  }
  return std::to_string(ms) + "ms";
}

}  // namespace tally
