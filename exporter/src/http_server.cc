#include "http_server.h"

#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <chrono>
#include <concepts>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "endpoints.h"
#include "web_config.h"

namespace poolwatch::exporter {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

constexpr auto kWriteTimeout = std::chrono::seconds(10);
constexpr auto kTlsShutdownTimeout = std::chrono::seconds(2);
// A lingering close reads and discards for at most this long and this much.
constexpr auto kLingerTime = std::chrono::seconds(2);
constexpr std::size_t kLingerBytes = 8 << 20;
constexpr std::size_t kLingerChunk = 16 << 10;

// A response body that is an immutable shared string: written from where it is, never copied.
struct SharedBody {
  using value_type = std::shared_ptr<const std::string>;

  static std::uint64_t size(const value_type& body) { return body ? body->size() : 0; }

  class writer {
   public:
    using const_buffers_type = asio::const_buffer;

    template <bool kIsRequest, typename Fields>
    writer(const http::header<kIsRequest, Fields>& /*header*/, const value_type& body)
        : body_(body) {}

    void init(beast::error_code& ec) { ec = {}; }

    boost::optional<std::pair<const_buffers_type, bool>> get(beast::error_code& ec) {
      ec = {};
      if (!body_ || body_->empty()) return boost::none;
      return {{const_buffers_type(body_->data(), body_->size()), false}};
    }

   private:
    const value_type& body_;
  };
};

using Response = http::response<SharedBody>;

// What connections are served with: the web config and, with TLS, an Asio context over its
// OpenSSL context.
struct Security {
  explicit Security(std::shared_ptr<const WebSecurity> w) : web(std::move(w)) {
    if (web && web->tls_context() != nullptr) {
      SSL_CTX_up_ref(web->tls_context());  // the Asio context owns one reference
      tls.emplace(web->tls_context());
    }
  }
  std::shared_ptr<const WebSecurity> web;  // null: plain HTTP, no auth
  // Mutable: Asio wants a non-const context to make streams from; that does not change it.
  mutable std::optional<asio::ssl::context> tls;
};

// An open connection, as the drain sees it.
class Connection {
 public:
  virtual ~Connection() = default;
  virtual void Drain() = 0;  // close when idle; finish the response under way first
  virtual void Abort() = 0;  // close now
};

struct ServerState {
  ServerState(const HttpHandler& h, HttpMetrics& m, HttpOptions l,
              std::shared_ptr<const WebSecurity> web, std::string server_name,
              asio::thread_pool::executor_type bcrypt_executor,
              asio::thread_pool::executor_type exposition_executor,
              asio::thread_pool::executor_type page_executor)
      : handler(h),
        metrics(m),
        limits(std::move(l)),
        name(std::move(server_name)),
        hasher(std::move(bcrypt_executor)),
        expositions(std::move(exposition_executor)),
        pages(std::move(page_executor)),
        security(std::make_shared<Security>(std::move(web))) {
    Limit(security->web.get());
  }

  // The rate limit of `web` (none without a web config), keeping the bucket if it is the same.
  void Limit(const WebSecurity* web) {
    limiter.Configure(web ? web->config().rate_limit : std::nullopt);
  }

  std::shared_ptr<const Security> CurrentSecurity() const {
    std::scoped_lock lock(mutex);
    return security;
  }

  void Track(const std::shared_ptr<Connection>& connection) {
    std::scoped_lock lock(mutex);
    std::erase_if(open, [](const std::weak_ptr<Connection>& c) { return c.expired(); });
    open.push_back(connection);
  }

  // Every connection still open, to drain or abort.
  std::vector<std::shared_ptr<Connection>> Open() const {
    std::scoped_lock lock(mutex);
    std::vector<std::shared_ptr<Connection>> alive;
    for (const auto& weak : open) {
      if (auto connection = weak.lock()) alive.push_back(std::move(connection));
    }
    return alive;
  }

