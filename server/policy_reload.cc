#include "server/policy_reload.h"

#include <glog/logging.h>

#include <future>
#include <utility>
#include <vector>

#include "server/policy_config.h"
#include "storage/policy_codec.h"
#include "storage/wal_record.h"

namespace tally {

Status ApplyPolicies(Journal* journal, const PolicySet& policies) {
  std::string payload;
  wal::EncodePolicies(policies, &payload);
  std::promise<Status> promise;
  std::future<Status> outcome = promise.get_future();
  journal->Submit(wal::RecordType::kPolicies, std::move(payload),
                  /*wait_durable=*/false,
                  [&promise](uint64_t, Status status,
                             std::vector<wal::ItemOutcome>&& items) {
                    if (status.ok() && !items.empty()) status = items[0].status;
                    promise.set_value(std::move(status));
                  });
  return outcome.get();
}

Status ReloadPolicyFile(const std::string& path, Journal* journal) {
  if (path.empty()) {
    LOG(INFO) << "SIGHUP: no --policy_file; the built-in default policy stays";
    return Status::Ok();
  }
  Result<PolicySet> file = LoadPolicyFile(path);
  if (!file.ok()) {
    LOG(ERROR) << "SIGHUP: --policy_file " << path
               << " has an error; the policies in force stay: "
               << file.status().ToString();
    return file.status();
  }
  const PolicySet& running = journal->engine()->policies();
  if (SamePolicies(running, *file)) {
    LOG(INFO) << "SIGHUP: --policy_file " << path
              << " is equal to the policies in force";
    return Status::Ok();
  }
  const std::vector<std::string> diff = DiffPolicies(running, *file);
  Status applied = ApplyPolicies(journal, *file);
  if (!applied.ok()) {
    LOG(ERROR) << "SIGHUP: --policy_file " << path
               << " not applied; the policies in force stay: "
               << applied.ToString();
    return applied;
  }
  for (const std::string& line : diff) {
    LOG(INFO) << "SIGHUP: --policy_file " << path << " applied: " << line;
  }
  return Status::Ok();
}

}  // namespace tally
