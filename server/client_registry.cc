#include "server/client_registry.h"

#include <utility>
#include <vector>

namespace tally {

ClientInfo::ClientInfo(uint64_t id, std::string addr, std::string laddr,
                       BootTime created)
    : id_(id),
      addr_(std::move(addr)),
      laddr_(std::move(laddr)),
      created_ns_(Ns(created)),
      last_command_ns_(Ns(created)) {}

void ClientInfo::NoteAdminCommand(std::string_view name) {
  std::string lower(name.substr(0, 32));
  for (char& c : lower) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c <= ' ' || c > '~') c = '?';  // keeps the line parseable
  }
  std::lock_guard<std::mutex> lock(mu_);
  admin_cmd_ = std::move(lower);
}

Status ClientInfo::SetName(std::string_view name) {
  if (name.size() > kMaxNameBytes) {
    return Status::InvalidArgument("client name longer than " +
                                   std::to_string(kMaxNameBytes) + " bytes");
  }
  for (const char c : name) {
    // Redis' rule: CLIENT LIST stays one space-separated line per client.
    if (c <= ' ' || c > '~') {
      return Status::InvalidArgument(
          "client names cannot contain spaces, newlines or special "
          "characters");
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  name_ = std::string(name);
  return Status::Ok();
}

std::string ClientInfo::name() const {
  std::lock_guard<std::mutex> lock(mu_);
  return name_;
}

void ClientInfo::set_user(std::string user) {
  std::lock_guard<std::mutex> lock(mu_);
  user_ = std::move(user);
}

std::string ClientInfo::user() const {
  std::lock_guard<std::mutex> lock(mu_);
  return user_;
}

std::string ClientInfo::Line(BootTime now) const {
  const int64_t now_ns = Ns(now);
  const auto seconds = [now_ns](int64_t since_ns) {
    return std::to_string(std::max<int64_t>(0, now_ns - since_ns) /
                          1'000'000'000);
  };
  const auto op =
      static_cast<proto::Op>(last_op_.load(std::memory_order_relaxed));
  std::string name, user, cmd;
  {
    std::lock_guard<std::mutex> lock(mu_);
    name = name_;
    user = user_;
    cmd = op == proto::Op::kAdmin && !admin_cmd_.empty()
              ? admin_cmd_
              : std::string(proto::OpName(op));
  }
  return "id=" + std::to_string(id_) + " addr=" + addr_ + " laddr=" + laddr_ +
         " name=" + name + " age=" + seconds(created_ns_) +
         " idle=" + seconds(last_command_ns_.load(std::memory_order_relaxed)) +
         " flags=" + (monitor() ? "O" : "N") + " cmd=" + cmd + " inflight=" +
         std::to_string(in_flight_.load(std::memory_order_relaxed)) +
         " obuf=" + std::to_string(output_bytes()) + " user=" + user;
}

std::shared_ptr<ClientInfo> ClientRegistry::Add(std::string addr,
                                                std::string laddr, KillFn kill,
                                                BootTime now) {
  const uint64_t id = next_id_.fetch_add(1, std::memory_order_relaxed);
  auto info =
      std::make_shared<ClientInfo>(id, std::move(addr), std::move(laddr), now);
  std::lock_guard<std::mutex> lock(mu_);
  clients_.emplace(id, Entry{info, std::move(kill)});
  return info;
}

void ClientRegistry::Remove(uint64_t id) {
  std::lock_guard<std::mutex> lock(mu_);
  clients_.erase(id);
}

std::shared_ptr<ClientInfo> ClientRegistry::Find(uint64_t id) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = clients_.find(id);
  return it == clients_.end() ? nullptr : it->second.info;
}

size_t ClientRegistry::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return clients_.size();
}

std::string ClientRegistry::List(BootTime now) const {
  std::vector<std::shared_ptr<ClientInfo>> infos;
  {
    std::lock_guard<std::mutex> lock(mu_);
    infos.reserve(clients_.size());
    for (const auto& [id, entry] : clients_) infos.push_back(entry.info);
  }
  std::string out;
  for (const auto& info : infos) out += info->Line(now) + "\n";
  return out;
}

size_t ClientRegistry::KillId(uint64_t id, uint64_t caller) {
  return KillMatching([id](const ClientInfo& c) { return c.id() == id; },
                      caller);
}

size_t ClientRegistry::KillAddr(std::string_view addr, uint64_t caller) {
  return KillMatching([addr](const ClientInfo& c) { return c.addr() == addr; },
                      caller);
}

size_t ClientRegistry::KillMatching(
    const std::function<bool(const ClientInfo&)>& match, uint64_t caller) {
  std::vector<std::pair<uint64_t, KillFn>> victims;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [id, entry] : clients_) {
      if (match(*entry.info)) victims.emplace_back(id, entry.kill);
    }
  }
  for (auto& [id, kill] : victims) {
    if (kill) kill(/*after_reply=*/id == caller);
  }
  return victims.size();
}

std::string FormatClientAddr(std::string_view ip, uint16_t port) {
  const bool v6 = ip.find(':') != std::string_view::npos;
  return (v6 ? "[" + std::string(ip) + "]" : std::string(ip)) + ":" +
         std::to_string(port);
}

}  // namespace tally