  const HttpHandler& handler;
  HttpMetrics& metrics;  // every response written, every handshake that failed
  HttpOptions limits;
  const std::string name;
  asio::thread_pool::executor_type hasher;  // runs bcrypt, off the I/O thread
  // Apart, so that a flood of /debug never queues a scrape behind it.
  asio::thread_pool::executor_type expositions;  // collects, serializes and gzips
  asio::thread_pool::executor_type pages;        // renders /debug and /debug/health
  std::atomic<std::size_t> connections{0};
  std::atomic<bool> draining{false};
  mutable std::mutex mutex;
  std::shared_ptr<const Security> security;
  std::vector<std::weak_ptr<Connection>> open;
  RateLimiter limiter;  // rate_limit of the latest web config, over every connection
};

// One open connection in ServerState::connections, for as long as this lives.
class ConnectionSlot {
 public:
  explicit ConnectionSlot(std::shared_ptr<ServerState> shared) : shared_(std::move(shared)) {}
  ConnectionSlot(ConnectionSlot&&) = default;
  ConnectionSlot& operator=(ConnectionSlot&&) = delete;
  ConnectionSlot(const ConnectionSlot&) = delete;
  ConnectionSlot& operator=(const ConnectionSlot&) = delete;
  ~ConnectionSlot() {
    if (shared_) --shared_->connections;
  }
  ServerState& state() const { return *shared_; }

 private:
  std::shared_ptr<ServerState> shared_;
};

Response ToBeast(HttpResponse response, unsigned version, bool keep_alive, bool head,
                 const std::string& server) {
  Response res{static_cast<http::status>(response.status), version};
  res.set(http::field::server, server);
  res.set(http::field::content_type, response.content_type);
  for (auto& [name, value] : response.headers) res.set(name, value);
  res.keep_alive(keep_alive);
  const std::size_t length = response.text().size();
  if (!head) res.body() = std::move(response.body);
  res.prepare_payload();
  if (head) res.content_length(length);
  return res;
}

// The request target as a path and query (origin form). A server must accept the absolute form
// as well (RFC 9112, 3.2.2), which clients send to proxies: "http://host:9720/metrics?x" is
// "/metrics?x", so that authorization and routing see the same path either way.
std::string OriginForm(std::string_view target) {
  for (const std::string_view scheme :
       {std::string_view("http://"), std::string_view("https://")}) {
    if (target.size() < scheme.size() || !beast::iequals(target.substr(0, scheme.size()), scheme)) {
      continue;
    }
    const std::size_t path = target.find_first_of("/?", scheme.size());
    if (path == std::string_view::npos) return "/";
    std::string origin(target[path] == '?' ? "/" : "");
    return origin.append(target.substr(path));
  }
  return std::string(target);
}

HttpResponse Refusal(unsigned status, std::string text) {
  return {status,
          "text/plain; charset=utf-8",
          std::make_shared<const std::string>(std::move(text)),
          {}};
}

// Beast's wrapper, not asio::ssl::stream itself: Asio encrypts a buffer sequence (a response's
// header and body) 8 KiB at a time, so a 10 KiB exposition went out as two TLS records in two
// sends. ssl_stream joins a write of up to 16 KiB into one record first (flat_stream).
using TlsStream = beast::ssl_stream<beast::tcp_stream>;

// One connection: read a request, answer it, repeat while kept alive. Modelled on Beast's
// example/http/server/async (and advanced_server_flex for TLS), with limits on size, time and
// the number of connections. Stream: beast::tcp_stream or TlsStream.
template <typename Stream>
class Session : public Connection, public std::enable_shared_from_this<Session<Stream>> {
 public:
  // Plain HTTP.
  Session(beast::tcp_stream&& stream,
          ConnectionSlot slot) requires std::same_as<Stream, beast::tcp_stream>
      : stream_(std::move(stream)), slot_(std::move(slot)) {}

