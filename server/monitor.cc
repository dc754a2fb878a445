#include "server/monitor.h"

#include <fnmatch.h>

#include <charconv>
#include <cstdio>
#include <random>
#include <utility>

#include "protocol/quote.h"
#include "server/admin_commands.h"

namespace tally {

namespace {

constexpr std::string_view kSyntax = "MONITOR [SAMPLE ratio] [MATCH glob]";

// A uniform draw in [0, 1) from a per-thread generator: sampling must not
// take a lock on the request path.
double Uniform01() {
  thread_local std::minstd_rand rng(std::random_device{}());
  return std::generate_canonical<double, 32>(rng);
}

}  // namespace

Result<MonitorFilter> MonitorFilter::Parse(std::span<const std::string> args) {
  MonitorFilter filter;
  for (size_t i = 0; i < args.size(); i += 2) {
    const std::string word = AdminUpper(args[i]);
    if (i + 1 >= args.size() || (word != "SAMPLE" && word != "MATCH")) {
      return Status::InvalidArgument("syntax: " + std::string(kSyntax));
    }
    const std::string& value = args[i + 1];
    if (word == "MATCH") {
      filter.match = value;
      continue;
    }
    double ratio = -1;
    const char* end = value.data() + value.size();
    auto [ptr, ec] = std::from_chars(value.data(), end, ratio);
    if (value.empty() || ec != std::errc() || ptr != end || !(ratio >= 0) ||
        ratio > 1) {
      return Status::InvalidArgument("SAMPLE must be a ratio in 0..1, not '" +
                                     value + "'");
    }
    filter.sample = ratio;
  }
  return filter;
}

bool MonitorFilter::Accepts(bool has_key, std::string_view key,
                            double u) const {
  if (!(u < sample)) return false;
  if (match.empty()) return true;
  if (!has_key) return false;
  // fnmatch wants NUL-terminated strings; keys may hold NUL bytes, which
  // then end the key for matching purposes.
  const std::string k(key);
  return fnmatch(match.c_str(), k.c_str(), 0) == 0;
}

MonitorSink::MonitorSink(uint64_t connection_id, MonitorFilter filter,
                         size_t max_bytes, std::function<uint64_t()> unwritten,
                         std::function<void()> wake)
    : connection_id_(connection_id),
      filter_(std::move(filter)),
      max_bytes_(max_bytes),
      unwritten_(std::move(unwritten)),
      wake_(std::move(wake)) {}

void MonitorSink::Push(const std::string& line) {
  const uint64_t unwritten = unwritten_ ? unwritten_() : 0;
  bool wake = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (unwritten + queued_bytes_ + line.size() > max_bytes_) {
      ++dropped_;
      ++dropped_total_;
      return;
    }
    queue_.push_back(line);
    queued_bytes_ += line.size();
    wake = !woken_;
    woken_ = true;
  }
  if (wake && wake_) wake_();
}

std::vector<std::string> MonitorSink::Take(std::string_view now_line_prefix) {
  std::vector<std::string> lines;
  uint64_t dropped = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    lines.swap(queue_);
    queued_bytes_ = 0;
    dropped = dropped_;
    dropped_ = 0;
    woken_ = false;
  }
  if (dropped > 0) {
    lines.insert(lines.begin(),
                 std::string(now_line_prefix) + " [monitor] dropped " +
                     std::to_string(dropped) +
                     " events: this client did not read them fast enough");
  }
  return lines;
}

uint64_t MonitorSink::dropped_total() const {
  std::lock_guard<std::mutex> lock(mu_);
  return dropped_total_;
}

size_t MonitorHub::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return sinks_ ? sinks_->size() : 0;
}

void MonitorHub::Add(std::shared_ptr<MonitorSink> sink) {
  std::lock_guard<std::mutex> lock(mu_);
  auto next = std::make_shared<std::vector<std::shared_ptr<MonitorSink>>>(
      sinks_ ? *sinks_ : std::vector<std::shared_ptr<MonitorSink>>{});
  next->push_back(std::move(sink));
  active_.store(static_cast<int>(next->size()), std::memory_order_relaxed);
  sinks_ = std::move(next);
}

void MonitorHub::Remove(const MonitorSink* sink) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!sinks_) return;
  auto next = std::make_shared<std::vector<std::shared_ptr<MonitorSink>>>();
  for (const auto& s : *sinks_) {
    if (s.get() != sink) next->push_back(s);
  }
  active_.store(static_cast<int>(next->size()), std::memory_order_relaxed);
  sinks_ = std::move(next);
}

std::string MonitorHub::Timestamp(int64_t unix_us) {
  char text[32];
  std::snprintf(text, sizeof text, "%lld.%06lld",
                static_cast<long long>(unix_us / 1'000'000),   // NOLINT
                static_cast<long long>(unix_us % 1'000'000));  // NOLINT
  return text;
}

std::string MonitorHub::FormatLine(uint64_t source,
                                   std::string_view source_addr,
                                   const CommandSummary& command,
                                   int64_t unix_us) {
  std::string line = Timestamp(unix_us) + " [" + std::to_string(source) + " " +
                     std::string(source_addr) + "]";
  const std::vector<std::string> words = command.Words();
  for (size_t i = 0; i < words.size(); ++i) {
    line += ' ';
    // The operation's name bare, as the brief's example; admin words and
    // every argument quoted, as Redis quotes them.
    line += i == 0 && command.op != proto::Op::kAdmin ? words[i]
                                                      : QuoteBytes(words[i]);
  }
  return line;
}

void MonitorHub::Feed(uint64_t source, std::string_view source_addr,
                      const CommandSummary& command, int64_t unix_us) {
  if (command.op == proto::Op::kAuth) return;  // never a token
  std::shared_ptr<const std::vector<std::shared_ptr<MonitorSink>>> sinks;
  {
    std::lock_guard<std::mutex> lock(mu_);
    sinks = sinks_;
  }
  if (!sinks) return;
  std::string line;  // formatted once, for the first monitor that wants it
  for (const auto& sink : *sinks) {
    if (sink->connection_id() == source) continue;
    if (!sink->filter().Accepts(command.has_key, command.key, Uniform01())) {
      continue;
    }
    if (line.empty()) line = FormatLine(source, source_addr, command, unix_us);
    sink->Push(line);
  }
}

}  // namespace tally
