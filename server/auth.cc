// Sessions, the AUTH back-off and the denial log (docs/security.md).
#include "server/auth.h"

#include <arpa/inet.h>
#include <glog/logging.h>

#include <algorithm>
#include <cstring>

namespace tally {

// -------------------------------------------------------------- AuthThrottle

std::string ThrottleKey(std::string_view source) {
  const std::string text(source);
  in6_addr v6;
  if (inet_pton(AF_INET6, text.c_str(), &v6) != 1) return text;
  char out[INET6_ADDRSTRLEN];
  if (IN6_IS_ADDR_V4MAPPED(&v6)) {
    in_addr v4;
    std::memcpy(&v4, &v6.s6_addr[12], 4);
    return inet_ntop(AF_INET, &v4, out, sizeof out) ? out : text;
  }
  std::memset(&v6.s6_addr[8], 0, 8);
  if (inet_ntop(AF_INET6, &v6, out, sizeof out) == nullptr) return text;
  return std::string(out) + "/64";
}

AuthThrottle::AuthThrottle(ThrottleOptions options) : options_(options) {}

std::chrono::milliseconds AuthThrottle::BlockedFor(const std::string& source,
                                                   Time now) {
  const std::string key = ThrottleKey(source);
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(key);
  if (it == entries_.end()) return std::chrono::milliseconds(0);
  if (now - it->second.last_failure > options_.forget_after) {
    entries_.erase(it);
    return std::chrono::milliseconds(0);
  }
  if (it->second.blocked_until > now) {
    ++refused_;
    return std::chrono::ceil<std::chrono::milliseconds>(
        it->second.blocked_until - now);
  }
  return std::chrono::milliseconds(0);
}

void AuthThrottle::RecordFailure(const std::string& source, Time now) {
  const std::string key = ThrottleKey(source);
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(key);
  if (it == entries_.end()) {
    if (entries_.size() >= options_.max_sources && !entries_.empty()) {
      auto stalest = entries_.begin();
      for (auto e = entries_.begin(); e != entries_.end(); ++e) {
        if (e->second.last_failure < stalest->second.last_failure) stalest = e;
      }
      entries_.erase(stalest);
    }
    it = entries_.emplace(key, Entry{}).first;
  }
  Entry& e = it->second;
  ++e.failures;
  e.last_failure = now;
  const int extra = e.failures - options_.free_failures;
  if (extra > 0) {
    auto block = options_.base_block * (int64_t{1} << std::min(extra - 1, 20));
    e.blocked_until =
        now + std::min<std::chrono::milliseconds>(block, options_.max_block);
  }
}

size_t AuthThrottle::sources() const {
  std::lock_guard<std::mutex> lock(mu_);
  return entries_.size();
}

uint64_t AuthThrottle::refused() const {
  std::lock_guard<std::mutex> lock(mu_);
  return refused_;
}

// ---------------------------------------------------------- TokenRateLimiter

uint64_t RequestCost(const proto::Request& request) {
  uint64_t items = 1;
  if (const auto* add = std::get_if<proto::AddRequest>(&request.body)) {
    items = add->items.size();
  } else if (const auto* q = std::get_if<proto::QueryRequest>(&request.body)) {
    items = q->items.size();
  } else if (const auto* aq =
                 std::get_if<proto::AddAndQueryRequest>(&request.body)) {
    items = aq->adds.size() + aq->queries.size();
  } else if (const auto* del =
                 std::get_if<proto::DeleteRequest>(&request.body)) {
    items = del->keys.size();
  }
  return std::max<uint64_t>(1, items);
}

bool TokenRateLimiter::TryTake(const Token& token, uint64_t cost, Time now) {
  if (token.ops_per_s == 0) return true;
  const double rate = token.ops_per_s;
  const double burst = token.burst != 0 ? token.burst : token.ops_per_s;
  std::lock_guard<std::mutex> lock(mu_);
  auto [it, added] = buckets_.try_emplace(token.id);
  Bucket& b = it->second;
  if (added) {
    b.level = burst;  // a new token starts with its whole burst
  } else if (now > b.last) {
    const double elapsed = std::chrono::duration<double>(now - b.last).count();
    b.level = std::min(burst, b.level + elapsed * rate);
  }
  b.last = std::max(b.last, now);
  const auto need = static_cast<double>(cost);
  // More than the burst: admitted into a full bucket only, leaving debt.
  if (b.level < std::min(need, burst)) return false;
  b.level -= need;
  return true;
}

size_t TokenRateLimiter::buckets() const {
  std::lock_guard<std::mutex> lock(mu_);
  return buckets_.size();
}

// ----------------------------------------------------------------- DenialLog

void DenialLog::Log(std::string_view line) {
  std::lock_guard<std::mutex> lock(mu_);
  const auto now = BootClock::now();
  if (now - window_start_ >= std::chrono::seconds(1)) {
    window_start_ = now;
    in_window_ = 0;
  }
  if (in_window_ >= per_second_) {
    ++suppressed_;
    ++suppressed_total_;
    return;
  }
  ++in_window_;
  ++logged_;
  if (suppressed_ > 0) {
    LOG(WARNING) << line << " (and " << suppressed_
                 << " earlier denials not logged)";
    suppressed_ = 0;
  } else {
    LOG(WARNING) << line;
  }
}

uint64_t DenialLog::logged() const {
  std::lock_guard<std::mutex> lock(mu_);
  return logged_;
}

uint64_t DenialLog::suppressed_total() const {
  std::lock_guard<std::mutex> lock(mu_);
  return suppressed_total_;
}

// ------------------------------------------------------------------- Session

Session::Session(std::shared_ptr<const AuthConfig> config, std::string source,
                 bool admin_allow_remote, LimitStats* stats)
    : config_(std::move(config)),
      source_(std::move(source)),
      local_(source_ == "unix" || IsLoopbackAddress(source_)),
      admin_allow_remote_(admin_allow_remote),
      stats_(stats) {}

bool Session::IsAdminOnly(const proto::Request& request) {
  // Admin commands read server state (clients' addresses, config) or change
  // it (CONFIG SET, CLIENT KILL).
  if (request.op() == proto::Op::kAdmin) return true;
  if (const auto* info = std::get_if<proto::InfoRequest>(&request.body)) {
    return info->section == "debug";
  }
  return false;
}

bool Session::AdminAllowed() const {
  return role() == Role::kAdmin && (local_ || admin_allow_remote_);
}

Status Session::CheckAdmin(proto::Op op) {
  if (AdminAllowed()) return Status::Ok();
  const std::string name(proto::OpName(op));
  if (role() != Role::kAdmin) {
    Deny(name + " (admin only)");
    return Status(Code::kNoPermission,
                  "token '" + token_id() + "' (" +
                      std::string(RoleName(role())) + ") may not run " + name +
                      (op == proto::Op::kInfo    ? " debug"
                       : op == proto::Op::kAdmin ? " commands"
                                                 : "") +
                      " (admin only)");
  }
  if (stats_ != nullptr) LimitStats::Bump(stats_->admin_remote);
  Deny(name + " (admin operation from a non-loopback address)");
  return Status(Code::kNoPermission,
                "admin operations are allowed only from loopback or the Unix "
                "socket (this connection comes from " +
                    source_ +
                    "); start tallyd with --admin_allow_remote to "
                    "allow them from elsewhere");
}

Role Session::role() const {
  if (!config_) return Role::kAdmin;
  return token_ ? token_->role : Role::kReader;
}

const std::string& Session::token_id() const {
  static const std::string kNone;
  return token_ ? token_->id : kNone;
}

void Session::Deny(std::string_view what) {
  if (!config_ || !config_->denials) return;
  config_->denials->Log(
      "auth: denied " + std::string(what) + " source=" + source_ +
      " token=" + (token_ ? token_->id : std::string("(none)")));
}

proto::Response Session::Authenticate(const proto::AuthRequest& request,
                                      BootClock::time_point now) {
  proto::Response response;
  if (!config_) {
    // No token file: every connection is admin already.
    response.body = proto::AuthResult{.token_id = "", .role = "admin"};
    return response;
  }
  if (config_->throttle) {
    const auto blocked = config_->throttle->BlockedFor(source_, now);
    if (blocked.count() > 0) {
      // Counted too: a source that keeps trying stays blocked, longer.
      config_->throttle->RecordFailure(source_, now);
      ++failures_;
      must_close_ = true;
      Deny("AUTH (source throttled after repeated failures)");
      return proto::Response::Error(Status(
          Code::kNoPermission,
          "too many failed authentications from this address; retry in " +
              std::to_string((blocked.count() + 999) / 1000) + " s"));
    }
  }
  const uint64_t generation = config_->tokens->generation();
  std::shared_ptr<const Token> token = config_->tokens->Verify(request.token);
  if (!token) {
    ++failures_;
    if (config_->throttle) config_->throttle->RecordFailure(source_, now);
    if (failures_ >= config_->max_failures) must_close_ = true;
    Deny("AUTH (unknown token), failure " + std::to_string(failures_) + " of " +
         std::to_string(config_->max_failures));
    return proto::Response::Error(
        Status(Code::kNoPermission, "authentication failed"));
  }
  token_ = std::move(token);
  generation_ = generation;
  response.body = proto::AuthResult{
      .token_id = token_->id, .role = std::string(RoleName(token_->role))};
  return response;
}

bool Session::MayWrite(std::string_view key) const {
  if (!token_ || token_->prefixes.empty()) return true;
  for (const std::string& p : token_->prefixes) {
    if (key.starts_with(p)) return true;
  }
  return false;
}

Status Session::Authorize(proto::Request* request,
                          std::vector<size_t>* denied_items) {
  Status allowed = AuthorizeRole(request, denied_items);
  if (!allowed.ok()) return allowed;
  return ChargeRate(*request);
}

Status Session::ChargeRate(const proto::Request& request) {
  if (!config_ || !config_->rates || !token_ || token_->ops_per_s == 0) {
    return Status::Ok();
  }
  const proto::Op op = request.op();
  if (op == proto::Op::kHello || op == proto::Op::kPing ||
      op == proto::Op::kAuth || op == proto::Op::kNone) {
    return Status::Ok();
  }
  const uint64_t cost = RequestCost(request);
  if (config_->rates->TryTake(*token_, cost, BootClock::now())) {
    return Status::Ok();
  }
  if (stats_ != nullptr) LimitStats::Bump(stats_->token_rate);
  Deny(std::string(proto::OpName(op)) + " (over the token's ops/s limit)");
  return Status(Code::kResourceExhausted,
                "token '" + token_->id +
                    "' is over its rate limit (ops_per_s=" +
                    std::to_string(token_->ops_per_s) + " burst=" +
                    std::to_string(token_->burst != 0 ? token_->burst
                                                      : token_->ops_per_s) +
                    "; this request costs " + std::to_string(cost) +
                    " ops, one per item); nothing applied, retry later");
}

Status Session::AuthorizeRole(proto::Request* request,
                              std::vector<size_t>* denied_items) {
  denied_items->clear();
  const proto::Op op = request->op();
  if (!config_) {
    // No token file: every connection is admin, but admin operations still
    // need a local peer.
    return IsAdminOnly(*request) ? CheckAdmin(op) : Status::Ok();
  }
  if (op == proto::Op::kHello || op == proto::Op::kPing ||
      op == proto::Op::kAuth || op == proto::Op::kNone) {
    return Status::Ok();
  }
  if (token_ && config_->tokens->generation() != generation_) {
    // The tokens were reloaded: keep the session only if its token is still
    // there (its role may have changed).
    std::shared_ptr<const Token> current = config_->tokens->Current(*token_);
    if (!current) {
      Deny(std::string(proto::OpName(op)) + " (token revoked)");
      token_ = nullptr;
      must_close_ = true;
      return Status(Code::kAuthRequired,
                    "the token was revoked; authenticate again");
    }
    token_ = std::move(current);
    generation_ = config_->tokens->generation();
  }
  if (!token_) {
    Deny(std::string(proto::OpName(op)) + " before AUTH");
    return Status(Code::kAuthRequired,
                  "authenticate first: only HELLO, AUTH and PING are allowed "
                  "before AUTH");
  }
  const Role role = token_->role;
  auto no_permission = [&](std::string_view why) {
    Deny(std::string(proto::OpName(op)) + " (" + std::string(why) + ")");
    return Status(Code::kNoPermission, "token '" + token_->id + "' (" +
                                           std::string(RoleName(role)) + ") " +
                                           std::string(why));
  };
  // The one gate of admin-only operations: role and peer address.
  if (IsAdminOnly(*request)) return CheckAdmin(op);
  switch (op) {
    case proto::Op::kQuery:
    case proto::Op::kRange:
    case proto::Op::kInspect:
    case proto::Op::kScan:
    case proto::Op::kInfo:
      return Status::Ok();
    case proto::Op::kAdd:
    case proto::Op::kAddAndQuery:
    case proto::Op::kDelete:
      break;
    default:
      return no_permission("may not run this operation");
  }
  if (role == Role::kReader) return no_permission("may not write");
  if (role == Role::kAdmin || token_->prefixes.empty()) return Status::Ok();
  // A prefix-scoped writer: take out the items outside its prefixes.
  auto filter = [&](auto& items, auto key_of) {
    size_t kept = 0;
    for (size_t i = 0; i < items.size(); ++i) {
      if (MayWrite(key_of(items[i]))) {
        if (kept != i) items[kept] = std::move(items[i]);
        ++kept;
      } else {
        denied_items->push_back(i);
      }
    }
    items.resize(kept);
  };
  if (op == proto::Op::kAdd) {
    filter(std::get<proto::AddRequest>(request->body).items,
           [](const proto::AddItem& item) -> std::string_view {
             return item.key;
           });
  } else if (op == proto::Op::kAddAndQuery) {
    filter(std::get<proto::AddAndQueryRequest>(request->body).adds,
           [](const proto::AddItem& item) -> std::string_view {
             return item.key;
           });
  } else {
    filter(std::get<proto::DeleteRequest>(request->body).keys,
           [](const std::string& key) -> std::string_view { return key; });
  }
  if (!denied_items->empty()) {
    Deny(std::string(proto::OpName(op)) + " of " +
         std::to_string(denied_items->size()) +
         " item(s) outside the token's key prefixes");
  }
  return Status::Ok();
}

void Session::Restore(const std::vector<size_t>& denied_items,
                      proto::Response* response) {
  if (denied_items.empty()) return;
  const std::string message =
      "the token may not write this key (outside its key prefixes); nothing "
      "applied";
  auto put_back = [&](auto& items, auto denied) {
    for (size_t position : denied_items) {
      items.insert(items.begin() + static_cast<std::ptrdiff_t>(
                                       std::min(position, items.size())),
                   denied);
    }
  };
  proto::AddItemResult add_denied;
  add_denied.code = Code::kNoPermission;
  add_denied.message = message;
  proto::DeleteItemResult delete_denied;
  delete_denied.code = Code::kNoPermission;
  delete_denied.message = message;
  if (auto* add = std::get_if<proto::AddResult>(&response->body)) {
    put_back(add->items, add_denied);
  } else if (auto* aq =
                 std::get_if<proto::AddAndQueryResult>(&response->body)) {
    put_back(aq->adds, add_denied);
  } else if (auto* del = std::get_if<proto::DeleteResult>(&response->body)) {
    put_back(del->items, delete_denied);
  }
}

}  // namespace tally