  // TLS, with the bytes read while detecting it in `buffer`.
  Session(beast::tcp_stream&& stream, asio::ssl::context& context, beast::flat_buffer&& buffer,
          std::shared_ptr<const Security> security,
          ConnectionSlot slot) requires std::same_as<Stream, TlsStream>
      : security_(std::move(security)),
        stream_(std::move(stream), context),
        buffer_(std::move(buffer)),
        slot_(std::move(slot)) {}

  void Run() {
    State().Track(Self());
    if constexpr (std::same_as<Stream, TlsStream>) {
      // The handshake gets the time a request would.
      Lowest().expires_after(Limits().header_timeout);
      stream_.async_handshake(asio::ssl::stream_base::server, buffer_.data(),
                              beast::bind_front_handler(&Session::OnHandshake, Self()));
    } else {
      asio::dispatch(stream_.get_executor(), beast::bind_front_handler(&Session::Read, Self()));
    }
  }

  // Over the connection limit: a short 503, then close.
  void Refuse() {
    State().Track(Self());
    Write(Error(503, "too many connections\n"));
  }

  void Drain() override {
    asio::dispatch(stream_.get_executor(), [self = Self()] {
      // Waiting for a request (idle, or its header still coming): nothing begun to finish.
      if (self->awaiting_header_) self->Lowest().cancel();
    });
  }

  void Abort() override {
    asio::dispatch(stream_.get_executor(), [self = Self()] { self->Lowest().close(); });
  }

 private:
  std::shared_ptr<Session> Self() { return this->shared_from_this(); }
  beast::tcp_stream& Lowest() { return beast::get_lowest_layer(stream_); }
  ServerState& State() const { return slot_.state(); }
  const HttpOptions& Limits() const { return State().limits; }

  void OnHandshake(beast::error_code ec, std::size_t used) {
    if (ec) {  // not TLS after all, a bad certificate, a timeout
      State().metrics.CountFailedHandshake();
      return Lowest().close();
    }
    buffer_.consume(used);
    Read();
  }

  // The header first, then the body within what the header left of max_request_bytes.
  void Read() {
    if (State().draining) return Close();
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(Limits().max_request_bytes));
    parser_->body_limit(Limits().max_request_bytes);
    Lowest().expires_after(first_ ? Limits().header_timeout : Limits().idle_timeout);
    first_ = false;
    awaiting_header_ = true;
    target_.clear();  // until this request's is read: a refusal before then is "other"
    http::async_read_header(stream_, buffer_, *parser_,
                            beast::bind_front_handler(&Session::OnHeader, Self()));
  }

  void OnHeader(beast::error_code ec, std::size_t header_bytes) {
    awaiting_header_ = false;
    if (ec) return OnRead(ec, 0);
    // What RFC 9112 refuses in a header that parsed, before any body is read. A request names
    // its host once at most, and an HTTP/1.1 one always (3.2), as Go's servers require too.
    const auto& header = parser_->get();
    if (const std::size_t hosts = header.count(http::field::host); hosts > 1) {
      return Write(Error(400, "bad request: more than one Host header\n"));
    } else if (hosts == 0 && header.version() >= 11) {
      return Write(Error(400, "bad request: an HTTP/1.1 request needs a Host header\n"));
    }
    // A transfer coding not ending in chunked leaves the body's length unknown (Beast would
    // read none): 400 and a close (6.1), so that no proxy in front reads it otherwise.
    if (header.count(http::field::transfer_encoding) != 0 && !parser_->chunked()) {
      return Write(Error(400, "bad request: a Transfer-Encoding must end in chunked\n"));
    }
    const std::size_t left =
        Limits().max_request_bytes - std::min(header_bytes, Limits().max_request_bytes);
    const auto length = parser_->content_length();
    if (length && *length > left) return OnRead(http::error::body_limit, 0);
    if (parser_->is_done()) return OnRead(ec, 0);
    parser_->body_limit(left);
    http::async_read(stream_, buffer_, *parser_,
                     beast::bind_front_handler(&Session::OnRead, Self()));
  }

