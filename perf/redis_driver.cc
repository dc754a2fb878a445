#include "perf/redis_driver.h"

#include <hiredis/hiredis.h>

#include <chrono>
#include <cstdlib>
#include <string_view>

namespace tally::bench {

namespace {

struct Resolution {
  int64_t seconds;
  char letter;
  int64_t retention_s;  // a bucket expires this long after its end
};

constexpr Resolution kSecond{1, 's', 3600};
constexpr Resolution kMinute{60, 'm', 86400};
constexpr Resolution kHour{3600, 'h', 30 * 86400};

std::vector<Resolution> Resolutions(RedisSystem::Design design) {
  if (design == RedisSystem::Design::kA2) return {kMinute, kSecond};
  return {kHour, kMinute, kSecond};
}

char LetterFor(int64_t resolution_s) {
  return resolution_s == 1 ? 's' : resolution_s == 60 ? 'm' : 'h';
}

// The server-side half of a Lua decision: ARGV holds (kind, n) pairs, kind
// 's' (sum of an MGET) or 'p' (PFCOUNT), KEYS the groups' keys in order.
constexpr std::string_view kDecisionScript = R"lua(
local out = {}
local k = 1
for i = 1, #ARGV, 2 do
  local n = tonumber(ARGV[i + 1])
  local keys = {}
  for j = 1, n do keys[j] = KEYS[k]; k = k + 1 end
  if ARGV[i] == 'p' then
    out[#out + 1] = redis.call('PFCOUNT', unpack(keys))
  else
    local s = 0
    for _, v in ipairs(redis.call('MGET', unpack(keys))) do
      if v then s = s + tonumber(v) end
    end
    out[#out + 1] = s
  end
end
return out
)lua";

Status ContextError(const redisContext* c, std::string_view what) {
  return Status(Code::kUnavailable,
                std::string(what) + ": " +
                    (c != nullptr ? c->errstr : "cannot allocate context"));
}

redisContext* Open(const std::string& host, uint16_t port, Status* status) {
  redisContext* c = redisConnect(host.c_str(), port);
  if (c == nullptr || c->err != 0) {
    *status = ContextError(
        c, "cannot connect to redis at " + host + ":" + std::to_string(port));
    if (c != nullptr) redisFree(c);
    return nullptr;
  }
  return c;
}

// A command's words, kept as strings so that argv pointers stay valid.
class Command {
 public:
  Command& Add(std::string_view word) {
    words_.emplace_back(word);
    return *this;
  }
  Command& Add(int64_t n) {
    words_.push_back(std::to_string(n));
    return *this;
  }
  size_t size() const { return words_.size(); }
  void AppendTo(redisContext* c) {
    argv_.clear();
    lens_.clear();
    for (const std::string& w : words_) {
      argv_.push_back(w.data());
      lens_.push_back(w.size());
    }
    redisAppendCommandArgv(c, static_cast<int>(argv_.size()), argv_.data(),
                           lens_.data());
  }

 private:
  std::vector<std::string> words_;
  std::vector<const char*> argv_;
  std::vector<size_t> lens_;
};

// A reply as an integer: integers, numeric strings, nil as 0.
int64_t AsInt(const redisReply* r) {
  if (r == nullptr) return 0;
  if (r->type == REDIS_REPLY_INTEGER) return r->integer;
  if (r->type == REDIS_REPLY_STRING) return std::strtoll(r->str, nullptr, 10);
  return 0;
}

class RedisConnection : public SystemConnection {
 public:
  RedisConnection(redisContext* c, RedisSystem::Design design, bool lua,
                  std::string sha)
      : c_(c),
        resolutions_(Resolutions(design)),
        lua_(lua),
        sha_(std::move(sha)) {
    for (const Resolution& r : resolutions_)
      resolution_seconds_.push_back(r.seconds);
  }
  ~RedisConnection() override { redisFree(c_); }

  Status Add(std::vector<W1Event>* events,
             std::vector<bool>* applied) override {
    char key[32], member[32];
    owners_.clear();  // the event each pipelined command belongs to
    const int64_t now_ms = WallMs();  // one clock read per batch
    const int64_t now_s = now_ms / 1000;
    for (size_t i = 0; i < events->size(); ++i) {
      W1Event& e = (*events)[i];
      if (e.ts_ms == 0) e.ts_ms = now_ms;
      const std::string_view k = W1::Key(e.id, key);
      const std::string_view m = W1::Member(e.member, member);
      const int64_t second = e.ts_ms / 1000;
      for (const Resolution& r : resolutions_) {
        // EXPIREAT the bucket's end plus the retention, as a careful design
        // does: memory then holds what steady state would, also for a
        // back-filled history. A bucket already past it is not written.
        const int64_t bucket = second / r.seconds;
        const int64_t expire_at = (bucket + 1) * r.seconds + r.retention_s;
        if (expire_at <= now_s) continue;
        const std::string suffix = std::string(1, ':') + r.letter + ':' +
                                   std::string(k) + ':' +
                                   std::to_string(bucket);
        const std::string c = "c" + suffix, a = "a" + suffix, h = "h" + suffix;
        const std::string at = std::to_string(expire_at);
        Append({"INCRBY", c, "1"});
        Append({"INCRBY", a, std::to_string(e.amount)});
        Append({"PFADD", h, m});
        for (const std::string* name : {&c, &a, &h})
          Append({"EXPIREAT", *name, at});
        owners_.insert(owners_.end(), 6, i);
      }
    }
    applied->assign(events->size(), true);
    for (size_t owner : owners_) {
      redisReply* reply = nullptr;
      if (redisGetReply(c_, reinterpret_cast<void**>(&reply)) != REDIS_OK)
        return ContextError(c_, "redis");
      if (reply->type == REDIS_REPLY_ERROR) (*applied)[owner] = false;
      freeReplyObject(reply);
    }
    return Status::Ok();
  }

  Status Decide(const Decision& d, DecisionAnswer* answer) override {
    char buf[32];
    const std::string u(W1::Key(d.u, buf));
    const std::string u2(W1::Key(d.u2, buf));
    groups_.clear();
    for (const W1Window& w :
         {W1::W60(d.now_ms), W1::W1h(d.now_ms), W1::W24h(d.now_ms)}) {
      AddWindowGroups(u, w, /*distinct_only=*/false);
    }
    groups_.push_back(Group{'s', BucketKeys('c', u2, W1::W60(d.now_ms))});
    if (d.w30d) AddWindowGroups(u, W1::W30d(d.now_ms), false);
    std::vector<int64_t> values;
    Status s = Run(&values);
    if (!s.ok()) return s;
    for (size_t i = 0; i < 13 && i < values.size(); ++i)
      answer->values[i] = values[i];
    return Status::Ok();
  }

  Result<Observed> Query(std::string_view key, W1Window w,
                         bool distinct_only) override {
    groups_.clear();
    AddWindowGroups(std::string(key), w, distinct_only);
    std::vector<int64_t> values;
    Status s = Run(&values);
    if (!s.ok()) return s;
    Observed o;
    if (distinct_only) {
      o.distinct = static_cast<uint64_t>(values.at(0));
    } else {
      o.count = values.at(0);
      o.sum = values.at(1);
      o.distinct = static_cast<uint64_t>(values.at(2));
    }
    o.exact = false;  // HyperLogLog: the distinct count is an estimate
    o.covered_from_ms = w.from_ms;
    o.covered_to_ms = w.to_ms;
    return o;
  }

 private:
  // One command of a decision: the sum of an MGET ('s') or a PFCOUNT ('p').
  struct Group {
    char kind;
    std::vector<std::string> keys;
  };

  void Append(std::initializer_list<std::string_view> words) {
    argv_.clear();
    lens_.clear();
    for (std::string_view w : words) {
      argv_.push_back(w.data());
      lens_.push_back(w.size());
    }
    redisAppendCommandArgv(c_, static_cast<int>(argv_.size()), argv_.data(),
                           lens_.data());
  }

  std::vector<std::string> BucketKeys(char kind, const std::string& key,
                                      W1Window w) const {
    std::vector<std::string> keys;
    for (const Bucket& b : DecomposeWindow(w.from_ms / 1000, w.to_ms / 1000,
                                           resolution_seconds_)) {
      keys.push_back(std::string(1, kind) + ':' + LetterFor(b.resolution_s) +
                     ':' + key + ':' + std::to_string(b.index));
    }
    return keys;
  }

  void AddWindowGroups(const std::string& key, W1Window w, bool distinct_only) {
    if (!distinct_only) {
      groups_.push_back(Group{'s', BucketKeys('c', key, w)});
      groups_.push_back(Group{'s', BucketKeys('a', key, w)});
    }
    groups_.push_back(Group{'p', BucketKeys('h', key, w)});
  }

  // Sends groups_ in one round trip; one value per group.
  Status Run(std::vector<int64_t>* values) {
    values->clear();
    if (lua_) {
      Command cmd;
      size_t nkeys = 0;
      for (const Group& g : groups_) nkeys += g.keys.size();
      cmd.Add("EVALSHA").Add(sha_).Add(static_cast<int64_t>(nkeys));
      for (const Group& g : groups_)
        for (const std::string& k : g.keys) cmd.Add(k);
      for (const Group& g : groups_) {
        cmd.Add(std::string_view(&g.kind, 1))
            .Add(static_cast<int64_t>(g.keys.size()));
      }
      cmd.AppendTo(c_);
      redisReply* reply = nullptr;
      if (redisGetReply(c_, reinterpret_cast<void**>(&reply)) != REDIS_OK)
        return ContextError(c_, "redis");
      Status s = Status::Ok();
      if (reply->type == REDIS_REPLY_ARRAY) {
        for (size_t i = 0; i < reply->elements; ++i)
          values->push_back(AsInt(reply->element[i]));
      } else {
        s = Status(Code::kInternal,
                   std::string("redis: ") + (reply->type == REDIS_REPLY_ERROR
                                                 ? reply->str
                                                 : "unexpected reply"));
      }
      freeReplyObject(reply);
      return s;
    }
    for (const Group& g : groups_) {
      Command cmd;
      cmd.Add(g.kind == 'p' ? "PFCOUNT" : "MGET");
      for (const std::string& k : g.keys) cmd.Add(k);
      cmd.AppendTo(c_);
    }
    Status s = Status::Ok();
    for (const Group& g : groups_) {
      redisReply* reply = nullptr;
      if (redisGetReply(c_, reinterpret_cast<void**>(&reply)) != REDIS_OK)
        return ContextError(c_, "redis");
      int64_t v = 0;
      if (g.kind == 'p') {
        v = AsInt(reply);
      } else if (reply->type == REDIS_REPLY_ARRAY) {
        for (size_t i = 0; i < reply->elements; ++i)
          v += AsInt(reply->element[i]);
      }
      if (reply->type == REDIS_REPLY_ERROR)
        s = Status(Code::kInternal, std::string("redis: ") + reply->str);
      values->push_back(v);
      freeReplyObject(reply);
    }
    return s;
  }

  redisContext* const c_;
  const std::vector<Resolution> resolutions_;
  std::vector<int64_t> resolution_seconds_;
  const bool lua_;
  const std::string sha_;
  std::vector<Group> groups_;
  std::vector<size_t> owners_;
  std::vector<const char*> argv_;
  std::vector<size_t> lens_;
};

}  // namespace

std::vector<Bucket> DecomposeWindow(int64_t from_s, int64_t to_s,
                                    const std::vector<int64_t>& resolutions) {
  std::vector<Bucket> out;
  if (from_s >= to_s || resolutions.empty()) return out;
  const int64_t r = resolutions.front();
  const std::vector<int64_t> finer(resolutions.begin() + 1, resolutions.end());
  // Whole buckets of this resolution inside the window.
  const int64_t first = (from_s + r - 1) / r * r;  // windows are after 1970
  const int64_t last = to_s / r * r;
  if (first >= last) {
    if (finer.empty()) return out;  // cannot happen with a 1 s resolution
    return DecomposeWindow(from_s, to_s, finer);
  }
  if (!finer.empty()) out = DecomposeWindow(from_s, first, finer);
  for (int64_t b = first; b < last; b += r) out.push_back(Bucket{r, b / r});
  if (!finer.empty()) {
    for (const Bucket& b : DecomposeWindow(last, to_s, finer)) out.push_back(b);
  }
  return out;
}

RedisSystem::RedisSystem(std::string host, uint16_t port, Design design,
                         bool lua)
    : host_(std::move(host)), port_(port), design_(design), lua_(lua) {}

RedisSystem::~RedisSystem() {
  if (admin_ != nullptr) redisFree(admin_);
}

std::string RedisSystem::name() const {
  return std::string(design_ == Design::kA2 ? "redis-a2" : "redis-a3") +
         (lua_ ? "-lua" : "");
}

Status RedisSystem::Prepare() {
  Status status = Status::Ok();
  redisContext* c = Open(host_, port_, &status);
  if (c == nullptr) return status;
  auto* reply = static_cast<redisReply*>(redisCommand(c, "FLUSHALL"));
  if (reply == nullptr) status = ContextError(c, "FLUSHALL");
  freeReplyObject(reply);
  redisFree(c);
  return status;
}

Result<std::unique_ptr<SystemConnection>> RedisSystem::Connect() {
  Status status = Status::Ok();
  redisContext* c = Open(host_, port_, &status);
  if (c == nullptr) return status;
  std::string sha;
  if (lua_) {
    auto* reply = static_cast<redisReply*>(redisCommand(
        c, "SCRIPT LOAD %b", kDecisionScript.data(), kDecisionScript.size()));
    if (reply == nullptr || reply->type != REDIS_REPLY_STRING) {
      Status s = reply == nullptr
                     ? ContextError(c, "SCRIPT LOAD")
                     : Status(Code::kInternal, "SCRIPT LOAD failed");
      freeReplyObject(reply);
      redisFree(c);
      return s;
    }
    sha.assign(reply->str, reply->len);
    freeReplyObject(reply);
  }
  return std::unique_ptr<SystemConnection>(
      std::make_unique<RedisConnection>(c, design_, lua_, sha));
}

SystemStats RedisSystem::Stats() {
  std::lock_guard<std::mutex> lock(mu_);
  SystemStats stats;
  stats.memory_kind = "Redis used_memory";
  if (admin_ == nullptr) {
    Status ignored = Status::Ok();
    admin_ = Open(host_, port_, &ignored);
    if (admin_ == nullptr) return stats;
  }
  auto* reply = static_cast<redisReply*>(redisCommand(admin_, "INFO"));
  if (reply == nullptr) {
    redisFree(admin_);
    admin_ = nullptr;
    return stats;
  }
  if (reply->type == REDIS_REPLY_STRING) {
    const std::string text(reply->str, reply->len);
    stats.memory_bytes = InfoField(text, "used_memory");
    stats.cpu_seconds =
        InfoField(text, "used_cpu_user") + InfoField(text, "used_cpu_sys");
  }
  freeReplyObject(reply);
  return stats;
}

}  // namespace tally::bench
