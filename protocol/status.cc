#include "protocol/status.h"

namespace tally {

std::string_view CodeName(Code code) {
  switch (code) {
    case Code::kOk:
      return "OK";
    case Code::kInvalidArgument:
      return "INVALID_ARGUMENT";
    case Code::kInvalidKey:
      return "INVALID_KEY";
    case Code::kTimeOutOfRange:
      return "TIME_OUT_OF_RANGE";
    case Code::kOverflow:
      return "OVERFLOW";
    case Code::kInvalidWindow:
      return "INVALID_WINDOW";
    case Code::kNotFound:
      return "NOT_FOUND";
    case Code::kResourceExhausted:
      return "RESOURCE_EXHAUSTED";
    case Code::kBusy:
      return "BUSY";
    case Code::kNotPersisted:
      return "NOT_PERSISTED";
    case Code::kIoError:
      return "IO_ERROR";
    case Code::kCorruption:
      return "CORRUPTION";
    case Code::kFrameTooLarge:
      return "FRAME_TOO_LARGE";
    case Code::kProtocolError:
      return "PROTOCOL_ERROR";
    case Code::kUnsupportedVersion:
      return "UNSUPPORTED_VERSION";
    case Code::kDeadlineExceeded:
      return "DEADLINE_EXCEEDED";
    case Code::kUnavailable:
      return "UNAVAILABLE";
    case Code::kAuthRequired:
      return "AUTH_REQUIRED";
    case Code::kNoPermission:
      return "NO_PERMISSION";
    case Code::kIdConflict:
      return "ID_CONFLICT";
    case Code::kInternal:
      return "INTERNAL";
  }
  return "UNKNOWN_CODE";
}

Status::Status(Code code, std::string_view message) {
  if (code != Code::kOk) {
    state_ = std::make_shared<const State>(State{code, std::string(message)});
  }
}

std::string Status::ToString() const {
  if (ok()) return "OK";
  std::string out(CodeName(code()));
  if (!state_->message.empty()) {
    out += ": ";
    out += state_->message;
  }
  return out;
}

}  // namespace tally