  void OnRead(beast::error_code ec, std::size_t /*bytes*/) {
    if (ec == http::error::end_of_stream || ec == beast::error::timeout ||
        ec == asio::error::operation_aborted || ec == asio::error::connection_reset ||
        ec == asio::error::eof || ec == asio::ssl::error::stream_truncated) {
      return Close();
    }
    if (ec == http::error::header_limit) return Write(Error(431, "request header too large\n"));
    if (ec == http::error::body_limit || ec == http::error::buffer_overflow) {
      return Write(Error(413, "request too large\n"));
    }
    if (ec) return Write(Error(400, "bad request: " + ec.message() + "\n"));

    const auto& req = parser_->get();
    target_ = OriginForm(req.target());
    // rate_limit, before the credentials as in the toolkit, so that a flood never reaches
    // bcrypt. The probes are let through, as they are without credentials: a scraper's burst
    // must not fail the container's health check.
    if (!IsUnauthenticated(target_)) {
      const auto wait = State().limiter.Take(std::chrono::steady_clock::now());
      if (wait > decltype(wait){}) return Respond(TooManyRequests(wait));
    }
    // The users of the latest config, also on a connection accepted before a reload.
    std::shared_ptr<const WebSecurity> web = State().CurrentSecurity()->web;
    const auto access =
        web ? web->Check(target_, req[http::field::authorization]) : WebSecurity::Access::kGranted;
    if (access == WebSecurity::Access::kVerify) {
      return Verify(std::move(web), std::string(req[http::field::authorization]));
    }
    Answer(access == WebSecurity::Access::kGranted);
  }

  // A (user, password) pair not seen yet: bcrypt on the hasher thread, then the answer back on
  // this connection's strand. Meanwhile this thread serves the other connections.
  void Verify(std::shared_ptr<const WebSecurity> web, std::string authorization) {
    asio::post(State().hasher,
               [self = Self(), executor = stream_.get_executor(), web = std::move(web),
                authorization = std::move(authorization)]() mutable {
                 const bool granted = web->Verify(authorization);
                 asio::post(executor, [self = std::move(self), granted] { self->Answer(granted); });
               });
  }

  // Answers the request just read: at once if the answer is ready, else from the exposition or
  // the page thread; 401 if not `granted`.
  void Answer(bool granted) {
    const auto& req = parser_->get();
    if (!granted) {
      return Respond(
          {401,
           "text/plain; charset=utf-8",
           std::make_shared<const std::string>("unauthorized\n"),
           {{"WWW-Authenticate", "Basic realm=\"" + State().name + "\", charset=\"UTF-8\""}}});
    }
    HttpRequest request{std::string(req.method_string()), target_,
                        std::string(req[http::field::accept_encoding]),
                        std::string(req[http::field::accept])};
    if (auto ready = State().handler.HandleQuickly(request)) return Respond(std::move(*ready));
    asio::post(HttpHandler::IsMetrics(request) ? State().expositions : State().pages,
               [self = Self(), work = asio::make_work_guard(stream_.get_executor()),
                request = std::move(request)] {
                 HttpResponse response = self->State().handler.Handle(request);
                 asio::post(work.get_executor(), [self, response = std::move(response)]() mutable {
                   self->Respond(std::move(response));
                 });
               });
  }

  // 429, with the whole seconds until the bucket has a token again.
  static HttpResponse TooManyRequests(std::chrono::steady_clock::duration wait) {
    const auto seconds = std::chrono::ceil<std::chrono::seconds>(wait).count();
    return {
        429,
        "text/plain; charset=utf-8",
        std::make_shared<const std::string>("too many requests: rate_limit of the web config\n"),
        {{"Retry-After", std::to_string(seconds)}}};
  }

  void Respond(HttpResponse response) {
    const auto& req = parser_->get();
    Write(ToBeast(std::move(response), req.version(), req.keep_alive() && !State().draining,
                  req.method() == http::verb::head, State().name));
  }

