// Admin command replies (proto::AdminReply) in redis-cli's shapes: "(nil)",
// "(integer) 3", quoted strings, "1) ..." arrays with nested items indented
// under their number, and maps as "1# name => value" (redis-cli's RESP3 map
// form). JSON maps each kind to its natural JSON value.

#include <fmt/format.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tools/cli/formatter.h"

namespace tally::cli {
namespace {

using Json = nlohmann::ordered_json;
using Kind = proto::AdminReply::Kind;

Json ToJson(const proto::AdminReply& r) {
  switch (r.kind) {
    case Kind::kNil:
      return nullptr;
    case Kind::kStatus:
    case Kind::kText:
      return r.text;
    case Kind::kInteger:
      return r.integer;
    case Kind::kArray: {
      Json a = Json::array();
      for (const proto::AdminReply& e : r.elements) a.push_back(ToJson(e));
      return a;
    }
    case Kind::kMap: {
      Json m = Json::object();
      for (size_t i = 0; i + 1 < r.elements.size(); i += 2) {
        m[r.elements[i].text] = ToJson(r.elements[i + 1]);
      }
      return m;
    }
  }
  return nullptr;
}

// A scalar on one line. Multi-line text (INFO-like reports) is shown as it
// is in text mode, as redis-cli does with verbatim strings.
std::string Scalar(const proto::AdminReply& r, bool one_line) {
  switch (r.kind) {
    case Kind::kNil:
      return "(nil)";
    case Kind::kStatus:
      return r.text;
    case Kind::kInteger:
      return fmt::format("(integer) {}", r.integer);
    case Kind::kText:
      if (!one_line && r.text.find('\n') != std::string::npos) return r.text;
      return Quote(r.text);
    case Kind::kArray:
    case Kind::kMap:
      break;
  }
  return "";
}

// Appends the lines of `r` to `out`; the first line is prefixed by `first`,
// the others by as many blanks (redis-cli's nested layout).
void Lines(const proto::AdminReply& r, const std::string& first,
           std::vector<std::string>* out) {
  const std::string indent(first.size(), ' ');
  const bool map = r.kind == Kind::kMap;
  if (r.kind != Kind::kArray && !map) {
    std::string text = Scalar(r, false);
    size_t start = 0;
    bool is_first = true;
    while (true) {
      const size_t nl = text.find('\n', start);
      out->push_back((is_first ? first : indent) +
                     text.substr(start, nl - start));
      is_first = false;
      if (nl == std::string::npos) break;
      start = nl + 1;
    }
    return;
  }
  if (r.elements.empty()) {
    out->push_back(first + (map ? "(empty hash)" : "(empty array)"));
    return;
  }
  const size_t n = map ? r.elements.size() / 2 : r.elements.size();
  const size_t width = std::to_string(n).size();
  for (size_t i = 0; i < n; ++i) {
    std::string label = fmt::format("{:>{}}{} ", i + 1, width, map ? "#" : ")");
    const proto::AdminReply* value = &r.elements[i];
    if (map) {
      label += Scalar(r.elements[2 * i], true) + " => ";
      value = &r.elements[2 * i + 1];
    }
    Lines(*value, (i == 0 ? first : indent) + label, out);
  }
}

// One line: scalars as they are, arrays as [a, b], maps as {k: v}.
std::string OneLine(const proto::AdminReply& r) {
  if (r.kind == Kind::kArray || r.kind == Kind::kMap) {
    const bool map = r.kind == Kind::kMap;
    std::string s = map ? "{" : "[";
    for (size_t i = 0; i < r.elements.size(); ++i) {
      if (i > 0) s += map && i % 2 == 1 ? ": " : ", ";
      s += OneLine(r.elements[i]);
    }
    return s + (map ? "}" : "]");
  }
  return Scalar(r, true);
}

}  // namespace

std::string FormatAdminReply(const proto::AdminReply& reply,
                             const FormatOptions& options) {
  if (options.json) {
    return ToJson(reply).dump(-1, ' ', false, Json::error_handler_t::replace);
  }
  if (options.one_line) return OneLine(reply);
  std::vector<std::string> lines;
  Lines(reply, "", &lines);
  std::string out;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (i > 0) out += '\n';
    out += lines[i];
  }
  return out;
}

}  // namespace tally::cli
