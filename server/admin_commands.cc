#include "server/admin_commands.h"

#include <cctype>
#include <charconv>
#include <utility>

namespace tally {

std::string AdminUpper(std::string_view word) {
  std::string out(word);
  for (char& c : out) {
    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  return out;
}

Result<int64_t> AdminIntArg(std::string_view arg, std::string_view what) {
  int64_t value = 0;
  const char* end = arg.data() + arg.size();
  auto [ptr, ec] = std::from_chars(arg.data(), end, value);
  if (arg.empty() || ec != std::errc() || ptr != end) {
    return Status::InvalidArgument(std::string(what) +
                                   " must be an integer, not '" +
                                   std::string(arg) + "'");
  }
  return value;
}

AdminCommands::AdminCommands() {
  Register(
      {.name = "COMMAND",
       .arity = -2,
       .syntax = "COMMAND COUNT | LIST | DOCS [command ...]",
       .summary = "Lists the admin commands this server knows, with "
                  "their syntax.",
       .handler = [this](const AdminCall& call) { return Command(call); }});
}

void AdminCommands::Register(AdminCommandSpec spec) {
  spec.name = AdminUpper(spec.name);
  std::string name = spec.name;
  commands_.emplace(std::move(name), std::move(spec));
}

proto::Response AdminCommands::Run(const proto::AdminRequest& request,
                                   uint64_t connection_id) const {
  if (request.args.empty()) {
    return proto::Response::Error(Status::InvalidArgument(
        "an admin request needs a command name (try COMMAND LIST)"));
  }
  const std::string name = AdminUpper(request.args[0]);
  auto it = commands_.find(name);
  if (it == commands_.end()) {
    return proto::Response::Error(Status::InvalidArgument(
        "unknown command '" + request.args[0] + "' (try COMMAND LIST)"));
  }
  const AdminCommandSpec& spec = it->second;
  const auto n = static_cast<int>(request.args.size());
  if ((spec.arity >= 0 && n != spec.arity) ||
      (spec.arity < 0 && n < -spec.arity)) {
    return proto::Response::Error(
        Status::InvalidArgument("wrong number of arguments for '" + name +
                                "'; syntax: " + spec.syntax));
  }
  Result<proto::AdminReply> reply = spec.handler(
      AdminCall{.args = request.args, .connection_id = connection_id});
  if (!reply.ok()) return proto::Response::Error(reply.status());
  proto::Response response;
  response.body = proto::AdminResult{.reply = std::move(reply.value())};
  return response;
}

Result<proto::AdminReply> AdminCommands::Command(const AdminCall& call) const {
  using proto::AdminReply;
  const std::string sub = AdminUpper(call.args[1]);
  if (sub == "COUNT" && call.args.size() == 2) {
    return AdminReply::Integer(static_cast<int64_t>(commands_.size()));
  }
  if (sub == "LIST" && call.args.size() == 2) {
    AdminReply list = AdminReply::Array();
    for (const auto& [name, spec] : commands_) {
      list.elements.push_back(AdminReply::Text(name));
    }
    return list;
  }
  if (sub == "DOCS") {
    // Redis' COMMAND DOCS shape: name, then a map of its documentation.
    AdminReply docs = AdminReply::Map();
    auto add = [&docs](const AdminCommandSpec& spec) {
      docs.Put(spec.name, AdminReply::Map()
                              .Put("summary", AdminReply::Text(spec.summary))
                              .Put("syntax", AdminReply::Text(spec.syntax))
                              .Put("arity", AdminReply::Integer(spec.arity)));
    };
    if (call.args.size() == 2) {
      for (const auto& [name, spec] : commands_) add(spec);
    }
    for (size_t i = 2; i < call.args.size(); ++i) {
      auto it = commands_.find(AdminUpper(call.args[i]));
      if (it != commands_.end()) add(it->second);
    }
    return docs;
  }
  return Status::InvalidArgument(
      "unknown COMMAND subcommand '" + call.args[1] +
      "'; syntax: " + commands_.at("COMMAND").syntax);
}

}  // namespace tally