  // A refusal: the request was not read whole, so the connection closes after it, lingering.
  Response Error(unsigned status, std::string body) {
    refused_ = true;
    return ToBeast(Refusal(status, std::move(body)), 11, false, false, State().name);
  }

  void Write(Response&& response) {
    response_ = std::move(response);
    State().metrics.CountResponse(target_, response_.result_int());
    // The web config's own headers (http_server_config.headers), as of the latest reload.
    if (const std::shared_ptr<const Security> security = State().CurrentSecurity(); security->web) {
      for (const auto& [name, value] : security->web->config().headers) response_.set(name, value);
    }
    Lowest().expires_after(kWriteTimeout);
    http::async_write(stream_, response_, beast::bind_front_handler(&Session::OnWrite, Self()));
  }

  void OnWrite(beast::error_code ec, std::size_t /*bytes*/) {
    if (!ec && refused_) return Linger();
    if (ec || !response_.keep_alive()) return Close();
    response_ = {};  // the body's buffer is released as soon as it is written
    Read();
  }

  // Half-closes, then reads and discards until the client closes too, for at most kLingerTime
  // and kLingerBytes. Over TLS, the shutdown's own exchange takes its place.
  void Linger() {
    if constexpr (std::same_as<Stream, TlsStream>) {
      return Close();
    } else {
      beast::error_code ignored;
      stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
      Lowest().expires_after(kLingerTime);
      Discard(beast::error_code{}, 0);
    }
  }

  void Discard(beast::error_code ec, std::size_t bytes) {
    lingered_ += bytes;
    if (ec || lingered_ > kLingerBytes) return stream_.close();
    stream_.async_read_some(buffer_.prepare(kLingerChunk),
                            beast::bind_front_handler(&Session::Discard, Self()));
  }

  void Close() {
    if constexpr (std::same_as<Stream, TlsStream>) {
      Lowest().expires_after(kTlsShutdownTimeout);
      stream_.async_shutdown([self = Self()](beast::error_code) { self->Lowest().close(); });
    } else {
      beast::error_code ignored;
      stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
      stream_.close();
    }
  }

  std::shared_ptr<const Security> security_;  // keeps the TLS context alive; first in, last out
  Stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::string target_;  // the request's, in origin form
  Response response_;
  ConnectionSlot slot_;
  bool first_ = true;
  bool awaiting_header_ = false;
  bool refused_ = false;
  std::size_t lingered_ = 0;
};

// On a TLS server: looks at the first bytes. A TLS handshake goes to a TLS session; anything
// else gets the answer Go's servers (node_exporter) give, then the connection is closed.
class Detector : public Connection, public std::enable_shared_from_this<Detector> {
 public:
  Detector(tcp::socket&& socket, std::shared_ptr<const Security> security, ConnectionSlot slot)
      : stream_(std::move(socket)), security_(std::move(security)), slot_(std::move(slot)) {}

  void Run() {
    slot_.state().Track(shared_from_this());
    stream_.expires_after(slot_.state().limits.header_timeout);
    beast::async_detect_ssl(stream_, buffer_,
                            beast::bind_front_handler(&Detector::OnDetect, shared_from_this()));
  }

  // Nothing begun yet: both close now.
  void Drain() override { Abort(); }
  void Abort() override {
    asio::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->stream_.cancel(); });
  }

 private:
  void OnDetect(beast::error_code ec, bool tls) {
    if (ec || slot_.state().draining) return stream_.close();
    if (tls) {
      std::make_shared<Session<TlsStream>>(std::move(stream_), *security_->tls, std::move(buffer_),
                                           security_, std::move(slot_))
          ->Run();
      return;
    }
    slot_.state().metrics.CountResponse("", 400);
    static constexpr std::string_view kAnswer =
        "HTTP/1.0 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n"
        "Connection: close\r\n\r\nClient sent an HTTP request to an HTTPS server.\n";
    stream_.expires_after(kWriteTimeout);
    asio::async_write(stream_, asio::buffer(kAnswer),
                      [self = shared_from_this()](beast::error_code, std::size_t) {
                        beast::error_code ignored;
                        self->stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
                        self->stream_.close();
                      });
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::shared_ptr<const Security> security_;
  ConnectionSlot slot_;
};

