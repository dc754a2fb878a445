#include "server/slow_log.h"

#include <algorithm>
#include <utility>

namespace tally {

SlowLog::SlowLog(SlowLogOptions options)
    : slower_than_us_(options.log_slower_than_us), max_len_(options.max_len) {}

std::vector<std::string> SlowLog::Truncate(
    const std::vector<std::string>& args) {
  const size_t kept = args.size() > kMaxArgs ? kMaxArgs - 1 : args.size();
  std::vector<std::string> out;
  out.reserve(std::min(args.size(), kMaxArgs));
  for (size_t i = 0; i < kept; ++i) {
    const std::string& arg = args[i];
    if (arg.size() > kMaxArgBytes) {
      out.push_back(arg.substr(0, kMaxArgBytes) + "... (" +
                    std::to_string(arg.size() - kMaxArgBytes) + " more bytes)");
    } else {
      out.push_back(arg);
    }
  }
  if (args.size() > kMaxArgs) {
    out.push_back("... (" + std::to_string(args.size() - kept) +
                  " more arguments)");
  }
  return out;
}

void SlowLog::Add(const std::vector<std::string>& args, int64_t duration_us,
                  std::string client_addr, std::string client_name,
                  int64_t unix_time_s) {
  SlowLogEntry entry{.id = 0,
                     .unix_time_s = unix_time_s,
                     .duration_us = duration_us,
                     .args = Truncate(args),
                     .client_addr = std::move(client_addr),
                     .client_name = std::move(client_name)};
  const int64_t max_len = std::max<int64_t>(0, max_len_.load());
  std::lock_guard<std::mutex> lock(mu_);
  entry.id = next_id_++;
  entries_.push_front(std::move(entry));
  while (entries_.size() > static_cast<size_t>(max_len)) entries_.pop_back();
}

std::vector<SlowLogEntry> SlowLog::Get(int64_t count) const {
  std::lock_guard<std::mutex> lock(mu_);
  const size_t n = count < 0
                       ? entries_.size()
                       : std::min(entries_.size(), static_cast<size_t>(count));
  return {entries_.begin(), entries_.begin() + static_cast<ptrdiff_t>(n)};
}

size_t SlowLog::Len() const {
  std::lock_guard<std::mutex> lock(mu_);
  return entries_.size();
}

void SlowLog::Reset() {
  std::lock_guard<std::mutex> lock(mu_);
  entries_.clear();
}

}  // namespace tally
