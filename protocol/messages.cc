#include "protocol/messages.h"

#include <cstddef>
#include <type_traits>
#include <variant>

namespace tally::proto {

// The variants' indices are the Op numbers.
static_assert(std::variant_size_v<decltype(Request::body)> ==
              static_cast<size_t>(Op::kAdmin) + 1);
static_assert(std::variant_size_v<decltype(Response::body)> ==
              static_cast<size_t>(Op::kAdmin) + 1);
static_assert(
    std::is_same_v<std::variant_alternative_t<static_cast<size_t>(Op::kAdmin),
                                              decltype(Request::body)>,
                   AdminRequest>);
static_assert(
    std::is_same_v<std::variant_alternative_t<static_cast<size_t>(Op::kAdmin),
                                              decltype(Response::body)>,
                   AdminResult>);

std::string_view OpName(Op op) {
  switch (op) {
    case Op::kNone:
      return "none";
    case Op::kHello:
      return "hello";
    case Op::kPing:
      return "ping";
    case Op::kAdd:
      return "add";
    case Op::kQuery:
      return "query";
    case Op::kAddAndQuery:
      return "add_and_query";
    case Op::kRange:
      return "range";
    case Op::kInspect:
      return "inspect";
    case Op::kScan:
      return "scan";
    case Op::kDelete:
      return "delete";
    case Op::kInfo:
      return "info";
    case Op::kAuth:
      return "auth";
    case Op::kAdmin:
      return "admin";
  }
  return "unknown";
}

}  // namespace tally::proto
