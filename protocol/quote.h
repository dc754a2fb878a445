// QuoteBytes: a binary-safe string quoted the way redis-cli shows one
// (sdscatrepr): "a b", "line\n", "\x00". Keys and members are arbitrary
// bytes; the CLI, MONITOR and SLOWLOG all print them with this one function
// so an operator sees the same key spelled the same way everywhere.

#ifndef TALLY_PROTOCOL_QUOTE_H_
#define TALLY_PROTOCOL_QUOTE_H_

#include <string>
#include <string_view>

namespace tally {

// `bytes` between double quotes; \ " \n \r \t \a \b escaped by name, other
// bytes outside printable ASCII (0x20..0x7e) as \xhh.
std::string QuoteBytes(std::string_view bytes);

}  // namespace tally

#endif  // TALLY_PROTOCOL_QUOTE_H_
