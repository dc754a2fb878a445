#include "protocol/validation.h"

#include <string>

#include "protocol/limits.h"

namespace tally::proto {
namespace {

std::string Num(int64_t v) { return std::to_string(v); }

}  // namespace

Status ValidateKey(std::string_view key) {
  if (key.empty()) return Status::InvalidKey("key is empty");
  if (key.size() > kMaxKeyBytes) {
    return Status::InvalidKey("key is " + std::to_string(key.size()) +
                              " bytes; the maximum is " +
                              std::to_string(kMaxKeyBytes));
  }
  return Status::Ok();
}

Status ValidateAggs(uint32_t aggs) {
  if ((aggs & ~kAggAllBits) != 0) {
    return Status::InvalidArgument("unknown aggregate bits " +
                                   std::to_string(aggs & ~kAggAllBits) +
                                   " (known: 1..32, mask 63)");
  }
  return Status::Ok();
}

Status ValidateAddItem(const AddItem& item) {
  if (Status s = ValidateKey(item.key); !s.ok()) return s;
  if (item.time_ms < 0) {
    return Status::InvalidArgument("time_ms must be >= 0 (0 = now), got " +
                                   Num(item.time_ms));
  }
  if (item.count < 1) {
    return Status::InvalidArgument("count must be >= 1, got " +
                                   Num(item.count));
  }
  if (item.member.has_value() && item.member->size() > kMaxMemberBytes) {
    return Status::InvalidArgument(
        "member is " + std::to_string(item.member->size()) +
        " bytes; the maximum is " + std::to_string(kMaxMemberBytes));
  }
  if (item.id.has_value()) {
    if (item.id->empty()) {
      return Status::InvalidArgument("id is empty (omit it for none)");
    }
    if (item.id->size() > kMaxIdBytes) {
      return Status::InvalidArgument(
          "id is " + std::to_string(item.id->size()) +
          " bytes; the maximum is " + std::to_string(kMaxIdBytes));
    }
  }
  return Status::Ok();
}

Status ValidateQueryItem(const QueryItem& item) {
  if (Status s = ValidateKey(item.key); !s.ok()) return s;
  if (Status s = ValidateAggs(item.aggs); !s.ok()) return s;
  if (item.last_ms != 0) {
    if (item.last_ms < 0) {
      return Status::InvalidWindow("last_ms must be > 0, got " +
                                   Num(item.last_ms));
    }
    if (item.from_ms != 0 || item.to_ms != 0) {
      return Status::InvalidWindow(
          "a `last` window takes no from_ms/to_ms (set one shape only)");
    }
    if (item.at_ms < 0) {
      return Status::InvalidWindow("at_ms must be >= 0 (0 = now), got " +
                                   Num(item.at_ms));
    }
    return Status::Ok();
  }
  if (item.at_ms != 0) {
    return Status::InvalidWindow("at_ms applies only to a `last` window");
  }
  if (item.from_ms == 0 && item.to_ms == 0) {
    return Status::InvalidWindow("no window: set last_ms or from_ms/to_ms");
  }
  if (item.from_ms < 0 || item.from_ms >= item.to_ms) {
    return Status::InvalidWindow("window [" + Num(item.from_ms) + ", " +
                                 Num(item.to_ms) +
                                 ") is empty, reversed or before 1970");
  }
  return Status::Ok();
}

Status ValidateRangeRequest(const RangeRequest& request) {
  if (Status s = ValidateKey(request.key); !s.ok()) return s;
  if (Status s = ValidateAggs(request.aggs); !s.ok()) return s;
  if (request.from_ms < 0 || request.from_ms >= request.to_ms) {
    return Status::InvalidWindow("range [" + Num(request.from_ms) + ", " +
                                 Num(request.to_ms) +
                                 ") is empty, reversed or before 1970");
  }
  if (request.step_ms <= 0) {
    return Status::InvalidArgument("step_ms must be > 0, got " +
                                   Num(request.step_ms));
  }
  return Status::Ok();
}

Status ValidateScanRequest(const ScanRequest& request) {
  if (request.pattern.size() > kMaxPatternBytes) {
    return Status::InvalidArgument(
        "pattern is " + std::to_string(request.pattern.size()) +
        " bytes; the maximum is " + std::to_string(kMaxPatternBytes));
  }
  if (request.count > kMaxScanCount) {
    return Status::InvalidArgument(
        "count must be <= " + std::to_string(kMaxScanCount) + ", got " +
        std::to_string(request.count));
  }
  return Status::Ok();
}

}  // namespace tally::proto
