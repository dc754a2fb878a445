// The pure text of the special modes (tools/cli/special_modes.h). Each
// format string is redis-cli 7.0's (src/redis-cli.c), so that operators and
// their scripts read tally's output the way they read Redis'.

#include <cstdio>
#include <string>
#include <utility>

#include "tools/cli/formatter.h"
#include "tools/cli/special_modes.h"

namespace tally::cli {
namespace {

// snprintf into a string of the size it needs (keys' reprs can be 1 KiB).
template <typename... Args>
std::string Printf(const char* format, Args... args) {
  const int n = std::snprintf(nullptr, 0, format, args...);
  if (n <= 0) return "";
  std::string out(static_cast<size_t>(n) + 1, '\0');
  std::snprintf(out.data(), out.size(), format, args...);
  out.resize(static_cast<size_t>(n));
  return out;
}

// A field's value as an integer, or nullopt when absent or not a number
// (a server without that INFO field, e.g. connected_clients before the
// clients section existed).
std::optional<int64_t> Field(
    const std::map<std::string, std::string, std::less<>>& info,
    std::string_view name) {
  auto it = info.find(name);
  if (it == info.end()) return std::nullopt;
  try {
    size_t used = 0;
    const long long v = std::stoll(it->second, &used);
    if (used != it->second.size()) return std::nullopt;
    return static_cast<int64_t>(v);
  } catch (...) {
    return std::nullopt;
  }
}

std::string OrDash(std::optional<int64_t> v) {
  return v ? std::to_string(*v) : "-";
}

// The AdminReply map's value under `name`, or nullptr.
const proto::AdminReply* MapGet(const proto::AdminReply& map,
                                std::string_view name) {
  if (map.kind != proto::AdminReply::Kind::kMap) return nullptr;
  for (size_t i = 0; i + 1 < map.elements.size(); i += 2) {
    if (map.elements[i].text == name) return &map.elements[i + 1];
  }
  return nullptr;
}

}  // namespace

std::string BytesToHuman(int64_t n) {
  std::string sign;
  if (n < 0) {
    sign = "-";
    n = -n;
  }
  const auto d = static_cast<double>(n);
  constexpr double kK = 1024;
  if (n < 1024) return sign + Printf("%lldB", static_cast<long long>(n));
  if (d < kK * kK) return sign + Printf("%.2fK", d / kK);
  if (d < kK * kK * kK) return sign + Printf("%.2fM", d / (kK * kK));
  if (d < kK * kK * kK * kK) return sign + Printf("%.2fG", d / (kK * kK * kK));
  if (d < kK * kK * kK * kK * kK) {
    return sign + Printf("%.2fT", d / (kK * kK * kK * kK));
  }
  return sign + Printf("%.2fP", d / (kK * kK * kK * kK * kK));
}

std::map<std::string, std::string, std::less<>> ParseInfo(
    std::string_view text) {
  std::map<std::string, std::string, std::less<>> out;
  while (!text.empty()) {
    const size_t eol = text.find('\n');
    std::string_view line = text.substr(0, eol);
    text = eol == std::string_view::npos ? "" : text.substr(eol + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty() || line.front() == '#') continue;
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    out.emplace(std::string(line.substr(0, colon)),
                std::string(line.substr(colon + 1)));
  }
  return out;
}

// redis-cli's header without the "blocked" and "child" columns, which tally
// has no counterpart for; the columns left keep redis-cli's widths.
std::string StatHeader() {
  return "------- data ------ ---------------- load ----------------\n"
         "keys       mem      clients requests            connections\n";
}

std::string StatLine(
    const std::map<std::string, std::string, std::less<>>& info,
    std::optional<int64_t>* prev_requests) {
  std::string line;
  line += Printf("%-11s", OrDash(Field(info, "keys")).c_str());
  const std::optional<int64_t> mem = Field(info, "used_bytes");
  line += Printf("%-8s", mem ? BytesToHuman(*mem).c_str() : "-");
  // connected_clients comes with INFO's clients section; older servers
  // have only the limits section's connections_current.
  std::optional<int64_t> clients = Field(info, "connected_clients");
  if (!clients) clients = Field(info, "connections_current");
  line += Printf(" %-8s", OrDash(clients).c_str());
  const std::optional<int64_t> requests = Field(info, "requests");
  std::string req = "-";
  if (requests) {
    const int64_t delta =
        prev_requests->has_value() ? *requests - **prev_requests : 0;
    req = Printf("%lld (+%lld)", static_cast<long long>(*requests),
                 static_cast<long long>(delta));
    *prev_requests = requests;
  }
  line += Printf("%-19s", req.c_str());
  line += Printf(" %-12s", OrDash(Field(info, "connections_total")).c_str());
  return line + "\n";
}

void LatencyStats::Add(int64_t ms) {
  if (count == 0 || ms < min_ms) min_ms = ms;
  if (count == 0 || ms > max_ms) max_ms = ms;
  total_ms += ms;
  ++count;
}

double LatencyStats::avg() const {
  return count == 0
             ? 0.0
             : static_cast<double>(total_ms) / static_cast<double>(count);
}

std::string LatencyFigures(const LatencyStats& s, bool raw) {
  const auto min = static_cast<long long>(s.min_ms);
  const auto max = static_cast<long long>(s.max_ms);
  const auto count = static_cast<long long>(s.count);
  if (raw) return Printf("%lld %lld %.2f %lld\n", min, max, s.avg(), count);
  return Printf("min: %lld, max: %lld, avg: %.2f (%lld samples)", min, max,
                s.avg(), count);
}

std::string KeySizeReport::Banner() {
  return "\n# Scanning the entire keyspace to find biggest keys as well as\n"
         "# average sizes per key type.  You can use -i 0.1 to sleep 0.1 sec\n"
         "# per 100 SCAN commands (not usually needed).\n\n";
}

std::string KeySizeReport::Add(std::string_view key, std::string_view policy,
                               int64_t size, double pct) {
  ++sampled_;
  key_bytes_ += key.size();
  auto it = policies_.find(policy);
  if (it == policies_.end()) it = policies_.emplace(policy, PerPolicy{}).first;
  PerPolicy& p = it->second;
  ++p.keys;
  p.total += size;
  if (size <= p.biggest) return "";
  p.biggest = size;
  p.biggest_key = std::string(key);
  p.found = true;
  return Printf("[%05.2f%%] Biggest %-6s found so far '%s' with %lld %s\n", pct,
                std::string(policy).c_str(), Quote(key).c_str(),
                static_cast<long long>(size), unit_.c_str());
}

std::string KeySizeReport::Summary() const {
  std::string out = "\n-------- summary -------\n\n";
  out += Printf("Sampled %llu keys in the keyspace!\n",
                static_cast<unsigned long long>(sampled_));
  out += Printf("Total key length in bytes is %llu (avg len %.2f)\n\n",
                static_cast<unsigned long long>(key_bytes_),
                sampled_ == 0 ? 0.0
                              : static_cast<double>(key_bytes_) /
                                    static_cast<double>(sampled_));
  bool any = false;
  for (const auto& [policy, p] : policies_) {
    if (!p.found) continue;
    any = true;
    out += Printf("Biggest %6s found '%s' has %lld %s\n", policy.c_str(),
                  Quote(p.biggest_key).c_str(),
                  static_cast<long long>(p.biggest), unit_.c_str());
  }
  if (any) out += "\n";
  for (const auto& [policy, p] : policies_) {
    const double share = sampled_ == 0 ? 0.0
                                       : 100.0 * static_cast<double>(p.keys) /
                                             static_cast<double>(sampled_);
    const double avg = p.keys == 0 ? 0.0
                                   : static_cast<double>(p.total) /
                                         static_cast<double>(p.keys);
    // redis-cli: "3 strings with 16 bytes (...)"; a policy is no plural
    // noun, so "3 keys of default with 16 entries (...)".
    out += Printf(
        "%llu keys of %s with %lld %s (%05.2f%% of keys, avg size "
        "%.2f)\n",
        static_cast<unsigned long long>(p.keys), policy.c_str(),
        static_cast<long long>(p.total), unit_.c_str(), share, avg);
  }
  return out;
}

std::string FormatHotKeys(const proto::AdminReply& reply) {
  const proto::AdminReply* every = MapGet(reply, "sample_every");
  const proto::AdminReply* window = MapGet(reply, "window_seconds");
  const proto::AdminReply* keys = MapGet(reply, "keys");
  const long long sample_every = every != nullptr ? every->integer : 0;
  std::string out =
      "\n# Asking the server for its hot keys (HOTKEYS): counters are "
      "estimated\n";
  out += Printf(
      "# adds/s from 1 in %lld adds, decayed over about %lld seconds.\n\n",
      sample_every, window != nullptr ? window->integer : 0LL);
  std::vector<std::pair<std::string, std::string>> found;
  if (keys != nullptr) {
    for (const proto::AdminReply& k : keys->elements) {
      const proto::AdminReply* name = MapGet(k, "key");
      const proto::AdminReply* rate = MapGet(k, "adds_per_sec");
      if (name == nullptr || rate == nullptr) continue;
      found.emplace_back(name->text, rate->text);
    }
  }
  // The progress lines redis-cli prints while it scans, in the order
  // found (here: hottest first).
  for (const auto& [name, rate] : found) {
    out += Printf("[00.00%%] Hot key '%s' found so far with counter %s\n",
                  Quote(name).c_str(), rate.c_str());
  }
  out += "\n-------- summary -------\n\n";
  if (sample_every == 0) {
    out += "Hot-key tracking is off (tallyd --hotkeys_sample_every=0).\n";
    return out;
  }
  out += Printf("Sampled %zu keys in the keyspace!\n", found.size());
  for (const auto& [name, rate] : found) {
    out += Printf("hot key found with counter: %s\tkeyname: %s\n", rate.c_str(),
                  Quote(name).c_str());
  }
  return out;
}

}  // namespace tally::cli
