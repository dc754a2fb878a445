// The policy file tallyd reads (--policy_file): one policy per line.
//
//   # name   settings (key=value; quote values that contain spaces)
//   default  tiers="1s x 2h, 1m x 48h, 1h x 35d, 1d x 400d" distinct=on
//   lateness=48h skew=5s ip       prefix=ip:  tiers="1s x 10m, 1m x 24h"
//   distinct=off
//
// The policy named "default" (optional; built-in defaults otherwise) applies
// to keys no prefix matches; every other policy needs prefix=. Settings left
// out take the built-in defaults (docs/operations.md). Blank lines and lines
// starting with '#' are ignored. Errors name the line.

#ifndef TALLY_SERVER_POLICY_CONFIG_H_
#define TALLY_SERVER_POLICY_CONFIG_H_

#include <string>
#include <string_view>
#include <vector>

#include "protocol/result.h"
#include "storage/policy.h"

namespace tally {

Result<PolicySet> ParsePolicyConfig(std::string_view text);
// Reads and parses a file; an unreadable file is an error.
Result<PolicySet> LoadPolicyFile(const std::string& path);

// What a policy file changes against the policies in force, one line per
// difference ("policy 'ip': lateness 1h -> 2h"), for the log of a reload;
// empty when equal. A line that changes the tiers some keys would get says
// the reload is refused while such keys are stored (the engine decides:
// Engine::ReplacePolicies).
std::vector<std::string> DiffPolicies(const PolicySet& running,
                                      const PolicySet& file);

}  // namespace tally

#endif  // TALLY_SERVER_POLICY_CONFIG_H_
