#include "tools/cli/formatter.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <nlohmann/json.hpp>
#include <utility>

#include "protocol/quote.h"
#include "storage/duration.h"

namespace tally::cli {

namespace {

using Json = nlohmann::ordered_json;

std::string Dump(const Json& j) {
  // Keys are arbitrary bytes: replace invalid UTF-8 rather than throw.
  return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

std::string_view Bool(bool b) { return b ? "true" : "false"; }

// Joins `lines` with '\n', or with ' ' in one-line mode.
std::string Join(const std::vector<std::string>& lines, bool one_line) {
  std::string out;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (i > 0) out += one_line ? ' ' : '\n';
    out += lines[i];
  }
  return out;
}

// ---------------------------------------------------------------- aggregates

Json AggregatesJson(const proto::Aggregates& a) {
  Json j;
  j["count"] = a.count;
  j["sum"] = a.sum;
  j["min"] = a.min;
  j["max"] = a.max;
  j["avg"] = a.avg;
  j["distinct"] = a.distinct;
  j["exact"] = a.exact;
  if (!a.exact) j["distinct_error"] = a.distinct_error;
  j["covered_from_ms"] = a.covered_from_ms;
  j["covered_to_ms"] = a.covered_to_ms;
  j["resolution_ms"] = a.resolution_ms;
  return j;
}

// "field: value" lines (or "field=value" words in one-line mode).
std::string AggregatesText(const proto::Aggregates& a, bool one_line) {
  const char* sep = one_line ? "=" : ": ";
  std::vector<std::string> f = {
      fmt::format("count{}{}", sep, a.count),
      fmt::format("sum{}{}", sep, a.sum),
      fmt::format("min{}{}", sep, a.min),
      fmt::format("max{}{}", sep, a.max),
      fmt::format("avg{}{}", sep, a.avg),
      fmt::format("distinct{}{}", sep, a.distinct),
      fmt::format("exact{}{}", sep, Bool(a.exact)),
  };
  if (!a.exact)
    f.push_back(fmt::format("distinct_error{}{}", sep, a.distinct_error));
  f.push_back(fmt::format("covered_from_ms{}{}", sep, a.covered_from_ms));
  f.push_back(fmt::format("covered_to_ms{}{}", sep, a.covered_to_ms));
  f.push_back(fmt::format("resolution_ms{}{}", sep, a.resolution_ms));
  return Join(f, one_line);
}

// The short form of one RANGE bucket: its start and the value aggregates.
std::string PointText(const proto::RangePoint& p) {
  const proto::Aggregates& a = p.answer;
  std::string out = fmt::format(
      "start_ms={} count={} sum={} min={} max={} avg={} distinct={}",
      p.start_ms, a.count, a.sum, a.min, a.max, a.avg, a.distinct);
  if (!a.exact) out += fmt::format(" distinct_error={}", a.distinct_error);
  return out;
}

// ------------------------------------------------------------------- errors

std::string ErrorText(std::string_view code, std::string_view message,
                      const FormatOptions& options) {
  if (options.json) {
    Json j;
    j["error"]["code"] = code;
    j["error"]["message"] = message;
    return Dump(j);
  }
  std::string text =
      fmt::format("(error) {}{}{}", code, code == "ERR" ? " " : ": ", message);
  if (options.one_line) std::replace(text.begin(), text.end(), '\n', ' ');
  return text;
}

// The first per-item error of a response, if any.
std::pair<Code, const std::string*> FirstItemError(const proto::Response& r) {
  auto first = [](const auto& items) -> std::pair<Code, const std::string*> {
    for (const auto& item : items) {
      if (item.code != Code::kOk) return {item.code, &item.message};
    }
    return {Code::kOk, nullptr};
  };
  if (auto* add = std::get_if<proto::AddResult>(&r.body)) {
    return first(add->items);
  }
  if (auto* q = std::get_if<proto::QueryResult>(&r.body)) {
    return first(q->items);
  }
  if (auto* aq = std::get_if<proto::AddAndQueryResult>(&r.body)) {
    auto e = first(aq->adds);
    return e.first != Code::kOk ? e : first(aq->queries);
  }
  if (auto* del = std::get_if<proto::DeleteResult>(&r.body)) {
    return first(del->items);
  }
  return {Code::kOk, nullptr};
}

// ------------------------------------------------------------ per reply type

std::string AddText(const proto::AddItemResult& item, bool json) {
  if (json) {
    Json j;
    j["ok"] = true;
    j["duplicate"] = item.duplicate;
    j["time_ms"] = item.time_ms;
    return Dump(j);
  }
  return item.duplicate ? "OK (duplicate)" : "OK";
}

std::string RangeReply(const proto::RangeRequest* request,
                       const proto::RangeResult& range,
                       const FormatOptions& options) {
  if (options.json) {
    Json buckets = Json::array();
    for (const proto::RangePoint& p : range.points) {
      Json b;
      b["start_ms"] = p.start_ms;
      b.update(AggregatesJson(p.answer));
      buckets.push_back(std::move(b));
    }
    Json j;
    j["buckets"] = std::move(buckets);
    return Dump(j);
  }
  if (range.points.empty()) return "(empty array)";
  std::vector<std::string> lines;
  std::vector<int64_t> counts;
  int64_t max_count = 0;
  for (size_t i = 0; i < range.points.size(); ++i) {
    lines.push_back(fmt::format("{}) {}", i + 1, PointText(range.points[i])));
    counts.push_back(range.points[i].answer.count);
    max_count = std::max(max_count, range.points[i].answer.count);
  }
  if (options.chart && !options.one_line) {
    std::string caption = fmt::format("max {}", max_count);
    if (request != nullptr) {
      caption += " per " + FormatDuration(request->step_ms);
    }
    lines.push_back(fmt::format("count {}  ({})", Sparkline(counts), caption));
  }
  return Join(lines, options.one_line);
}

std::string InspectReply(const proto::InspectResult& r,
                         const FormatOptions& options) {
  if (options.json) {
    Json j;
    j["key"] = r.key;
    j["policy"] = r.policy;
    j["track_distinct"] = r.track_distinct;
    j["max_lateness_ms"] = r.max_lateness_ms;
    j["max_skew_ms"] = r.max_skew_ms;
    j["raw"] = r.raw;
    j["raw_events"] = r.raw_events;
    j["bytes"] = r.bytes;
    Json tiers = Json::array();
    for (const proto::TierInfo& t : r.tiers) {
      Json tj;
      tj["resolution_ms"] = t.resolution_ms;
      tj["retention_ms"] = t.retention_ms;
      tj["buckets"] = t.buckets;
      tj["sketches"] = t.sketches;
      tj["first_bucket_ms"] = t.first_bucket_ms;
      tj["last_bucket_ms"] = t.last_bucket_ms;
      tj["bytes"] = t.bytes;
      tiers.push_back(std::move(tj));
    }
    j["tiers"] = std::move(tiers);
    return Dump(j);
  }
  const char* sep = options.one_line ? "=" : ": ";
  std::vector<std::string> lines = {
      fmt::format("key{}{}", sep, Quote(r.key)),
      fmt::format("policy{}{}", sep, r.policy),
      fmt::format("track_distinct{}{}", sep, Bool(r.track_distinct)),
      fmt::format("max_lateness_ms{}{}", sep, r.max_lateness_ms),
      fmt::format("max_skew_ms{}{}", sep, r.max_skew_ms),
      fmt::format("raw{}{}", sep, Bool(r.raw)),
      fmt::format("raw_events{}{}", sep, r.raw_events),
      fmt::format("bytes{}{}", sep, r.bytes),
      "tiers:",
  };
  if (r.tiers.empty()) lines.back() += " (empty array)";
  for (size_t i = 0; i < r.tiers.size(); ++i) {
    const proto::TierInfo& t = r.tiers[i];
    lines.push_back(fmt::format(
        "{}) {}/{} buckets={} sketches={} first_bucket_ms={} "
        "last_bucket_ms={} bytes={}",
        i + 1, FormatDuration(t.resolution_ms), FormatDuration(t.retention_ms),
        t.buckets, t.sketches, t.first_bucket_ms, t.last_bucket_ms, t.bytes));
  }
  return Join(lines, options.one_line);
}

std::string ScanReply(const proto::ScanResult& r,
                      const FormatOptions& options) {
  if (options.json) {
    Json j;
    j["cursor"] = r.cursor;
    j["keys"] = r.keys;
    return Dump(j);
  }
  if (options.one_line) {
    std::string keys;
    for (size_t i = 0; i < r.keys.size(); ++i) {
      if (i > 0) keys += ',';
      keys += Quote(r.keys[i]);
    }
    return fmt::format("cursor={} keys=[{}]", r.cursor, keys);
  }
  // redis-cli's nested array.
  std::vector<std::string> lines = {fmt::format("1) \"{}\"", r.cursor)};
  if (r.keys.empty()) lines.push_back("2) (empty array)");
  for (size_t i = 0; i < r.keys.size(); ++i) {
    lines.push_back(fmt::format("{}{}) {}", i == 0 ? "2) " : "   ", i + 1,
                                Quote(r.keys[i])));
  }
  return Join(lines, false);
}

std::string DeleteReply(const proto::DeleteResult& r,
                        const FormatOptions& options) {
  int64_t deleted = 0;
  std::vector<bool> existed;
  for (const proto::DeleteItemResult& item : r.items) {
    deleted += item.existed ? 1 : 0;
    existed.push_back(item.existed);
  }
  if (options.json) {
    Json j;
    j["deleted"] = deleted;
    j["existed"] = existed;
    return Dump(j);
  }
  return fmt::format("(integer) {}", deleted);
}

// "# Section" / "field:value" text -> {"section": {"field": value}}; values
// that are whole numbers become JSON numbers.
Json InfoJson(std::string_view text) {
  Json sections = Json::object();
  Json* current = nullptr;
  while (!text.empty()) {
    size_t eol = text.find('\n');
    std::string_view line = text.substr(0, eol);
    text = eol == std::string_view::npos ? "" : text.substr(eol + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) continue;
    if (line[0] == '#') {
      std::string name(line.substr(1));
      name.erase(0, name.find_first_not_of(' '));
      for (char& c : name) c = static_cast<char>(std::tolower(c));
      current = &sections[name];
      *current = Json::object();
      continue;
    }
    if (current == nullptr) current = &sections["default"];
    size_t colon = line.find(':');
    std::string field(line.substr(0, colon));
    std::string_view value =
        colon == std::string_view::npos ? "" : line.substr(colon + 1);
    int64_t i = 0;
    double d = 0;
    const char* end = value.data() + value.size();
    if (auto [p, ec] = std::from_chars(value.data(), end, i);
        !value.empty() && ec == std::errc() && p == end) {
      (*current)[field] = i;
    } else if (auto [p2, ec2] = std::from_chars(value.data(), end, d);
               !value.empty() && ec2 == std::errc() && p2 == end) {
      (*current)[field] = d;
    } else {
      (*current)[field] = std::string(value);
    }
  }
  return sections;
}

std::string InfoReply(const proto::InfoResult& r,
                      const FormatOptions& options) {
  if (options.json) {
    Json j;
    j["info"] = InfoJson(r.text);
    return Dump(j);
  }
  if (options.one_line) return Quote(r.text);
  std::string text = r.text;
  while (!text.empty() && text.back() == '\n') text.pop_back();
  return text;
}

std::string HelloReply(const proto::HelloResult& r,
                       const FormatOptions& options) {
  if (options.json) {
    Json j;
    j["server"] = r.server_name;
    j["version"] = r.server_version;
    j["protocol_version"] = r.protocol_version;
    j["server_time_ms"] = r.server_time_ms;
    return Dump(j);
  }
  const char* sep = options.one_line ? "=" : ": ";
  return Join({fmt::format("server{}{}", sep, r.server_name),
               fmt::format("version{}{}", sep, r.server_version),
               fmt::format("protocol_version{}{}", sep, r.protocol_version),
               fmt::format("server_time_ms{}{}", sep, r.server_time_ms)},
              options.one_line);
}

}  // namespace

std::string FormatResponse(const proto::Request& request,
                           const proto::Response& response,
                           const FormatOptions& options) {
  if (response.code != Code::kOk) {
    return FormatError(response.code, response.message, options);
  }
  if (auto [code, message] = FirstItemError(response); code != Code::kOk) {
    return FormatError(code, *message, options);
  }
  const auto& body = response.body;
  if (std::holds_alternative<proto::PingResult>(body)) {
    return options.json ? R"({"reply":"PONG"})" : "PONG";
  }
  if (auto* hello = std::get_if<proto::HelloResult>(&body)) {
    return HelloReply(*hello, options);
  }
  if (auto* add = std::get_if<proto::AddResult>(&body)) {
    if (add->items.size() == 1) return AddText(add->items[0], options.json);
    std::vector<std::string> lines;
    Json items = Json::array();
    for (size_t i = 0; i < add->items.size(); ++i) {
      if (options.json) {
        items.push_back(Json::parse(AddText(add->items[i], true)));
      } else {
        lines.push_back(
            fmt::format("{}) {}", i + 1, AddText(add->items[i], false)));
      }
    }
    return options.json ? Dump(Json{{"items", std::move(items)}})
                        : Join(lines, options.one_line);
  }
  if (auto* query = std::get_if<proto::QueryResult>(&body)) {
    if (query->items.size() == 1) {
      const proto::Aggregates& a = query->items[0].answer;
      return options.json ? Dump(AggregatesJson(a))
                          : AggregatesText(a, options.one_line);
    }
    std::vector<std::string> lines;
    Json items = Json::array();
    for (size_t i = 0; i < query->items.size(); ++i) {
      const proto::Aggregates& a = query->items[i].answer;
      if (options.json) {
        items.push_back(AggregatesJson(a));
      } else {
        lines.push_back(fmt::format("{}) {}", i + 1, AggregatesText(a, true)));
      }
    }
    return options.json ? Dump(Json{{"items", std::move(items)}})
                        : Join(lines, options.one_line);
  }
  if (auto* range = std::get_if<proto::RangeResult>(&body)) {
    return RangeReply(std::get_if<proto::RangeRequest>(&request.body), *range,
                      options);
  }
  if (auto* inspect = std::get_if<proto::InspectResult>(&body)) {
    return InspectReply(*inspect, options);
  }
  if (auto* scan = std::get_if<proto::ScanResult>(&body)) {
    return ScanReply(*scan, options);
  }
  if (auto* del = std::get_if<proto::DeleteResult>(&body)) {
    return DeleteReply(*del, options);
  }
  if (auto* info = std::get_if<proto::InfoResult>(&body)) {
    return InfoReply(*info, options);
  }
  if (auto* admin = std::get_if<proto::AdminResult>(&body)) {
    return FormatAdminReply(admin->reply, options);
  }
  return options.json ? R"({"ok":true})" : "OK";
}

bool IsError(const proto::Response& response) {
  return response.code != Code::kOk ||
         FirstItemError(response).first != Code::kOk;
}

std::string FormatError(Code code, std::string_view message,
                        const FormatOptions& options) {
  return ErrorText(CodeName(code), message, options);
}

std::string FormatSyntaxError(std::string_view message,
                              const FormatOptions& options) {
  return ErrorText("ERR", message, options);
}

std::string Sparkline(const std::vector<int64_t>& values, size_t width) {
  static constexpr std::string_view kBlocks[] = {"▁", "▂", "▃", "▄",
                                                 "▅", "▆", "▇", "█"};
  if (values.empty() || width == 0) return "";
  const size_t group = (values.size() + width - 1) / width;
  std::vector<int64_t> cells;
  for (size_t i = 0; i < values.size(); i += group) {
    int64_t sum = 0;
    for (size_t k = i; k < std::min(values.size(), i + group); ++k) {
      sum += std::max<int64_t>(values[k], 0);
    }
    cells.push_back(sum);
  }
  const int64_t max = *std::max_element(cells.begin(), cells.end());
  std::string out;
  for (int64_t v : cells) {
    size_t level = 0;
    if (max > 0 && v > 0) {
      level = static_cast<size_t>(std::llround(7.0 * static_cast<double>(v) /
                                               static_cast<double>(max)));
      level = std::clamp<size_t>(level, 1, 7);  // non-zero never looks empty
    }
    out += kBlocks[level];
  }
  return out;
}

std::string Quote(std::string_view bytes) { return QuoteBytes(bytes); }

}  // namespace tally::cli
