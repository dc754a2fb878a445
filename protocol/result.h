// Result<T>: a value or a non-OK Status, for functions that produce something
// and can fail on their input. Never throws for expected failures.

#ifndef TALLY_PROTOCOL_RESULT_H_
#define TALLY_PROTOCOL_RESULT_H_

#include <cassert>
#include <optional>
#include <utility>

#include "protocol/status.h"

namespace tally {

template <typename T>
class [[nodiscard]] Result {
 public:
  // REQUIRES: !status.ok().
  Result(Status status) : status_(std::move(status)) {
    assert(!status_.ok());
  }                                              // NOLINT
  Result(T value) : value_(std::move(value)) {}  // NOLINT

  bool ok() const { return status_.ok(); }
  const Status& status() const { return status_; }

  // REQUIRES: ok().
  T& value() & {
    assert(ok());
    return *value_;
  }
  const T& value() const& {
    assert(ok());
    return *value_;
  }
  T&& value() && {
    assert(ok());
    return std::move(*value_);
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  Status status_;
  std::optional<T> value_;
};

}  // namespace tally

#endif  // TALLY_PROTOCOL_RESULT_H_
