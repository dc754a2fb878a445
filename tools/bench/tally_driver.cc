#include "tools/bench/tally_driver.h"

namespace tally::bench {

namespace {

proto::Request Req(auto body) {
  proto::Request r;
  r.body = std::move(body);
  return r;
}

constexpr uint32_t kAllAggs =
    proto::kAggCountBit | proto::kAggSumBit | proto::kAggDistinctBit;

class TallyConnection : public SystemConnection {
 public:
  explicit TallyConnection(boost::asio::ssl::context* tls) : conn_(tls) {}
  Status Open(const std::string& host, uint16_t port) {
    return conn_.Connect(host, port);
  }

  Status Add(std::vector<W1Event>* events,
             std::vector<bool>* applied) override {
    proto::AddRequest add;
    add.items.reserve(events->size());
    char key[32], member[32];
    for (const W1Event& e : *events) {
      proto::AddItem item;
      item.key = std::string(W1::Key(e.id, key));
      item.time_ms = e.ts_ms;  // 0: the server stamps it
      item.amount = e.amount;
      item.member = std::string(W1::Member(e.member, member));
      add.items.push_back(std::move(item));
    }
    applied->assign(events->size(), false);
    Result<proto::Response> r = conn_.Call(Req(std::move(add)));
    if (!r.ok()) return r.status();
    if (r->code != Code::kOk) return Status::Ok();  // none applied
    const auto& items = std::get<proto::AddResult>(r->body).items;
    for (size_t k = 0; k < events->size() && k < items.size(); ++k) {
      if (items[k].code != Code::kOk) continue;
      (*applied)[k] = true;
      (*events)[k].ts_ms = items[k].time_ms;  // the time the server used
    }
    return Status::Ok();
  }

  Status Decide(const Decision& d, DecisionAnswer* answer) override {
    proto::QueryRequest q;
    char key[32];
    const std::string uk(W1::Key(d.u, key));
    for (const W1Window& w :
         {W1::W60(d.now_ms), W1::W1h(d.now_ms), W1::W24h(d.now_ms)}) {
      q.items.push_back(
          proto::QueryItem::Between(uk, w.from_ms, w.to_ms, kAllAggs));
    }
    const W1Window w60 = W1::W60(d.now_ms);
    q.items.push_back(proto::QueryItem::Between(std::string(W1::Key(d.u2, key)),
                                                w60.from_ms, w60.to_ms,
                                                proto::kAggCountBit));
    if (d.w30d) {
      const W1Window w30d = W1::W30d(d.now_ms);
      q.items.push_back(
          proto::QueryItem::Between(uk, w30d.from_ms, w30d.to_ms, kAllAggs));
    }
    Result<proto::Response> r = conn_.Call(Req(std::move(q)));
    if (!r.ok()) return r.status();
    if (r->code != Code::kOk) return r->status();
    const auto& items = std::get<proto::QueryResult>(r->body).items;
    for (size_t i = 0; i < 3 && i < items.size(); ++i) {
      answer->values[3 * i] = items[i].answer.count;
      answer->values[3 * i + 1] = items[i].answer.sum;
      answer->values[3 * i + 2] =
          static_cast<int64_t>(items[i].answer.distinct);
    }
    if (items.size() >= 4) answer->values[9] = items[3].answer.count;
    if (items.size() == 5) {
      answer->values[10] = items[4].answer.count;
      answer->values[11] = items[4].answer.sum;
      answer->values[12] = static_cast<int64_t>(items[4].answer.distinct);
    }
    return Status::Ok();
  }

  Result<Observed> Query(std::string_view key, W1Window w,
                         bool distinct_only) override {
    proto::QueryRequest q;
    q.items.push_back(proto::QueryItem::Between(
        std::string(key), w.from_ms, w.to_ms,
        distinct_only ? proto::kAggDistinctBit : kAllAggs));
    Result<proto::Response> r = conn_.Call(Req(std::move(q)));
    if (!r.ok()) return r.status();
    if (r->code != Code::kOk) return r->status();
    const proto::QueryItemResult& item =
        std::get<proto::QueryResult>(r->body).items.at(0);
    if (item.code != Code::kOk) return Status(item.code, item.message);
    const proto::Aggregates& a = item.answer;
    return Observed{a.count,           a.sum,          a.distinct, a.exact,
                    a.covered_from_ms, a.covered_to_ms};
  }

 private:
  WireConnection conn_;
};

}  // namespace

TallySystem::TallySystem(std::string host, uint16_t port,
                         std::string tls_ca_file)
    : host_(std::move(host)), port_(port) {
  if (!tls_ca_file.empty()) {
    tls_ = std::make_unique<boost::asio::ssl::context>(
        boost::asio::ssl::context::tls_client);
    boost::system::error_code ec;
    tls_->load_verify_file(tls_ca_file, ec);  // a bad file fails Connect()
  }
}

Result<std::unique_ptr<SystemConnection>> TallySystem::Connect() {
  auto conn = std::make_unique<TallyConnection>(tls_.get());
  Status s = conn->Open(host_, port_);
  if (!s.ok()) return s;
  return std::unique_ptr<SystemConnection>(std::move(conn));
}

SystemStats TallySystem::Stats() {
  std::lock_guard<std::mutex> lock(mu_);
  SystemStats stats;
  stats.memory_kind = "tallyd RSS";
  if (!info_) {
    info_ = std::make_unique<WireConnection>(tls_.get());
    if (!info_->Connect(host_, port_).ok()) {
      info_.reset();
      return stats;
    }
  }
  Result<proto::Response> r = info_->Call(Req(proto::InfoRequest{}));
  if (!r.ok()) {
    info_.reset();
    return stats;
  }
  if (r->code != Code::kOk) return stats;
  const std::string& text = std::get<proto::InfoResult>(r->body).text;
  stats.cpu_seconds = InfoField(text, "cpu_seconds");
  stats.memory_bytes = InfoField(text, "rss_bytes");
  stats.accounted_bytes = InfoField(text, "used_bytes");
  return stats;
}

}  // namespace tally::bench
