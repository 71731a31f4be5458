#include "http_server.h"

#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <optional>
#include <stdexcept>
#include <utility>

namespace poolwatch::daemon {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

constexpr auto kWriteTimeout = std::chrono::seconds(10);

struct Shared {
  Shared(const HttpHandler& h, HttpOptions l) : handler(h), limits(std::move(l)) {}
  const HttpHandler& handler;
  HttpOptions limits;
  std::atomic<std::size_t> connections{0};
};

http::response<http::string_body> ToBeast(HttpResponse response, unsigned version, bool keep_alive,
                                          bool head) {
  http::response<http::string_body> res{static_cast<http::status>(response.status), version};
  res.set(http::field::server, "poolwatchd");
  res.set(http::field::content_type, response.content_type);
  for (auto& [name, value] : response.headers) res.set(name, value);
  res.keep_alive(keep_alive);
  const std::size_t length = response.body.size();
  if (!head) res.body() = std::move(response.body);
  res.prepare_payload();
  if (head) res.content_length(length);
  return res;
}

// One connection: read a request, answer it, repeat while kept alive. Modelled on Beast's
// example/http/server/async, with limits on size, time and the number of connections.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket&& socket, std::shared_ptr<Shared> shared)
      : stream_(std::move(socket)), shared_(std::move(shared)) {}

  ~Session() { --shared_->connections; }

  void Run() {
    asio::dispatch(stream_.get_executor(),
                   beast::bind_front_handler(&Session::Read, shared_from_this()));
  }

  // Over the connection limit: a short 503, then close.
  void Refuse() {
    Write(ToBeast({503, "text/plain; charset=utf-8", "too many connections\n", {}}, 11, false,
                  false));
  }

 private:
  void Read() {
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(shared_->limits.max_request_bytes));
    parser_->body_limit(shared_->limits.max_request_bytes);
    stream_.expires_after(first_ ? shared_->limits.header_timeout : shared_->limits.idle_timeout);
    first_ = false;
    http::async_read(stream_, buffer_, *parser_,
                     beast::bind_front_handler(&Session::OnRead, shared_from_this()));
  }

  void OnRead(beast::error_code ec, std::size_t /*bytes*/) {
    if (ec == http::error::end_of_stream || ec == beast::error::timeout ||
        ec == asio::error::operation_aborted || ec == asio::error::connection_reset ||
        ec == asio::error::eof) {
      return Close();
    }
    if (ec == http::error::header_limit) {
      return Write(Error(431, "request header too large\n"));
    }
    if (ec == http::error::body_limit || ec == http::error::buffer_overflow) {
      return Write(Error(413, "request too large\n"));
    }
    if (ec) return Write(Error(400, "bad request: " + ec.message() + "\n"));

    const auto& req = parser_->get();
    HttpRequest request{std::string(req.method_string()), std::string(req.target()),
                        std::string(req[http::field::accept_encoding])};
    const bool head = req.method() == http::verb::head;
    Write(ToBeast(shared_->handler.Handle(request), req.version(), req.keep_alive(), head));
  }

  http::response<http::string_body> Error(unsigned status, std::string body) const {
    return ToBeast({status, "text/plain; charset=utf-8", std::move(body), {}}, 11, false, false);
  }

  void Write(http::response<http::string_body>&& response) {
    response_ = std::move(response);
    stream_.expires_after(kWriteTimeout);
    http::async_write(stream_, response_,
                      beast::bind_front_handler(&Session::OnWrite, shared_from_this()));
  }

  void OnWrite(beast::error_code ec, std::size_t /*bytes*/) {
    if (ec || !response_.keep_alive()) return Close();
    Read();
  }

  void Close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.close();
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  http::response<http::string_body> response_;
  std::shared_ptr<Shared> shared_;
  bool first_ = true;
};

std::string Format(const tcp::endpoint& endpoint) {
  const auto address = endpoint.address();
  return (address.is_v6() ? "[" + address.to_string() + "]" : address.to_string()) + ":" +
         std::to_string(endpoint.port());
}

}  // namespace