std::string Format(const tcp::endpoint& endpoint) {
  const auto address = endpoint.address();
  return (address.is_v6() ? "[" + address.to_string() + "]" : address.to_string()) + ":" +
         std::to_string(endpoint.port());
}

}  // namespace

std::string ProbeHealth(const ListenAddress& address, std::chrono::milliseconds timeout,
                        const WebSecurity* web) {
  const bool tls = ServesTls(web);
  asio::io_context io;
  asio::ssl::context context(asio::ssl::context::tls_client);
  context.set_verify_mode(asio::ssl::verify_none);
  beast::error_code ec;
  // Only where one is required: where it is optional, none passes and an unverifiable one fails.
  const bool presented = tls && RequiresClientCertificate(*web->config().tls);
  // The server's own certificate, from its file or inline in the web config.
  const std::string own_certificate =
      !tls ? ""
           : (web->config().tls->cert.empty() ? web->config().tls->cert_file.string()
                                              : "tls_server_config.cert");
  if (presented) {
    const TlsServerConfig& own = *web->config().tls;
    if (own.cert.empty()) {
      context.use_certificate_chain_file(own.cert_file.string(), ec);
    } else {
      context.use_certificate_chain(asio::buffer(own.cert), ec);
    }
    if (!ec && own.key.empty()) {
      context.use_private_key_file(own.key_file.string(), asio::ssl::context::pem, ec);
    } else if (!ec) {
      context.use_private_key(asio::buffer(own.key), asio::ssl::context::pem, ec);
    }
    if (ec) return "cannot present " + own_certificate + ": " + ec.message();
  }
  TlsStream stream(io, context);
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
  const auto exchange = [&](auto& s) {
    http::async_write(s, request, [&](beast::error_code e, std::size_t) {
      if ((ec = e)) return;
      http::async_read(s, buffer, response, [&](beast::error_code e2, std::size_t) { ec = e2; });
    });
  };
  beast::tcp_stream& tcp_stream = beast::get_lowest_layer(stream);
  tcp_stream.expires_after(timeout);
  tcp_stream.async_connect(endpoints, [&](beast::error_code e, const tcp::endpoint&) {
    if ((ec = e)) return;
    if (!tls) return exchange(tcp_stream);
    stream.async_handshake(asio::ssl::stream_base::client, [&](beast::error_code e2) {
      if ((ec = e2)) return;
      exchange(stream);
    });
  });
  io.run();
  const std::string url =
      std::string(tls ? "https://" : "http://") + host + ":" + std::to_string(address.port);
  if (ec && presented && ec.category() == asio::error::get_ssl_category()) {
    // A TLS alert, in the handshake or (TLS 1.3) at the first read: most likely the server's
    // client CA did not sign the server's own certificate, or its extendedKeyUsage leaves out
    // clientAuth, or client_allowed_sans lists none of its SANs.
    const TlsServerConfig& files = *web->config().tls;
    std::string needs = "the server must accept it";
    if (files.client_auth_type == "RequireAndVerifyClientCert") {
      needs +=
          ": client_ca_file must verify it, with clientAuth in its extendedKeyUsage if it has "
          "one";
    }
    if (!files.client_allowed_sans.empty()) {
      needs += files.client_auth_type == "RequireAndVerifyClientCert" ? ", and " : ": ";
      needs += "client_allowed_sans must list one of its SANs";
    }
    return "GET " + url + "/healthz: " + ec.message() + " (as client_auth_type " +
           files.client_auth_type + " asks, the check presented " + own_certificate +
           ", the server's own certificate: for the check to pass, " + needs + ")";
  }
  if (ec) return "GET " + url + "/healthz: " + ec.message();
  if (response.result() != http::status::ok) {
    std::string body = response.body();
    while (!body.empty() && (body.back() == '\n' || body.back() == '\r')) body.pop_back();
    return url + "/healthz answered " + std::to_string(response.result_int()) + ": " + body;
  }
  return "";
}

