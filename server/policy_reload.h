// Policy changes in a running tallyd (docs/operations.md, "Policy file").
// A new policy set goes through the journal as a WAL kPolicies record and
// takes effect when that record is applied, between two mutations; a
// restart's replay switches at the same LSN, so every event is judged again
// with the policies the live server judged it with.
//
// Thread safety: both functions may be called from any thread but the
// journal's writer; they wait for the record's outcome.

#ifndef TALLY_SERVER_POLICY_RELOAD_H_
#define TALLY_SERVER_POLICY_RELOAD_H_

#include <string>

#include "protocol/result.h"
#include "storage/journal.h"
#include "storage/policy.h"

namespace tally {

// Logs `policies` and waits until they are in force. INVALID_ARGUMENT (and
// nothing changes) when a stored key's tiers would change; the journal's
// refusals (NOT_PERSISTED, BUSY, UNAVAILABLE) otherwise.
Status ApplyPolicies(Journal* journal, const PolicySet& policies);

// SIGHUP: re-reads the policy file at `path`, logs each difference from the
// policies in force and applies them. On any error the policies in force
// stay and the log says why; the status is returned as well.
Status ReloadPolicyFile(const std::string& path, Journal* journal);

}  // namespace tally

#endif  // TALLY_SERVER_POLICY_RELOAD_H_
