#include "server/command_summary.h"

#include <cstdio>

namespace tally {

CommandSummary CommandSummary::Of(const proto::Request& request) {
  CommandSummary s;
  s.op = request.op();
  auto first_key = [&s](const auto& list, uint64_t count) {
    s.items = count;
    if (!list.empty()) {
      s.has_key = true;
      s.key = list.front().key;
    }
  };
  switch (s.op) {
    case proto::Op::kAdd: {
      const auto& items = std::get<proto::AddRequest>(request.body).items;
      first_key(items, items.size());
      break;
    }
    case proto::Op::kQuery: {
      const auto& items = std::get<proto::QueryRequest>(request.body).items;
      first_key(items, items.size());
      break;
    }
    case proto::Op::kAddAndQuery: {
      const auto& body = std::get<proto::AddAndQueryRequest>(request.body);
      if (!body.adds.empty()) {
        first_key(body.adds, body.adds.size() + body.queries.size());
      } else {
        first_key(body.queries, body.queries.size());
      }
      break;
    }
    case proto::Op::kRange:
      s.has_key = true;
      s.key = std::get<proto::RangeRequest>(request.body).key;
      s.items = 1;
      break;
    case proto::Op::kInspect:
      s.has_key = true;
      s.key = std::get<proto::InspectRequest>(request.body).key;
      s.items = 1;
      break;
    case proto::Op::kDelete: {
      const auto& keys = std::get<proto::DeleteRequest>(request.body).keys;
      s.items = keys.size();
      if (!keys.empty()) {
        s.has_key = true;
        s.key = keys.front();
      }
      break;
    }
    case proto::Op::kScan:
      s.detail = std::get<proto::ScanRequest>(request.body).pattern;
      break;
    case proto::Op::kInfo:
      s.detail = std::get<proto::InfoRequest>(request.body).section;
      break;
    case proto::Op::kHello:
      s.detail = std::get<proto::HelloRequest>(request.body).client_name;
      break;
    case proto::Op::kAdmin:
      s.admin_args = std::get<proto::AdminRequest>(request.body).args;
      break;
    default:  // ping; auth (its token is never copied)
      break;
  }
  return s;
}

std::vector<std::string> CommandSummary::Words() const {
  std::vector<std::string> words;
  if (op == proto::Op::kAdmin) {
    words = admin_args;
    if (words.empty()) words.emplace_back("admin");
    return words;
  }
  words.emplace_back(proto::OpName(op));
  if (has_key) words.push_back(key);
  if (!detail.empty()) words.push_back(detail);
  if (items > 1) {
    words.push_back("... (" + std::to_string(items - 1) + " more items)");
  }
  return words;
}

}  // namespace tally
