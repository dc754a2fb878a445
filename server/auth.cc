#include "server/auth.h"

#include <glog/logging.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <sys/random.h>
#include <sys/stat.h>

#include <algorithm>
#include <boost/asio/ip/address.hpp>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

namespace tally {

namespace {

constexpr std::string_view kDigestPrefix = "sha256:";

bool IsHex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
         (c >= 'A' && c <= 'F');
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return c - 'A' + 10;
}

bool ValidId(std::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.' ||
           c == '@';
  });
}

std::vector<std::string_view> Fields(std::string_view line) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    if (i >= line.size() || line[i] == '#') break;  // comment to end of line
    size_t j = i;
    while (j < line.size() && line[j] != ' ' && line[j] != '\t') ++j;
    out.push_back(line.substr(i, j - i));
    i = j;
  }
  return out;
}

Status LineError(int line, std::string_view why) {
  return Status::InvalidArgument("token file line " + std::to_string(line) +
                                 ": " + std::string(why));
}

}  // namespace

std::string_view RoleName(Role role) {
  switch (role) {
    case Role::kReader:
      return "reader";
    case Role::kWriter:
      return "writer";
    case Role::kAdmin:
      return "admin";
  }
  return "unknown";
}

Result<Role> ParseRole(std::string_view name) {
  if (name == "reader") return Role::kReader;
  if (name == "writer") return Role::kWriter;
  if (name == "admin") return Role::kAdmin;
  return Status::InvalidArgument("unknown role '" + std::string(name) +
                                 "' (reader, writer, admin)");
}

Sha256Digest Sha256(std::string_view data) {
  Sha256Digest out{};
  unsigned int size = 0;
  const int ok = EVP_Digest(data.data(), data.size(), out.data(), &size,
                            EVP_sha256(), nullptr);
  CHECK(ok == 1 && size == out.size()) << "EVP_Digest(SHA-256) failed";
  return out;
}

bool DigestsEqual(const Sha256Digest& a, const Sha256Digest& b) {
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string DigestHex(const Sha256Digest& digest) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(digest.size() * 2);
  for (uint8_t b : digest) {
    out.push_back(kHex[b >> 4]);
    out.push_back(kHex[b & 15]);
  }
  return out;
}

Result<std::vector<Token>> ParseTokenFile(std::string_view text) {
  std::vector<Token> tokens;
  std::set<std::string> ids;
  int line_number = 0;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    ++line_number;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    std::vector<std::string_view> f = Fields(line);
    if (f.empty()) continue;
    if (f.size() < 3) {
      return LineError(line_number,
                       "expected '<id> <role> sha256:<64 hex digits> "
                       "[key-prefix...]'");
    }
    Token token;
    if (!ValidId(f[0])) {
      return LineError(line_number,
                       "token id must be 1..64 of [A-Za-z0-9_.@-]");
    }
    token.id = std::string(f[0]);
    if (!ids.insert(token.id).second) {
      return LineError(line_number, "duplicate token id '" + token.id + "'");
    }
    Result<Role> role = ParseRole(f[1]);
    if (!role.ok()) return LineError(line_number, role.status().message());
    token.role = *role;
    std::string_view hash = f[2];
    if (!hash.starts_with(kDigestPrefix) ||
        hash.size() != kDigestPrefix.size() + 64 ||
        !std::all_of(hash.begin() + kDigestPrefix.size(), hash.end(), IsHex)) {
      return LineError(line_number,
                       "the third field must be sha256:<64 hex digits> (the "
                       "SHA-256 of the secret, as `tally token new` prints "
                       "it; never the secret itself)");
    }
    hash.remove_prefix(kDigestPrefix.size());
    for (size_t i = 0; i < token.digest.size(); ++i) {
      token.digest[i] = static_cast<uint8_t>(HexValue(hash[2 * i]) * 16 +
                                             HexValue(hash[2 * i + 1]));
    }
    for (const Token& other : tokens) {
      if (DigestsEqual(other.digest, token.digest)) {
        return LineError(line_number, "token '" + token.id +
                                          "' has the same secret as '" +
                                          other.id + "'");
      }
    }
    for (size_t i = 3; i < f.size(); ++i) {
      token.prefixes.emplace_back(f[i]);
    }
    if (!token.prefixes.empty() && token.role != Role::kWriter) {
      return LineError(line_number, "key prefixes apply to writer tokens only");
    }
    tokens.push_back(std::move(token));
  }
  return tokens;
}