std::string ProbeHealth(const ListenAddress& address, std::chrono::milliseconds timeout) {
  asio::io_context io;
  beast::tcp_stream stream(io);
  beast::error_code ec;
  const std::string host = address.host.empty() ? "127.0.0.1" : address.host;
  const auto endpoints = tcp::resolver(io).resolve(host, std::to_string(address.port),
                                                   tcp::resolver::numeric_service, ec);
  if (ec) return "cannot resolve " + host + ": " + ec.message();
  http::request<http::empty_body> request{http::verb::get, "/healthz", 11};
  request.set(http::field::host, host);
  request.set(http::field::connection, "close");
  beast::flat_buffer buffer;
  http::response<http::string_body> response;
  // Asynchronous calls, so that the stream's deadline bounds every step.
  stream.expires_after(timeout);
  stream.async_connect(endpoints, [&](beast::error_code e, const tcp::endpoint&) {
    if ((ec = e)) return;
    http::async_write(stream, request, [&](beast::error_code e2, std::size_t) {
      if ((ec = e2)) return;
      http::async_read(stream, buffer, response,
                       [&](beast::error_code e3, std::size_t) { ec = e3; });
    });
  });
  io.run();
  if (ec)
    return "GET /healthz on " + host + ":" + std::to_string(address.port) + ": " + ec.message();
  if (response.result() != http::status::ok) {
    return "/healthz answered " + std::to_string(response.result_int()) + ": " + response.body();
  }
  return "";
}

struct HttpServer::Impl : std::enable_shared_from_this<HttpServer::Impl> {
  Impl(asio::io_context& io, std::shared_ptr<Shared> s)
      : io_context(io), acceptor(asio::make_strand(io)), shared(std::move(s)) {}

  void Accept() {
    acceptor.async_accept(asio::make_strand(io_context),
                          beast::bind_front_handler(&Impl::OnAccept, shared_from_this()));
  }

  void OnAccept(beast::error_code ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted || !acceptor.is_open()) return;
    if (!ec) {
      const std::size_t open = ++shared->connections;
      auto session = std::make_shared<Session>(std::move(socket), shared);
      if (open > shared->limits.max_connections) {
        session->Refuse();
      } else {
        session->Run();
      }
    }
    // Errors such as EMFILE are not fatal: keep accepting.
    Accept();
  }

  asio::io_context& io_context;
  tcp::acceptor acceptor;
  std::shared_ptr<Shared> shared;
};

HttpServer::HttpServer(asio::io_context& io, const ListenAddress& address,
                       const HttpOptions& limits, const HttpHandler& handler)
    : impl_(std::make_shared<Impl>(io, std::make_shared<Shared>(handler, limits))) {
  const std::string wanted =
      (address.host.empty() ? "" : address.host) + ":" + std::to_string(address.port);
  beast::error_code ec;
  tcp::endpoint endpoint;
  if (address.host.empty()) {
    // All interfaces: dual-stack IPv6 where the host has it, as exporters do; else IPv4.
    endpoint = tcp::endpoint(tcp::v6(), address.port);
    impl_->acceptor.open(endpoint.protocol(), ec);
    if (!ec) impl_->acceptor.set_option(asio::ip::v6_only(false), ec);
    if (ec) {
      ec.clear();
      if (impl_->acceptor.is_open()) impl_->acceptor.close(ec);
      endpoint = tcp::endpoint(tcp::v4(), address.port);
      impl_->acceptor.open(endpoint.protocol(), ec);
    }
  } else {
    tcp::resolver resolver(io);
    const auto results =
        resolver.resolve(address.host, std::to_string(address.port),
                         tcp::resolver::passive | tcp::resolver::numeric_service, ec);
    if (ec || results.empty()) {
      throw std::runtime_error("cannot listen on " + wanted +
                               ": cannot resolve host: " + ec.message());
    }
    endpoint = results.begin()->endpoint();
    impl_->acceptor.open(endpoint.protocol(), ec);
  }
  if (!ec) impl_->acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) impl_->acceptor.bind(endpoint, ec);
  if (!ec) impl_->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) throw std::runtime_error("cannot listen on " + wanted + ": " + ec.message());
}

HttpServer::~HttpServer() { Stop(); }

void HttpServer::Start() { impl_->Accept(); }

void HttpServer::Stop() {
  beast::error_code ignored;
  if (impl_->acceptor.is_open()) impl_->acceptor.close(ignored);
}

std::uint16_t HttpServer::port() const {
  beast::error_code ec;
  return impl_->acceptor.local_endpoint(ec).port();
}

std::string HttpServer::local_address() const {
  beast::error_code ec;
  return Format(impl_->acceptor.local_endpoint(ec));
}

}  // namespace poolwatch::daemon