struct HttpServer::Impl : std::enable_shared_from_this<HttpServer::Impl> {
  Impl(asio::io_context& io, const HttpOptions& limits, const HttpHandler& handler,
       HttpMetrics& metrics, std::shared_ptr<const WebSecurity> web, std::string name,
       LogCallback log_callback)
      : io_context(io),
        log(std::move(log_callback)),
        acceptor(asio::make_strand(io)),
        shared(std::make_shared<ServerState>(handler, metrics, limits, std::move(web),
                                             std::move(name), hasher.get_executor(),
                                             expositions.get_executor(), pages.get_executor())) {}

  void Accept() {
    acceptor.async_accept(asio::make_strand(io_context),
                          beast::bind_front_handler(&Impl::OnAccept, shared_from_this()));
  }

  void OnAccept(beast::error_code ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted || !acceptor.is_open()) return;
    if (ec) {
      // Out of descriptors (EMFILE, ENFILE) or memory, accepting again at once fails again at
      // once: a busy loop on the I/O thread. Wait, as Go's net/http does: 5 ms, doubled per
      // failure up to 1 s, until an accept succeeds. The connections wait in the backlog.
      retry_delay = std::clamp(2 * retry_delay, kFirstRetryDelay, kLastRetryDelay);
      retry.expires_after(retry_delay);
      retry.async_wait([self = shared_from_this()](beast::error_code wait_error) {
        if (!wait_error) self->Accept();
      });
      return;
    }
    retry_delay = {};
    ReloadChangedTlsFiles();
    // Responses go out as a few small writes (TLS records, header then body): without
    // TCP_NODELAY, Nagle holds the last one for the client's delayed ACK (~40 ms). Go's
    // servers set it too.
    beast::error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);
    const bool over_limit = ++shared->connections > shared->limits.max_connections;
    if (over_limit) shared->metrics.CountRefusedConnection();
    ConnectionSlot slot(shared);
    std::shared_ptr<const Security> security = shared->CurrentSecurity();
    if (security->tls) {
      // No 503 in clear text to a TLS client: over the limit, just close.
      if (!over_limit) {
        std::make_shared<Detector>(std::move(socket), std::move(security), std::move(slot))->Run();
      }
    } else {
      auto session = std::make_shared<Session<beast::tcp_stream>>(
          beast::tcp_stream(std::move(socket)), std::move(slot));
      if (over_limit) {
        session->Refuse();
      } else {
        session->Run();
      }
    }
    Accept();
  }

  // See SetWebSecurity. On the acceptor's strand.
  void ReloadChangedTlsFiles() {
    const auto now = std::chrono::steady_clock::now();
    if (now < next_tls_check) return;
    next_tls_check = now + kTlsCheckInterval;
    const std::shared_ptr<const WebSecurity> running = shared->CurrentSecurity()->web;
    if (!running || running->tls_context() == nullptr) return;
    std::vector<FileStamp> on_disk = StampTlsFiles(running->config());
    if (on_disk == running->tls_files() || on_disk == refused_tls_files) return;
    std::shared_ptr<const Security> next;
    try {
      next =
          std::make_shared<const Security>(std::make_shared<const WebSecurity>(running->config()));
    } catch (const ConfigError& e) {
      refused_tls_files = std::move(on_disk);
      Log(LogLevel::kError,
          std::string("web config: the TLS files changed on disk but do not load, the running "
                      "ones stay: ") +
              e.what());
      return;
    }
    {
      std::scoped_lock lock(shared->mutex);
      if (shared->security->web != running) return;  // a reload came in between: it wins
      shared->security = next;
    }
    std::string changed;
    const std::vector<std::filesystem::path> files = TlsFiles(running->config());
    for (std::size_t i = 0; i < files.size(); ++i) {
      if (on_disk[i] == running->tls_files()[i]) continue;
      changed += (changed.empty() ? "" : ", ") + files[i].string();
    }
    Log(LogLevel::kInfo,
        "web config: " + changed + " changed on disk, loaded again: " + Describe(next->web.get()));
  }

  void Log(LogLevel level, const std::string& message) const {
    if (log) log(level, message);
  }

  static constexpr std::chrono::seconds kTlsCheckInterval{1};
  static constexpr std::chrono::milliseconds kFirstRetryDelay{5};
  static constexpr std::chrono::milliseconds kLastRetryDelay{1000};

  // First: ServerState holds their executors.
  asio::thread_pool hasher{1};
  asio::thread_pool expositions{1};
  asio::thread_pool pages{1};
  asio::io_context& io_context;
  const LogCallback log;
  tcp::acceptor acceptor;
  asio::steady_timer retry{acceptor.get_executor()};  // on the acceptor's strand
  std::chrono::milliseconds retry_delay{};            // 0 after an accept succeeded
  // On the acceptor's strand too: when to look at the TLS files next, and how they were when
  // they last did not load.
  std::chrono::steady_clock::time_point next_tls_check{};
  std::vector<FileStamp> refused_tls_files;
  std::shared_ptr<ServerState> shared;
  tcp::endpoint bound;  // kept: the acceptor is closed by then, maybe on another thread
};