Result<std::vector<Token>> LoadTokenFile(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) {
    return Status(Code::kIoError, "cannot read token file " + path + ": " +
                                      std::strerror(errno));
  }
  if ((st.st_mode & 022) != 0) {
    return Status::InvalidArgument(
        "token file " + path +
        " is writable by group or others (whoever can write it can let "
        "themselves in): chmod 600 it");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return Status(Code::kIoError, "cannot read token file " + path);
  }
  std::ostringstream text;
  text << in.rdbuf();
  Result<std::vector<Token>> tokens = ParseTokenFile(text.str());
  if (!tokens.ok()) {
    return Status(tokens.status().code(),
                  path + ": " + std::string(tokens.status().message()));
  }
  return tokens;
}

Result<std::string> NewSecret() {
  uint8_t bytes[kMinSecretHexChars / 2];
  size_t got = 0;
  while (got < sizeof(bytes)) {
    const ssize_t n = getrandom(bytes + got, sizeof(bytes) - got, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status(Code::kIoError,
                    std::string("getrandom: ") + std::strerror(errno));
    }
    got += static_cast<size_t>(n);
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (uint8_t b : bytes) {
    out.push_back(kHex[b >> 4]);
    out.push_back(kHex[b & 15]);
  }
  return out;
}

std::string TokenLine(std::string_view id, Role role, std::string_view secret,
                      const std::vector<std::string>& prefixes) {
  std::string line = std::string(id) + " " + std::string(RoleName(role)) + " " +
                     std::string(kDigestPrefix) + DigestHex(Sha256(secret));
  for (const std::string& p : prefixes) line += " " + p;
  return line;
}

// ---------------------------------------------------------------- TokenStore

TokenStore::TokenStore(std::vector<Token> tokens) {
  Replace(std::move(tokens));
}

void TokenStore::Replace(std::vector<Token> tokens) {
  auto set = std::make_shared<Set>();
  for (Token& t : tokens) {
    set->push_back(std::make_shared<const Token>(std::move(t)));
  }
  std::lock_guard<std::mutex> lock(mu_);
  tokens_ = std::move(set);
  ++generation_;
}

Status TokenStore::Reload(const std::string& path) {
  Result<std::vector<Token>> tokens = LoadTokenFile(path);
  if (!tokens.ok()) return tokens.status();
  Replace(std::move(*tokens));
  return Status::Ok();
}

std::shared_ptr<const TokenStore::Set> TokenStore::Snapshot() const {
  std::lock_guard<std::mutex> lock(mu_);
  return tokens_;
}

std::shared_ptr<const Token> TokenStore::Verify(std::string_view secret) const {
  const Sha256Digest digest = Sha256(secret);
  std::shared_ptr<const Set> set = Snapshot();
  std::shared_ptr<const Token> found;
  for (const auto& token : *set) {
    // No early exit: the time does not depend on which token matched.
    if (DigestsEqual(token->digest, digest)) found = token;
  }
  return found;
}

std::shared_ptr<const Token> TokenStore::Current(const Token& token) const {
  std::shared_ptr<const Set> set = Snapshot();
  for (const auto& t : *set) {
    if (t->id == token.id && DigestsEqual(t->digest, token.digest)) return t;
  }
  return nullptr;
}

uint64_t TokenStore::generation() const {
  std::lock_guard<std::mutex> lock(mu_);
  return generation_;
}

size_t TokenStore::size() const { return Snapshot()->size(); }

// -------------------------------------------------------------- AuthThrottle

AuthThrottle::AuthThrottle(ThrottleOptions options) : options_(options) {}

std::chrono::milliseconds AuthThrottle::BlockedFor(const std::string& source,
                                                   Time now) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(source);
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
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(source);
  if (it == entries_.end()) {
    if (entries_.size() >= options_.max_sources && !entries_.empty()) {
      auto stalest = entries_.begin();
      for (auto e = entries_.begin(); e != entries_.end(); ++e) {
        if (e->second.last_failure < stalest->second.last_failure) stalest = e;
      }
      entries_.erase(stalest);
    }
    it = entries_.emplace(source, Entry{}).first;
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

// ----------------------------------------------------------------- DenialLog

void DenialLog::Log(std::string_view line) {
  std::lock_guard<std::mutex> lock(mu_);
  const auto now = std::chrono::steady_clock::now();
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

Session::Session(std::shared_ptr<const AuthConfig> config, std::string source)
    : config_(std::move(config)), source_(std::move(source)) {}

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

proto::Response Session::Authenticate(
    const proto::AuthRequest& request,
    std::chrono::steady_clock::time_point now) {
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
  denied_items->clear();
  if (!config_) return Status::Ok();
  const proto::Op op = request->op();
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
  switch (op) {
    case proto::Op::kQuery:
    case proto::Op::kRange:
    case proto::Op::kInspect:
    case proto::Op::kScan:
      return Status::Ok();
    case proto::Op::kInfo:
      if (role != Role::kAdmin &&
          std::get<proto::InfoRequest>(request->body).section == "debug") {
        return no_permission("may not read INFO debug (admin only)");
      }
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

// --------------------------------------------------------------- bind policy

bool IsLoopbackAddress(std::string_view address) {
  boost::system::error_code ec;
  const boost::asio::ip::address a =
      boost::asio::ip::make_address(std::string(address), ec);
  if (ec) return false;
  if (a.is_v6() && a.to_v6().is_v4_mapped()) {
    return boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped,
                                            a.to_v6())
        .is_loopback();
  }
  return a.is_loopback();
}

BindDecision CheckBindPolicy(std::string_view bind, bool have_tokens,
                             bool have_tls, bool insecure_allow_public_bind) {
  BindDecision d;
  if (IsLoopbackAddress(bind) || (have_tokens && have_tls)) return d;
  std::string missing;
  if (!have_tokens) missing = "--token_file";
  if (!have_tls)
    missing += std::string(missing.empty() ? "" : " and ") +
               "--tls_cert_file/--tls_key_file";
  if (insecure_allow_public_bind) {
    d.warn = true;
    d.message = "--insecure_allow_public_bind: listening on " +
                std::string(bind) + ", which is not loopback, without " +
                (have_tokens ? std::string("TLS")
                 : have_tls  ? std::string("authentication")
                             : std::string("authentication or TLS")) +
                " (missing " + missing +
                "): anyone who can reach this address can read and change "
                "every counter. Use only on a trusted network.";
    return d;
  }
  d.allowed = false;
  d.message = "refusing to listen on " + std::string(bind) +
              ": it is not a loopback address, and a public bind needs both "
              "authentication and TLS (missing " +
              missing +
              "). Fix: set --token_file and --tls_cert_file/--tls_key_file, "
              "or bind 127.0.0.1; --insecure_allow_public_bind overrides "
              "(not recommended).";
  return d;
}

Status CheckRunAsUser(uid_t euid, bool allow_root) {
  if (euid != 0 || allow_root) return Status::Ok();
  return Status::InvalidArgument(
      "refusing to run as root (euid 0): run tallyd as an unprivileged user "
      "that owns --data_dir, or pass --allow_root");
}

}  // namespace tally
