// Connection's part in CLIENT, SLOWLOG and MONITOR (server/introspection.h):
// kept apart from connection.cc, which is about framing, ordering and
// limits. Everything here runs on the connection's strand except Kill and
// the monitor sink's wake, which post to it.

#include <chrono>

#include "protocol/codec.h"
#include "server/connection.h"

namespace tally {

namespace asio = boost::asio;

namespace {

std::string EndpointText(const asio::ip::tcp::endpoint& endpoint) {
  return FormatClientAddr(endpoint.address().to_string(), endpoint.port());
}

int64_t UnixMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

bool IsMutation(proto::Op op) {
  return op == proto::Op::kAdd || op == proto::Op::kAddAndQuery ||
         op == proto::Op::kDelete;
}

}  // namespace

void Connection::RegisterClient() {
  if (!options_.introspection || client_) return;
  std::string addr;
  std::string laddr;
  boost::system::error_code ec;
  if (const Stream::UnixSocket* unix_peer = socket_.unix_socket()) {
    // "unix:PATH" for both, like Redis' "PATH:0": the peer of a Unix
    // socket is unnamed, so it is known by the listening path.
    const std::string path = unix_peer->local_endpoint(ec).path();
    laddr = ec ? std::string("unix:?") : "unix:" + path;
    addr = laddr;
  } else {
    const asio::ip::tcp::endpoint peer = socket_.remote_endpoint(ec);
    addr = ec ? std::string("?:0") : EndpointText(peer);
    const asio::ip::tcp::endpoint local =
        socket_.tcp_socket()->local_endpoint(ec);
    laddr = ec ? std::string("?:0") : EndpointText(local);
  }
  client_ = options_.introspection->clients().Add(
      std::move(addr), std::move(laddr),
      [weak = weak_from_this()](bool after_reply) {
        if (auto self = weak.lock()) self->Kill(after_reply);
      });
}

void Connection::UnregisterClient() {
  if (!client_) return;
  if (monitor_) {
    options_.introspection->monitors().Remove(monitor_.get());
  }
  options_.introspection->clients().Remove(client_->id());
}

void Connection::NoteUser() {
  if (client_ && options_.auth && &session_.token_id() != noted_user_) {
    noted_user_ = &session_.token_id();
    client_->set_user(*noted_user_);
  }
}

bool Connection::AnsweredByIntrospection(uint64_t seq, uint64_t request_id,
                                         const proto::Request& request,
                                         BootClock::time_point received) {
  const proto::Op op = request.op();
  client_->NoteRequest(op, received);
  NoteUser();
  const auto* admin = std::get_if<proto::AdminRequest>(&request.body);
  if (admin != nullptr && !admin->args.empty()) {
    client_->NoteAdminCommand(admin->args[0]);
  }
  if (monitor_) {
    // Like Redis, a monitor connection carries only the stream.
    Complete(seq, request_id,
             proto::Response::Error(Status::InvalidArgument(
                 "this connection is a MONITOR stream; send requests on "
                 "another connection")));
    return true;
  }
  if (admin != nullptr && !admin->args.empty() &&
      AdminUpper(admin->args[0]) == "MONITOR") {
    Result<MonitorFilter> filter = MonitorFilter::Parse(
        std::span<const std::string>(admin->args).subspan(1));
    if (!filter.ok()) {
      Complete(seq, request_id, proto::Response::Error(filter.status()));
      return true;
    }
    proto::Response ok;
    ok.body = proto::AdminResult{.reply = proto::AdminReply::StatusWord("OK")};
    Complete(seq, request_id, ok);
    monitor_request_id_ = request_id;
    client_->set_monitor();
    std::weak_ptr<Connection> weak = weak_from_this();
    monitor_ = std::make_shared<MonitorSink>(
        client_->id(), std::move(*filter), options_.max_output_bytes,
        [info = client_] { return info->output_bytes(); },
        [weak] {
          if (auto self = weak.lock()) {
            asio::post(self->socket_.get_executor(),
                       [self] { self->DrainMonitor(); });
          }
        });
    options_.introspection->monitors().Add(monitor_);
    return true;
  }
  MonitorHub& monitors = options_.introspection->monitors();
  if (monitors.active()) {
    monitors.Feed(client_->id(), client_->addr(), CommandSummary::Of(request),
                  UnixMicros());
  }
  return false;
}

std::optional<CommandSummary> Connection::SlowProbe(
    const proto::Request& request) const {
  // Only a request answered later needs its summary kept; the others are
  // timed while the request is still at hand.
  if (!client_ || options_.introspection->slow_log().log_slower_than_us() < 0 ||
      (deferred_ == 0 && !IsMutation(request.op()))) {
    return std::nullopt;
  }
  return CommandSummary::Of(request);
}

void Connection::LogIfSlow(BootClock::time_point received,
                           const proto::Request& request) {
  if (!client_) return;
  SlowLog& log = options_.introspection->slow_log();
  const int64_t us = std::chrono::duration_cast<std::chrono::microseconds>(
                         BootClock::now() - received)
                         .count();
  if (!log.IsSlow(us)) return;
  log.Add(CommandSummary::Of(request).Words(), us, client_->addr(),
          client_->name(), UnixMicros() / 1'000'000);
}

void Connection::LogIfSlow(BootClock::time_point received,
                           const CommandSummary& command) {
  if (!client_) return;
  SlowLog& log = options_.introspection->slow_log();
  const int64_t us = std::chrono::duration_cast<std::chrono::microseconds>(
                         BootClock::now() - received)
                         .count();
  if (!log.IsSlow(us)) return;
  log.Add(command.Words(), us, client_->addr(), client_->name(),
          UnixMicros() / 1'000'000);
}

void Connection::AfterDeferredReply(BootClock::time_point received,
                                    const std::optional<CommandSummary>& slow) {
  if (slow) LogIfSlow(received, *slow);
  if (monitor_ && slots_.empty()) DrainMonitor();
}

void Connection::PublishLoad() {
  if (client_)
    client_->SetLoad(slots_.size(), pending_.size() + writing_.size());
}

void Connection::Kill(bool after_reply) {
  asio::post(socket_.get_executor(), [self = shared_from_this(), after_reply] {
    if (self->closed_) return;
    if (!after_reply) {
      self->Close();  // replies not yet written are dropped with the socket
      return;
    }
    self->closing_ = true;
    if (self->Idle()) {
      self->Close();
    } else {
      self->MaybeWrite();  // closes once the replies owed are written
    }
  });
}

void Connection::DrainMonitor() {
  // Events follow every reply owed before them (replies stay in request
  // order); a later reply's completion drains them (AfterDeferredReply).
  if (closed_ || !monitor_ || !slots_.empty()) return;
  const std::vector<std::string> lines =
      monitor_->Take(MonitorHub::Timestamp(UnixMicros()));
  for (const std::string& line : lines) {
    proto::Response event;
    event.body = proto::AdminResult{.reply = proto::AdminReply::Text(line)};
    AppendFrame(&pending_, FrameKind::kResponse, monitor_request_id_,
                EncodeResponse(event));
  }
  MaybeWrite();
}

}  // namespace tally