HttpServer::HttpServer(asio::io_context& io, const ListenAddress& address,
                       const HttpOptions& limits, const HttpHandler& handler, HttpMetrics& metrics,
                       std::shared_ptr<const WebSecurity> web, std::string name, LogCallback log)
    : impl_(std::make_shared<Impl>(io, limits, handler, metrics, std::move(web), std::move(name),
                                   std::move(log))) {
  // Each pool's one thread by its work, for top -H, perf and gdb.
  for (auto [pool, thread_name] :
       {std::pair{&impl_->hasher, "pw-bcrypt"}, std::pair{&impl_->expositions, "pw-exposition"},
        std::pair{&impl_->pages, "pw-debug-page"}}) {
    asio::post(*pool, [name = thread_name] { pthread_setname_np(pthread_self(), name); });
  }
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
  impl_->bound = impl_->acceptor.local_endpoint();
}

HttpServer::~HttpServer() {
  Stop();
  // Work still queued is dropped with its connections; a running one finishes and posts its
  // answer to the io_context.
  for (asio::thread_pool* pool : {&impl_->hasher, &impl_->expositions, &impl_->pages}) {
    pool->stop();
    pool->join();
  }
}

void HttpServer::SetWebSecurity(std::shared_ptr<const WebSecurity> web) {
  auto security = std::make_shared<const Security>(std::move(web));
  impl_->shared->Limit(security->web.get());
  std::scoped_lock lock(impl_->shared->mutex);
  impl_->shared->security = std::move(security);
}

void HttpServer::Start() { impl_->Accept(); }

void HttpServer::Stop() {
  // On the acceptor's strand: it may be accepting at this moment on the I/O thread.
  asio::dispatch(impl_->acceptor.get_executor(), [impl = impl_] {
    beast::error_code ignored;
    if (impl->acceptor.is_open()) impl->acceptor.close(ignored);
    impl->retry.cancel();
  });
  impl_->shared->draining = true;
  for (const auto& connection : impl_->shared->Open()) connection->Drain();
}

void HttpServer::Abort() {
  for (const auto& connection : impl_->shared->Open()) connection->Abort();
}

std::size_t HttpServer::connections() const { return impl_->shared->connections; }

std::uint16_t HttpServer::port() const { return impl_->bound.port(); }

std::string HttpServer::local_address() const { return Format(impl_->bound); }

}  // namespace poolwatch::exporter
