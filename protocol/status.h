// Status: the result of an operation that can fail, and the stable error
// vocabulary of tally. Every code maps one-to-one to the wire's error code
// (docs/protocol.md), so a storage error reaches a client unchanged.
//
// Thread safety: Status is a value type; distinct objects may be used from
// different threads freely.

#ifndef TALLY_PROTOCOL_STATUS_H_
#define TALLY_PROTOCOL_STATUS_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace tally {

// DO NOT CHANGE the numeric values: persisted on the wire (docs/protocol.md).
// New codes are appended; retired ones are never reused.
enum class Code : uint16_t {
  kOk = 0,
  kInvalidArgument = 1,  // a field is malformed or out of its documented range
  kInvalidKey = 2,       // key empty or longer than the maximum (256 bytes)
  kTimeOutOfRange =
      3,          // event time outside [now - max_lateness, now + max_skew]
  kOverflow = 4,  // a count or sum would leave int64
  kInvalidWindow = 5,  // window empty, reversed or too long
  kNotFound = 6,       // the named thing (e.g. a key to inspect) does not exist
  kResourceExhausted = 7,  // a configured limit (memory, batch size...) was hit
  kBusy = 8,               // the server is overloaded; retry later
  kNotPersisted = 9,       // the WAL could not be written; nothing was applied
  kIoError = 10,
  kCorruption = 11,
  kFrameTooLarge = 12,
  kProtocolError = 13,
  kUnsupportedVersion = 14,
  kDeadlineExceeded = 15,
  kUnavailable = 16,
  kAuthRequired = 17,
  kNoPermission = 18,
  kIdConflict = 19,  // an idempotency id reused with a different payload
  kInternal = 20,
};

// Stable upper-case name of a code, e.g. "TIME_OUT_OF_RANGE". Never empty.
std::string_view CodeName(Code code);

class [[nodiscard]] Status {
 public:
  // OK; allocates nothing.
  Status() noexcept = default;
  Status(Code code, std::string_view message);

  static Status Ok() { return Status(); }
  static Status InvalidArgument(std::string_view msg) {
    return {Code::kInvalidArgument, msg};
  }
  static Status InvalidKey(std::string_view msg) {
    return {Code::kInvalidKey, msg};
  }
  static Status TimeOutOfRange(std::string_view msg) {
    return {Code::kTimeOutOfRange, msg};
  }
  static Status Overflow(std::string_view msg) {
    return {Code::kOverflow, msg};
  }
  static Status InvalidWindow(std::string_view msg) {
    return {Code::kInvalidWindow, msg};
  }
  static Status NotFound(std::string_view msg) {
    return {Code::kNotFound, msg};
  }
  static Status ResourceExhausted(std::string_view msg) {
    return {Code::kResourceExhausted, msg};
  }
  static Status Internal(std::string_view msg) {
    return {Code::kInternal, msg};
  }

  bool ok() const { return state_ == nullptr; }
  Code code() const { return state_ ? state_->code : Code::kOk; }
  // The short human-readable message; empty when ok().
  std::string_view message() const {
    return state_ ? std::string_view(state_->message) : "";
  }
  // "CODE_NAME: message", or "OK".
  std::string ToString() const;

  // Copies share the (immutable) message.
  Status(const Status&) = default;
  Status& operator=(const Status&) = default;
  Status(Status&&) noexcept = default;
  Status& operator=(Status&&) noexcept = default;

 private:
  struct State {
    Code code;
    std::string message;
  };
  std::shared_ptr<const State> state_;
};

}  // namespace tally

#endif  // TALLY_PROTOCOL_STATUS_H_
