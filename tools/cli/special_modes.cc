#include "tools/cli/special_modes.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <iostream>
#include <mutex>
#include <numeric>
#include <thread>
#include <utility>

#include "tools/cli/formatter.h"

namespace tally::cli {
namespace {

// redis-cli: LATENCY_SAMPLE_RATE (ms between PINGs) and the default
// --latency-history range.
constexpr double kLatencySampleSeconds = 0.010;
constexpr double kLatencyHistoryDefaultSeconds = 15;

void Sleep(const SpecialModeOptions& options, double seconds) {
  if (seconds <= 0) return;
  if (options.sleep) {
    options.sleep(seconds);
    return;
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
}

proto::Request Make(auto body) {
  proto::Request r;
  r.body = std::move(body);
  return r;
}

proto::Request Admin(std::vector<std::string> args) {
  return Make(proto::AdminRequest{.args = std::move(args)});
}

// Prints an error response as redis-cli would its I/O or reply error, and
// gives the exit code.
int Fail(const proto::Response& response) {
  std::cerr << "(error) " << CodeName(response.code) << ": " << response.message
            << '\n';
  return 1;
}

double Seconds(std::chrono::steady_clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

}  // namespace

int RunStat(const CallFn& call, const SpecialModeOptions& options,
            std::ostream& out) {
  const double interval = options.interval_s < 0 ? 1.0 : options.interval_s;
  std::optional<int64_t> prev_requests;
  for (int64_t line = 0; options.max_lines < 0 || line < options.max_lines;
       ++line) {
    const proto::Response response = call(Make(proto::InfoRequest{}));
    if (response.code != Code::kOk) return Fail(response);
    // redis-cli repeats the header every 20 lines.
    if (line % 20 == 0) out << StatHeader();
    out << StatLine(ParseInfo(std::get<proto::InfoResult>(response.body).text),
                    &prev_requests)
        << std::flush;
    Sleep(options, interval);
  }
  return 0;
}

int RunLatency(const CallFn& call, bool history,
               const SpecialModeOptions& options, std::ostream& out) {
  using Clock = std::chrono::steady_clock;
  // As redis-cli: without --latency-history, a raw run samples for -i
  // seconds (default 1) and prints one line; on a terminal it runs until
  // interrupted, redrawing its line.
  const double raw_run_s = options.interval_s < 0 ? 1.0 : options.interval_s;
  const double range_s = options.interval_s < 0 ? kLatencyHistoryDefaultSeconds
                                                : options.interval_s;
  LatencyStats stats;
  Clock::time_point range_start = Clock::now();
  int64_t ranges = 0;
  while (true) {
    const Clock::time_point start = Clock::now();
    const proto::Response response = call(Make(proto::PingRequest{}));
    if (response.code != Code::kOk) {
      out << std::flush;
      std::cerr << "\nI/O error\n";
      return Fail(response);
    }
    stats.Add(std::chrono::duration_cast<std::chrono::milliseconds>(
                  Clock::now() - start)
                  .count());
    if (!options.raw) {
      out << "\x1b[0G\x1b[2K" << LatencyFigures(stats, false) << std::flush;
    } else if (history) {
      out << LatencyFigures(stats, true) << std::flush;
    } else if (Seconds(Clock::now() - range_start) > raw_run_s) {
      out << LatencyFigures(stats, true) << std::flush;
      return 0;
    }
    if (history && Seconds(Clock::now() - range_start) > range_s) {
      char range[64];
      std::snprintf(range, sizeof(range), " -- %.2f seconds range\n",
                    Seconds(Clock::now() - range_start));
      out << range << std::flush;
      range_start = Clock::now();
      stats = LatencyStats{};
      if (options.max_lines >= 0 && ++ranges >= options.max_lines) return 0;
    }
    Sleep(options, kLatencySampleSeconds);
  }
}

int RunScan(const CallFn& call, const SpecialModeOptions& options,
            std::ostream& out) {
  uint64_t cursor = 0;
  do {
    const proto::Response response = call(Make(proto::ScanRequest{
        .cursor = cursor, .pattern = options.pattern, .count = options.count}));
    if (response.code != Code::kOk) return Fail(response);
    const auto& page = std::get<proto::ScanResult>(response.body);
    // redis-cli: quoted on a terminal (keys are binary), raw bytes when
    // piped, one per line.
    for (const std::string& key : page.keys) {
      out << (options.raw ? key : Quote(key)) << '\n';
    }
    out << std::flush;
    cursor = page.cursor;
    if (cursor != 0 && options.interval_s > 0) {
      Sleep(options, options.interval_s);
    }
  } while (cursor != 0);
  return 0;
}

int RunBigKeys(const AsyncCallFn& call, bool memkeys,
               const SpecialModeOptions& options, std::ostream& out) {
  // DBSIZE first, for the progress percentage (as redis-cli).
  uint64_t total_keys = 0;
  {
    std::mutex mu;
    std::condition_variable cv;
    std::optional<proto::Response> dbsize;
    call(Admin({"DBSIZE"}), [&](proto::Response r) {
      std::lock_guard lock(mu);
      dbsize = std::move(r);
      cv.notify_one();
    });
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return dbsize.has_value(); });
    if (dbsize->code != Code::kOk) return Fail(*dbsize);
    const auto& reply = std::get<proto::AdminResult>(dbsize->body).reply;
    total_keys = static_cast<uint64_t>(std::max<int64_t>(0, reply.integer));
  }
  out << KeySizeReport::Banner() << std::flush;
  KeySizeReport report(memkeys ? "bytes" : "entries");
  const size_t window = std::max<size_t>(1, options.window);
  uint64_t cursor = 0;
  do {
    std::mutex mu;
    std::condition_variable cv;
    std::optional<proto::Response> page_response;
    call(Make(proto::ScanRequest{.cursor = cursor,
                                 .pattern = options.pattern,
                                 .count = options.count}),
         [&](proto::Response r) {
           std::lock_guard lock(mu);
           page_response = std::move(r);
           cv.notify_one();
         });
    {
      std::unique_lock lock(mu);
      cv.wait(lock, [&] { return page_response.has_value(); });
    }
    if (page_response->code != Code::kOk) return Fail(*page_response);
    const double pct = total_keys == 0
                           ? 0.0
                           : 100.0 * static_cast<double>(report.sampled()) /
                                 static_cast<double>(total_keys);
    auto& page = std::get<proto::ScanResult>(page_response->body);
    // INSPECT the page's keys pipelined, at most `window` in flight; then
    // report them in scan order.
    std::vector<std::optional<proto::Response>> inspected(page.keys.size());
    size_t sent = 0;
    size_t in_flight = 0;
    std::unique_lock lock(mu);
    while (sent < page.keys.size() || in_flight > 0) {
      while (sent < page.keys.size() && in_flight < window) {
        const size_t i = sent++;
        ++in_flight;
        lock.unlock();
        call(Make(proto::InspectRequest{.key = page.keys[i]}),
             [&, i](proto::Response r) {
               std::lock_guard done(mu);
               inspected[i] = std::move(r);
               --in_flight;
               cv.notify_one();
             });
        lock.lock();
      }
      cv.wait(lock, [&] {
        return in_flight < window &&
               (sent < page.keys.size() || in_flight == 0);
      });
    }
    lock.unlock();
    for (size_t i = 0; i < page.keys.size(); ++i) {
      const proto::Response& r = *inspected[i];
      // A key removed (expired, deleted) since the scan saw it.
      if (r.code == Code::kNotFound) continue;
      if (r.code != Code::kOk) return Fail(r);
      const auto& info = std::get<proto::InspectResult>(r.body);
      int64_t size = info.bytes;
      if (!memkeys) {
        // Entries: buckets held in every tier, or a young key's raw events.
        size = info.raw_events;
        for (const proto::TierInfo& t : info.tiers) size += t.buckets;
      }
      out << report.Add(page.keys[i], info.policy, size, pct);
    }
    out << std::flush;
    cursor = page.cursor;
    if (cursor != 0 && options.interval_s > 0) {
      Sleep(options, options.interval_s);
    }
  } while (cursor != 0);
  out << report.Summary() << std::flush;
  return 0;
}

int RunHotKeys(const CallFn& call, const SpecialModeOptions& options,
               std::ostream& out) {
  std::vector<std::string> args = {"HOTKEYS"};
  if (options.count > 0) {
    args.push_back("COUNT");
    args.push_back(std::to_string(options.count));
  }
  const proto::Response response = call(Admin(std::move(args)));
  if (response.code != Code::kOk) return Fail(response);
  out << FormatHotKeys(std::get<proto::AdminResult>(response.body).reply)
      << std::flush;
  return 0;
}

}  // namespace tally::cli
