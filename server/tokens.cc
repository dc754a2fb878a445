// Token files, secrets and the TokenStore (docs/security.md, "Tokens").
#include <glog/logging.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <sys/random.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

#include "server/auth.h"

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
                       "[ops_per_s=N] [burst=N] [key-prefix...]'");
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
      // Options come before the key prefixes; a prefix that looks like one
      // cannot be written (docs/security.md).
      if (token.prefixes.empty() &&
          (f[i].starts_with("ops_per_s=") || f[i].starts_with("burst="))) {
        const size_t eq = f[i].find('=');
        const std::string_view digits = f[i].substr(eq + 1);
        if (digits.empty() || digits.size() > 9 ||
            digits.find_first_not_of("0123456789") != std::string_view::npos ||
            std::stoul(std::string(digits)) == 0) {
          return LineError(line_number, std::string(f[i].substr(0, eq)) +
                                            " must be 1..999999999");
        }
        const auto value =
            static_cast<uint32_t>(std::stoul(std::string(digits)));
        (f[i][0] == 'o' ? token.ops_per_s : token.burst) = value;
        continue;
      }
      if (token.prefixes.empty() && f[i].starts_with("keys=")) {
        return LineError(line_number,
                         "keys= (a per-token key quota) is not supported yet");
      }
      token.prefixes.emplace_back(f[i]);
    }
    if (token.burst != 0 && token.ops_per_s == 0) {
      return LineError(line_number, "burst= needs ops_per_s=");
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

}  // namespace tally
