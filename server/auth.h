// Authentication and authorisation (docs/security.md, RELIABILITY.md 4.1-4.3):
// bearer tokens, their roles, the per-connection session, the per-source
// back-off against brute force, and the bind policy. Knows no sockets: the
// Connection asks a Session before it hands a request to the Service, and
// tests drive every piece directly.
//
// Tokens: a token file has one token per line,
//   <id> <role> sha256:<64 hex digits> [ops_per_s=N] [burst=N] [key-prefix ...]
// with '#' comments and blank lines. Only the SHA-256 of a secret is stored;
// a presented secret is hashed once and compared with every stored digest in
// constant time (CRYPTO_memcmp, and no early exit), so neither its length
// nor which token came close shows in the timing. Secrets are never logged:
// only token ids are.
//
// Roles: reader (hello, ping, auth, query, range, inspect, scan, info but
// its debug section), writer (reader's rights plus add, add_and_query and
// delete, optionally only of keys starting with one of its prefixes; an item
// outside them fails alone with NO_PERMISSION) and admin (everything).
//
// Implemented in tokens.cc (token files, secrets, TokenStore), auth.cc
// (AuthThrottle, DenialLog, Session) and bind_policy.cc (the start-time
// exposure checks).
//
// Thread safety: TokenStore, AuthThrottle and DenialLog are thread-safe;
// a Session belongs to one connection (its strand).

#ifndef TALLY_SERVER_AUTH_H_
#define TALLY_SERVER_AUTH_H_

#include <sys/types.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "protocol/messages.h"
#include "protocol/result.h"
#include "server/limit_stats.h"
#include "storage/boot_clock.h"

namespace tally {

enum class Role : uint8_t { kReader = 1, kWriter = 2, kAdmin = 3 };
std::string_view RoleName(Role role);
Result<Role> ParseRole(std::string_view name);

using Sha256Digest = std::array<uint8_t, 32>;
Sha256Digest Sha256(std::string_view data);
// Constant time in the contents (CRYPTO_memcmp).
bool DigestsEqual(const Sha256Digest& a, const Sha256Digest& b);
std::string DigestHex(const Sha256Digest& digest);

struct Token {
  std::string id;
  Role role = Role::kReader;
  Sha256Digest digest{};
  // writer only: keys it may add to or delete; empty = every key.
  std::vector<std::string> prefixes;
  // Rate limit shared by every session of the token (TokenRateLimiter):
  // items a second (0: none), and how many may come at once (0: one
  // second's worth).
  uint32_t ops_per_s = 0;
  uint32_t burst = 0;
  bool operator==(const Token&) const = default;
};

// A token's requests cost one op per item (add, query, add_and_query's adds
// and queries, delete's keys; any other request costs 1).
uint64_t RequestCost(const proto::Request& request);

// Per-token token buckets (RELIABILITY.md 4.5): a token with ops_per_s > 0
// may spend `burst` ops at once, refilled at ops_per_s. A request is
// admitted whole or refused whole; one costing more than the burst is
// admitted only into a full bucket, which it leaves in debt, so the average
// rate holds for large batches too. Buckets are keyed by token id: every
// session of a token shares one, and a reload that changes the rate keeps
// the level. Thread-safe (one mutex, taken only for rate-limited tokens).
class TokenRateLimiter {
 public:
  using Time = BootClock::time_point;
  // Whether `token` may spend `cost` ops now; if so they are spent.
  bool TryTake(const Token& token, uint64_t cost, Time now);
  size_t buckets() const;

 private:
  struct Bucket {
    double level = 0;
    Time last{};
  };
  mutable std::mutex mu_;
  std::unordered_map<std::string, Bucket> buckets_;
};

// Secrets are at least this many bytes of hex (128 bits).
inline constexpr size_t kMinSecretHexChars = 32;

// Parses a token file's text. Errors name the line and the reason (never a
// secret: the file holds none). Ids must be unique.
Result<std::vector<Token>> ParseTokenFile(std::string_view text);
// Reads and parses a token file; refuses one that group or others may write
// (whoever can write it can let themselves in).
Result<std::vector<Token>> LoadTokenFile(const std::string& path);

// A new secret: 32 hex digits (128 bits) from getrandom(2).
Result<std::string> NewSecret();
// The token-file line for `secret`.
std::string TokenLine(std::string_view id, Role role, std::string_view secret,
                      const std::vector<std::string>& prefixes);

// The tokens in force; Replace() swaps them atomically (SIGHUP reload).
class TokenStore {
 public:
  explicit TokenStore(std::vector<Token> tokens = {});

