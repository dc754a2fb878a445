#include "server/policy_config.h"

#include <fstream>
#include <sstream>
#include <vector>

namespace tally {

namespace {

// Splits a line into tokens; a token may contain "quoted text" with spaces.
Result<std::vector<std::string>> Tokenize(std::string_view line) {
  std::vector<std::string> tokens;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    if (i == line.size() || line[i] == '#') break;
    std::string token;
    while (i < line.size() && line[i] != ' ' && line[i] != '\t') {
      if (line[i] == '"') {
        size_t close = line.find('"', i + 1);
        if (close == std::string_view::npos) {
          return Status::InvalidArgument("unterminated quote");
        }
        token.append(line.substr(i + 1, close - i - 1));
        i = close + 1;
      } else {
        token.push_back(line[i++]);
      }
    }
    tokens.push_back(std::move(token));
  }
  return tokens;
}

Status ApplySetting(Policy* policy, std::string_view key,
                    std::string_view value) {
  if (key == "prefix") {
    policy->prefix = std::string(value);
  } else if (key == "tiers") {
    Result<std::vector<TierSpec>> tiers = ParseTiers(value);
    if (!tiers.ok()) return tiers.status();
    policy->tiers = *tiers;
  } else if (key == "distinct") {
    if (value == "on" || value == "true") {
      policy->track_distinct = true;
    } else if (value == "off" || value == "false") {
      policy->track_distinct = false;
    } else {
      return Status::InvalidArgument("distinct must be on or off");
    }
  } else if (key == "lateness" || key == "skew") {
    Result<int64_t> ms = ParseDuration(value);
    if (!ms.ok()) return ms.status();
    (key == "lateness" ? policy->max_lateness_ms : policy->max_skew_ms) = *ms;
  } else {
    return Status::InvalidArgument(
        "unknown setting '" + std::string(key) +
        "' (use prefix, tiers, distinct, lateness, skew)");
  }
  return Status::Ok();
}

}  // namespace

Result<PolicySet> ParsePolicyConfig(std::string_view text) {
  Policy default_policy;
  std::vector<Policy> prefixed;
  bool have_default = false;
  int line_number = 0;
  while (!text.empty()) {
    const size_t eol = text.find('\n');
    std::string_view line = text.substr(0, eol);
    text.remove_prefix(eol == std::string_view::npos ? text.size() : eol + 1);
    ++line_number;
    auto fail = [line_number](std::string_view why) {
      return Status::InvalidArgument("policy file line " +
                                     std::to_string(line_number) + ": " +
                                     std::string(why));
    };
    Result<std::vector<std::string>> tokens = Tokenize(line);
    if (!tokens.ok()) return fail(tokens.status().message());
    if (tokens->empty()) continue;
    Policy policy;
    policy.name = (*tokens)[0];
    if (policy.name.find('=') != std::string::npos) {
      return fail("a line starts with the policy's name");
    }
    for (size_t i = 1; i < tokens->size(); ++i) {
      const std::string& setting = (*tokens)[i];
      const size_t eq = setting.find('=');
      if (eq == std::string::npos) {
        return fail("'" + setting + "' is not key=value");
      }
      Status s = ApplySetting(&policy, std::string_view(setting).substr(0, eq),
                              std::string_view(setting).substr(eq + 1));
      if (!s.ok()) return fail(s.message());
    }
    if (policy.name == "default") {
      if (have_default) return fail("a second 'default' policy");
      if (!policy.prefix.empty())
        return fail("the default policy has no prefix");
      default_policy = std::move(policy);
      have_default = true;
    } else {
      if (policy.prefix.empty())
        return fail("policy '" + policy.name + "' needs prefix=");
      prefixed.push_back(std::move(policy));
    }
  }
  return PolicySet::Create(std::move(default_policy), std::move(prefixed));
}

Result<PolicySet> LoadPolicyFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status(Code::kIoError, "cannot read policy file " + path);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return ParsePolicyConfig(buffer.str());
}

std::vector<std::string> DiffPolicies(const PolicySet& running,
                                      const PolicySet& file) {
  auto find = [](const PolicySet& set, const std::string& name) {
    const Policy* found = nullptr;
    for (const Policy* p : set.All()) {
      if (p->name == name) found = p;
    }
    return found;
  };
  auto ms = [](int64_t v) { return FormatDuration(v); };
  std::vector<std::string> out;
  for (const Policy* old : running.All()) {
    const Policy* now = find(file, old->name);
    const std::string what = "policy '" + old->name + "'";
    if (now == nullptr) {
      out.push_back(what +
                    " removed: its keys take the policy they then match");
      continue;
    }
    if (now->prefix != old->prefix) {
      out.push_back(what + ": prefix '" + old->prefix + "' -> '" + now->prefix +
                    "'");
    }
    if (now->tiers != old->tiers) {
      out.push_back(what + ": tiers " + FormatTiers(old->tiers) + " -> " +
                    FormatTiers(now->tiers) +
                    " (refused while a stored key has this policy: buckets "
                    "cannot be rebucketed)");
    }
    if (now->track_distinct != old->track_distinct) {
      out.push_back(what + ": distinct " +
                    (old->track_distinct
                         ? "on -> off (its keys drop their members)"
                         : "off -> on"));
    }
    if (now->max_lateness_ms != old->max_lateness_ms) {
      out.push_back(what + ": lateness " + ms(old->max_lateness_ms) + " -> " +
                    ms(now->max_lateness_ms));
    }
    if (now->max_skew_ms != old->max_skew_ms) {
      out.push_back(what + ": skew " + ms(old->max_skew_ms) + " -> " +
                    ms(now->max_skew_ms));
    }
  }
  for (const Policy* added : file.All()) {
    if (find(running, added->name) != nullptr) continue;
    std::string line = "policy '" + added->name + "' added (prefix '" +
                       added->prefix + "', tiers " + FormatTiers(added->tiers) +
                       ")";
    // Stored keys under its prefix match another policy today; they move
    // to the new one, which needs equal tiers.
    const Policy& today = running.Match(added->prefix);
    if (!added->prefix.empty() && today.tiers != added->tiers) {
      line += "; refused while a key stored under '" + added->prefix +
              "' has policy '" + today.name + "' (tiers " +
              FormatTiers(today.tiers) + ")";
    }
    out.push_back(std::move(line));
  }
  return out;
}

}  // namespace tally
