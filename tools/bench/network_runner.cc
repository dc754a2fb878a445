#include "tools/bench/network_runner.h"

#include <sys/resource.h>

#include <atomic>
#include <charconv>
#include <chrono>
#include <thread>

#include "tools/bench/timed_phase.h"
#include "tools/bench/truth.h"
#include "tools/bench/wire_connection.h"

namespace tally::bench {

namespace {

using SteadyClock = std::chrono::steady_clock;

int64_t WallSecondMs() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
             .count() *
         1000;
}

// A numeric field of an INFO reply ("name:value" lines), or 0.
double InfoField(const std::string& text, std::string_view name) {
  const std::string needle = "\n" + std::string(name) + ":";
  const size_t at = text.find(needle);
  if (at == std::string::npos) return 0;
  return std::strtod(text.c_str() + at + needle.size(), nullptr);
}

proto::AddItem ToItem(const W1Event& e, bool with_time) {
  char key[32], member[32];
  proto::AddItem item;
  item.key = std::string(W1::Key(e.id, key));
  item.time_ms = with_time ? e.ts_ms : 0;
  item.amount = e.amount;
  item.member = std::string(W1::Member(e.member, member));
  return item;
}

proto::Request Req(auto body) {
  proto::Request r;
  r.body = std::move(body);
  return r;
}

class NetworkRunner {
 public:
  NetworkRunner(const RunOptions& options, std::string host, uint16_t port)
      : options_(options),
        w1_(options.w1),
        truth_(w1_),
        host_(std::move(host)),
        port_(port) {}

  BenchReport Run() {
    BenchReport report;
    report.mode = "network";
    report.connections = options_.connections;
    report.batch = options_.batch;
    report.keys = options_.w1.keys;
    report.history = options_.w1.history;
    report.seconds = options_.seconds;
    Status s = admin_.Connect(host_, port_);
    if (!s.ok()) {
      report.selfcheck = s.ToString();
      return report;
    }
    report.phases.push_back(Load(&report));
    for (const std::string& phase : options_.phases)
      report.phases.push_back(Timed(phase));
    report.selfcheck = truth_.Check(WallSecondMs(), [this](std::string_view key,
                                                           W1Window w) {
      proto::QueryRequest q;
      q.items.push_back(proto::QueryItem::Between(
          std::string(key), w.from_ms, w.to_ms,
          proto::kAggCountBit | proto::kAggSumBit | proto::kAggDistinctBit));
      Result<proto::Response> r = admin_.Call(Req(q));
      if (!r.ok()) return Result<Observed>(r.status());
      if (r->code != Code::kOk) return Result<Observed>(r->status());
      const proto::QueryItemResult& item =
          std::get<proto::QueryResult>(r->body).items.at(0);
      if (item.code != Code::kOk)
        return Result<Observed>(Status(item.code, item.message));
      const proto::Aggregates& a = item.answer;
      return Result<Observed>(Observed{a.count, a.sum, a.distinct, a.exact,
                                       a.covered_from_ms, a.covered_to_ms});
    });
    return report;
  }

 private:
  std::string Info() {
    Result<proto::Response> r = admin_.Call(Req(proto::InfoRequest{}));
    if (!r.ok() || r->code != Code::kOk) return "";
    return std::get<proto::InfoResult>(r->body).text;
  }

  PhaseResult Load(BenchReport* report) {
    PhaseResult result;
    result.name = "load";
    const std::string before = Info();
    std::mt19937_64 rng(options_.seed);
    std::vector<W1Event> sampled;
    const auto start = SteadyClock::now();
    constexpr uint64_t kLoadBatch = 1000;
    for (uint64_t i = 0; i < options_.w1.history; i += kLoadBatch) {
      proto::AddRequest add;
      std::vector<W1Event> events;
      for (uint64_t j = i; j < std::min(i + kLoadBatch, options_.w1.history);
           ++j) {
        events.push_back(
            w1_.MakeEvent(w1_.DrawId(rng), w1_.HistoryTime(j), rng));
        add.items.push_back(ToItem(events.back(), true));
      }
      Result<proto::Response> r = admin_.Call(Req(add));
      if (!r.ok() || r->code != Code::kOk) {
        result.errors += events.size();
        continue;
      }
      const auto& items = std::get<proto::AddResult>(r->body).items;
      for (size_t k = 0; k < events.size(); ++k) {
        if (items[k].code != Code::kOk) {
          ++result.errors;
          continue;
        }
        ++result.events;
        if (truth_.Tracks(events[k].id)) sampled.push_back(events[k]);
      }
    }
    result.seconds =
        std::chrono::duration<double>(SteadyClock::now() - start).count();
    truth_.Merge(sampled);
    const std::string after = Info();
    report->keys_touched = static_cast<uint64_t>(InfoField(after, "keys"));
    const double keys =
        std::max<double>(1, static_cast<double>(report->keys_touched));
    report->engine_bytes_per_key = InfoField(after, "used_bytes") / keys;
    report->rss_bytes_per_key =
        (InfoField(after, "rss_bytes") - InfoField(before, "rss_bytes")) / keys;
    // The server's allocator statistics arrive with the metrics issue; until
    // then its RSS growth is the honest "server memory after load".
    report->bytes_per_key = report->rss_bytes_per_key;
    return result;
  }

