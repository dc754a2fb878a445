#include "server/metrics_server.h"

#include <glog/logging.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace tally {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::ip::tcp;

namespace {

http::response<http::string_body> Answer(
    const http::request<http::empty_body>& request,
    const MetricsServer::Render& render) {
  http::response<http::string_body> response;
  response.version(request.version());
  response.keep_alive(request.keep_alive());
  response.set(http::field::server, "tallyd");
  std::string_view target = request.target();
  target = target.substr(0, target.find('?'));  // ?name[]=... is ignored
  if (request.method() != http::verb::get) {
    response.result(http::status::method_not_allowed);
    response.set(http::field::allow, "GET");
    response.set(http::field::content_type, "text/plain; charset=utf-8");
    response.body() = "only GET\n";
  } else if (target == "/metrics") {
    response.result(http::status::ok);
    response.set(http::field::content_type,
                 "text/plain; version=0.0.4; charset=utf-8");
    response.body() = render();
  } else if (target == "/healthz") {
    response.result(http::status::ok);
    response.set(http::field::content_type, "text/plain; charset=utf-8");
    response.body() = "ok\n";
  } else {
    response.result(http::status::not_found);
    response.set(http::field::content_type, "text/plain; charset=utf-8");
    response.body() = "not found; try /metrics or /healthz\n";
  }
  response.prepare_payload();
  return response;
}

asio::awaitable<void> Serve(tcp::socket socket, MetricsServerOptions options,
                            const MetricsServer::Render* render,
                            int* connections) {
  beast::tcp_stream stream(std::move(socket));
  // The buffer's max size bounds what a client can make us hold.
  beast::flat_buffer buffer(options.max_request_bytes);
  boost::system::error_code ec;
  for (;;) {
    http::request_parser<http::empty_body> parser;
    parser.header_limit(static_cast<uint32_t>(options.max_request_bytes));
    stream.expires_after(options.timeout);
    co_await http::async_read(stream, buffer, parser,
                              asio::redirect_error(asio::use_awaitable, ec));
    if (ec) break;  // closed, timed out, too large, or a body: drop it
    http::response<http::string_body> response = Answer(parser.get(), *render);
    stream.expires_after(options.timeout);
    co_await http::async_write(stream, response,
                               asio::redirect_error(asio::use_awaitable, ec));
    if (ec || !response.keep_alive()) break;
  }
  stream.socket().shutdown(tcp::socket::shutdown_send, ec);
  --*connections;
}

}  // namespace

MetricsServer::MetricsServer(MetricsServerOptions options, Render render)
    : options_(std::move(options)),
      render_(std::move(render)),
      acceptor_(io_),
      retry_timer_(io_) {}

MetricsServer::~MetricsServer() { Stop(); }

Status MetricsServer::Start() {
  boost::system::error_code ec;
  const asio::ip::address address = asio::ip::make_address(options_.bind, ec);
  if (ec) {
    return Status::InvalidArgument("--metrics_bind: bad address '" +
                                   options_.bind + "'");
  }
  const tcp::endpoint endpoint(address, options_.port);
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return Status(Code::kUnavailable,
                  "metrics endpoint: cannot listen on " + options_.bind + ":" +
                      std::to_string(options_.port) + ": " + ec.message());
  }
  port_ = acceptor_.local_endpoint().port();
  Accept();
  thread_ = std::thread([this] { io_.run(); });
  return Status::Ok();
}

void MetricsServer::Accept() {
  acceptor_.async_accept([this](const boost::system::error_code& ec,
                                tcp::socket socket) {
    if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
    if (!ec) {
      if (connections_ >= options_.max_connections) {
        boost::system::error_code ignored;
        socket.close(ignored);  // a scraper storm: keep the thread free
      } else {
        ++connections_;
        asio::co_spawn(
            io_, Serve(std::move(socket), options_, &render_, &connections_),
            asio::detached);
      }
    } else {
      // EMFILE and the like: retry after a pause, not in a tight loop.
      LOG_EVERY_N(WARNING, 100)
          << "metrics endpoint: accept failed: " << ec.message();
      retry_timer_.expires_after(std::chrono::milliseconds(100));
      retry_timer_.async_wait([this](const boost::system::error_code& e) {
        if (!e) Accept();
      });
      return;
    }
    Accept();
  });
}

void MetricsServer::Stop() {
  if (!thread_.joinable()) return;
  asio::post(io_, [this] {
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    retry_timer_.cancel();
  });
  io_.stop();
  thread_.join();
}

}  // namespace tally
