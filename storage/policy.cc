#include "storage/policy.h"

#include <algorithm>
#include <set>

namespace tally {

namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  return s;
}

Status ValidateTiers(const std::vector<TierSpec>& tiers) {
  if (tiers.empty() || tiers.size() > kMaxTiers) {
    return Status::InvalidArgument("a policy needs 1 to 8 tiers, got " +
                                   std::to_string(tiers.size()));
  }
  for (size_t i = 0; i < tiers.size(); ++i) {
    const TierSpec& t = tiers[i];
    std::string where = "tier " + std::to_string(i + 1) + " (" +
                        FormatDuration(t.resolution_ms) + " x " +
                        FormatDuration(t.retention_ms) + "): ";
    if (t.resolution_ms < kSecondMs || t.resolution_ms % kSecondMs != 0) {
      return Status::InvalidArgument(
          where + "resolution must be a whole number of seconds");
    }
    if (t.retention_ms < t.resolution_ms ||
        t.retention_ms % t.resolution_ms != 0) {
      return Status::InvalidArgument(
          where + "retention must be a multiple of the resolution");
    }
    if (t.retention_ms > kMaxRetentionMs) {
      return Status::InvalidArgument(where + "retention must be at most " +
                                     FormatDuration(kMaxRetentionMs));
    }
    if (t.buckets() > kMaxBucketsPerTier) {
      return Status::InvalidArgument(where + "more than " +
                                     std::to_string(kMaxBucketsPerTier) +
                                     " buckets; use a coarser resolution");
    }
    if (i == 0) continue;
    const TierSpec& finer = tiers[i - 1];
    if (t.resolution_ms <= finer.resolution_ms ||
        t.resolution_ms % finer.resolution_ms != 0) {
      return Status::InvalidArgument(
          where +
          "resolution must be a larger multiple of the previous tier's");
    }
    if (t.retention_ms - t.resolution_ms < finer.retention_ms) {
      return Status::InvalidArgument(
          where +
          "retention must exceed the previous tier's by at least one bucket");
    }
  }
  return Status::Ok();
}

}  // namespace

Status ValidatePolicy(const Policy& policy) {
  Status s = ValidateTiers(policy.tiers);
  if (!s.ok())
    return Status::InvalidArgument("policy '" + policy.name +
                                   "': " + std::string(s.message()));
  if (policy.max_lateness_ms < 0) {
    return Status::InvalidArgument("policy '" + policy.name +
                                   "': max lateness must be >= 0");
  }
  if (policy.max_skew_ms < 0 || policy.max_skew_ms > kDayMs) {
    return Status::InvalidArgument("policy '" + policy.name +
                                   "': max skew must be between 0 and 1d");
  }
  return Status::Ok();
}

Result<std::vector<TierSpec>> ParseTiers(std::string_view text) {
  std::vector<TierSpec> tiers;
  while (true) {
    size_t comma = text.find(',');
    std::string_view item = Trim(text.substr(0, comma));
    size_t x = item.find_first_of("xX");
    if (x == std::string_view::npos) {
      return Status::InvalidArgument(
          "tier '" + std::string(item) +
          "' must read '<resolution> x <retention>', e.g. '1m x 48h'");
    }
    Result<int64_t> resolution = ParseDuration(Trim(item.substr(0, x)));
    if (!resolution.ok()) return resolution.status();
    Result<int64_t> retention = ParseDuration(Trim(item.substr(x + 1)));
    if (!retention.ok()) return retention.status();
    tiers.push_back({*resolution, *retention});
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  Status s = ValidateTiers(tiers);
  if (!s.ok()) return s;
  return tiers;
}

std::string FormatTiers(const std::vector<TierSpec>& tiers) {
  std::string out;
  for (const TierSpec& t : tiers) {
    if (!out.empty()) out += ", ";
    out += FormatDuration(t.resolution_ms) + " x " +
           FormatDuration(t.retention_ms);
  }
  return out;
}

PolicySet::PolicySet() : default_(std::make_shared<const Policy>()) {}

Result<PolicySet> PolicySet::Create(Policy default_policy,
                                    std::vector<Policy> prefixed) {
  default_policy.prefix.clear();
  Status s = ValidatePolicy(default_policy);
  if (!s.ok()) return s;
  std::set<std::string> prefixes, names = {default_policy.name};
  PolicySet set;
  for (Policy& p : prefixed) {
    s = ValidatePolicy(p);
    if (!s.ok()) return s;
    if (p.prefix.empty()) {
      return Status::InvalidArgument("policy '" + p.name +
                                     "' needs a non-empty key prefix");
    }
    if (!prefixes.insert(p.prefix).second) {
      return Status::InvalidArgument("two policies share the prefix '" +
                                     p.prefix + "'");
    }
    if (!names.insert(p.name).second) {
      return Status::InvalidArgument("two policies are named '" + p.name + "'");
    }
    set.prefixed_.push_back(std::make_shared<const Policy>(std::move(p)));
  }
  std::stable_sort(set.prefixed_.begin(), set.prefixed_.end(),
                   [](const auto& a, const auto& b) {
                     return a->prefix.size() > b->prefix.size();
                   });
  set.default_ = std::make_shared<const Policy>(std::move(default_policy));
  return set;
}

const Policy& PolicySet::Match(std::string_view key) const {
  for (const auto& p : prefixed_) {
    if (key.starts_with(p->prefix)) return *p;
  }
  return *default_;
}

std::vector<const Policy*> PolicySet::All() const {
  std::vector<const Policy*> all = {default_.get()};
  for (const auto& p : prefixed_) all.push_back(p.get());
  return all;
}

}  // namespace tally