  void Replace(std::vector<Token> tokens);
  // Reloads `path`; on error keeps the tokens in force and says why.
  Status Reload(const std::string& path);

  // The token whose digest matches `secret`'s, or null. Every stored digest
  // is compared, whatever matches.
  std::shared_ptr<const Token> Verify(std::string_view secret) const;
  // The token now in force with the same id and digest as `token` (the
  // same secret, possibly a new role), or null once revoked.
  std::shared_ptr<const Token> Current(const Token& token) const;
  // Bumped by every Replace(): sessions recheck their token when it moves.
  uint64_t generation() const;
  size_t size() const;

 private:
  using Set = std::vector<std::shared_ptr<const Token>>;
  std::shared_ptr<const Set> Snapshot() const;

  mutable std::mutex mu_;
  std::shared_ptr<const Set> tokens_;
  uint64_t generation_ = 0;
};

// The unit the AUTH back-off counts by: an IPv4 address, or the /64 of an
// IPv6 address ("2001:db8:1:2::/64"; one host usually holds a whole /64,
// so counting per address would give it 2^64 budgets). An IPv4-mapped IPv6
// address counts as its IPv4 address. Anything else (a Unix socket's
// "unix") is its own unit.
std::string ThrottleKey(std::string_view source);

// Per-source back-off against brute force (sources grouped by
// ThrottleKey). Each source gets
// `free_failures` failed AUTHs; every further failure (an AUTH refused
// while blocked counts too) blocks AUTH from it for
// base_block * 2^(extra failures - 1), at most max_block. A source's
// record is forgotten `forget_after` after its last failure. The table holds
// at most max_sources records; when full the stalest is dropped.
struct ThrottleOptions {
  int free_failures = 10;
  std::chrono::milliseconds base_block{1000};
  std::chrono::milliseconds max_block{60'000};
  std::chrono::milliseconds forget_after{600'000};
  size_t max_sources = 4096;
};

class AuthThrottle {
 public:
  using Time = BootClock::time_point;
  explicit AuthThrottle(ThrottleOptions options = {});

  // How long AUTH from `source` is still refused (0: allowed now).
  std::chrono::milliseconds BlockedFor(const std::string& source, Time now);
  void RecordFailure(const std::string& source, Time now);
  size_t sources() const;
  uint64_t refused() const;

 private:
  struct Entry {
    int failures = 0;
    Time last_failure{};
    Time blocked_until{};
  };
  const ThrottleOptions options_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, Entry> entries_;
  uint64_t refused_ = 0;
};

// Rate-limited denial logging: at most `per_second` lines a second; the
// number suppressed is reported with the next line logged.
class DenialLog {
 public:
  explicit DenialLog(int per_second = 10) : per_second_(per_second) {}
  void Log(std::string_view line);
  uint64_t logged() const;
  uint64_t suppressed_total() const;

 private:
  const int per_second_;
  mutable std::mutex mu_;
  BootClock::time_point window_start_{};
  int in_window_ = 0;
  uint64_t suppressed_ = 0;
  uint64_t suppressed_total_ = 0;
  uint64_t logged_ = 0;
};

// Shared by every connection of a server with authentication on.
struct AuthConfig {
  std::shared_ptr<TokenStore> tokens;
  std::shared_ptr<AuthThrottle> throttle;
  std::shared_ptr<DenialLog> denials;
  // Per-token ops/s buckets; null: the tokens' ops_per_s are not enforced.
  std::shared_ptr<TokenRateLimiter> rates;
  size_t pre_auth_max_frame = 4096;              // bytes of body before AUTH
  std::chrono::milliseconds auth_timeout{5000};  // AUTH must come by then
  int max_failures = 3;  // failed AUTHs before the connection closes
  // A failed AUTH is answered only after this long, and the connection
  // reads nothing meanwhile (a timer, no thread waits): a brute-force client
  // gets one guess per delay per connection however fast it sends, which
  // is what keeps the server's CPU low under S5. 0: answer at once.
  std::chrono::milliseconds failure_delay{200};
};

// One connection's authentication state. With no AuthConfig (no token file)
// every connection is admin.
class Session {
 public:
  // `source`: the peer's address, captured at accept ("unix" for a Unix
  // socket). `admin_allow_remote`: admin operations from a peer that is not
  // loopback are allowed (--admin_allow_remote). `stats`, if set, counts
  // the refusals that are limits (INFO limits).
  Session(std::shared_ptr<const AuthConfig> config, std::string source,
          bool admin_allow_remote = false, LimitStats* stats = nullptr);

  bool authenticated() const { return token_ != nullptr || !config_; }
  Role role() const;
  const std::string& source() const { return source_; }
  const std::string& token_id() const;
  int failures() const { return failures_; }
  // The connection must close now (too many failures, throttled, or its
  // token was revoked).
  bool must_close() const { return must_close_; }

  // Answers an AUTH request: AuthResult, or NO_PERMISSION (wrong or revoked
  // token, or throttled) without saying which part was wrong.
  proto::Response Authenticate(const proto::AuthRequest& request,
                               BootClock::time_point now);

  // Whether `request` may run. May narrow it: the add/delete items of a
  // prefix-scoped writer outside its prefixes are taken out, and their
  // positions returned in *denied_items, for Restore() to put back as
  // NO_PERMISSION in the reply. Errors: AUTH_REQUIRED (not authenticated),
  // NO_PERMISSION (the role may not). A token revoked since AUTH gives
  // AUTH_REQUIRED and must_close().
  Status Authorize(proto::Request* request, std::vector<size_t>* denied_items);
  // Admin-only operations (RELIABILITY.md 4.3): INFO debug and ADMIN (op
  // 12, every admin command). A new admin operation is added here, and
  // Authorize() then lets it through only for AdminAllowed().
  static bool IsAdminOnly(const proto::Request& request);
  // Whether this session may run admin-only operations: role admin (every
  // session without a token file), from loopback or a Unix socket, or from
  // anywhere with --admin_allow_remote.
  bool AdminAllowed() const;
  // Whether the peer is on this host (a loopback address or a Unix socket).
  bool local() const { return local_; }

  // Puts the denied items back in a reply, in their places.
  static void Restore(const std::vector<size_t>& denied_items,
                      proto::Response* response);

 private:
  bool MayWrite(std::string_view key) const;
  void Deny(std::string_view what);

  // The role and prefix checks of Authorize().
  Status AuthorizeRole(proto::Request* request,
                       std::vector<size_t>* denied_items);
  // RESOURCE_EXHAUSTED when the token's ops/s bucket cannot pay for
  // `request`.
  Status ChargeRate(const proto::Request& request);
  // NO_PERMISSION for an admin-only `op` this session may not run (role,
  // or a remote peer); OK otherwise.
  Status CheckAdmin(proto::Op op);

  std::shared_ptr<const AuthConfig> config_;
  std::string source_;
  bool local_ = false;
  bool admin_allow_remote_ = false;
  LimitStats* stats_ = nullptr;
  std::shared_ptr<const Token> token_;
  uint64_t generation_ = 0;
  int failures_ = 0;
  bool must_close_ = false;
};

// Bind policy (RELIABILITY.md 4.1, test S2).
bool IsLoopbackAddress(std::string_view address);
struct BindDecision {
  bool allowed = true;
  // Why it is refused (names the fix), or the warning to log at every start
  // when the insecure override let it through; empty otherwise.
  std::string message;
  bool warn = false;
};
BindDecision CheckBindPolicy(std::string_view bind, bool have_tokens,
                             bool have_tls, bool insecure_allow_public_bind);

// Refuses euid 0 unless allowed (test S8).
Status CheckRunAsUser(uid_t euid, bool allow_root);

}  // namespace tally

#endif  // TALLY_SERVER_AUTH_H_