  PhaseResult Timed(const std::string& phase) {
    const int event_share = EventShare(phase);
    return RunTimedPhase(
        phase, options_,
        [&](int c, const std::atomic<bool>& measuring,
            const std::atomic<bool>& stop,
            PhaseResult* out) { Worker(c, event_share, measuring, stop, out); },
        // cpu% is the server's, read from INFO.
        [this] { return InfoField(Info(), "cpu_seconds"); });
  }

  void Worker(int c, int event_share, const std::atomic<bool>& measuring,
              const std::atomic<bool>& stop, PhaseResult* out) {
    WireConnection conn;
    if (!conn.Connect(host_, port_).ok()) {
      ++out->errors;
      return;
    }
    std::mt19937_64 rng(options_.seed * 1000 + static_cast<uint64_t>(c) + 1 +
                        static_cast<uint64_t>(WallSecondMs()));
    std::vector<W1Event> sampled, events;
    constexpr uint32_t kAggs =
        proto::kAggCountBit | proto::kAggSumBit | proto::kAggDistinctBit;
    char key[32];
    while (!stop.load(std::memory_order_relaxed)) {
      const bool measure = measuring.load(std::memory_order_relaxed);
      if (static_cast<int>(rng() % 100) < event_share) {
        proto::AddRequest add;
        events.clear();
        for (int b = 0; b < options_.batch; ++b) {
          events.push_back(w1_.MakeEvent(w1_.DrawId(rng), 0, rng));
          add.items.push_back(ToItem(events.back(), false));
        }
        const proto::Request request = Req(std::move(add));
        const auto t0 = SteadyClock::now();
        Result<proto::Response> r = conn.Call(request);
        const auto t1 = SteadyClock::now();
        if (!r.ok() || r->code != Code::kOk) {
          ++out->errors;
          if (!r.ok()) return;  // connection broken
          continue;
        }
        const auto& items = std::get<proto::AddResult>(r->body).items;
        for (size_t k = 0; k < events.size(); ++k) {
          if (items[k].code != Code::kOk) {
            ++out->errors;
            continue;
          }
          events[k].ts_ms = items[k].time_ms;  // stamped by the server
          if (truth_.Tracks(events[k].id)) sampled.push_back(events[k]);
          if (measure) ++out->events;
        }
        if (measure) {
          out->event_latency.Record(static_cast<uint64_t>(
              std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0)
                  .count()));
        }
      } else {
        const int64_t now = WallSecondMs();
        const uint64_t u = w1_.DrawId(rng), u2 = w1_.DrawId(rng);
        proto::QueryRequest q;
        const std::string uk(W1::Key(u, key));
        for (const W1Window& w : {W1::W60(now), W1::W1h(now), W1::W24h(now)}) {
          q.items.push_back(
              proto::QueryItem::Between(uk, w.from_ms, w.to_ms, kAggs));
        }
        const W1Window w60 = W1::W60(now);
        q.items.push_back(proto::QueryItem::Between(
            std::string(W1::Key(u2, key)), w60.from_ms, w60.to_ms,
            proto::kAggCountBit));
        const proto::Request request = Req(std::move(q));
        const auto t0 = SteadyClock::now();
        Result<proto::Response> r = conn.Call(request);
        const auto t1 = SteadyClock::now();
        if (!r.ok() || r->code != Code::kOk) {
          ++out->errors;
          if (!r.ok()) return;
          continue;
        }
        if (measure) {
          out->decision_latency.Record(static_cast<uint64_t>(
              std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0)
                  .count()));
          ++out->decisions;
        }
      }
    }
    truth_.Merge(sampled);
  }

  const RunOptions options_;
  const W1 w1_;
  Truth truth_;
  const std::string host_;
  const uint16_t port_;
  WireConnection admin_;
};

}  // namespace

BenchReport RunNetwork(const RunOptions& options, const std::string& host,
                       uint16_t port) {
  return NetworkRunner(options, host, port).Run();
}

}  // namespace tally::bench
