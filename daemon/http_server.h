#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "config.h"
#include "http_handler.h"

namespace boost::asio {
class io_context;
}  // namespace boost::asio

namespace poolwatch::daemon {

class WebSecurity;

// GET /healthz from a poolwatchd listening at `address` (an all-interfaces address is asked on
// loopback), over TLS if `tls` (without checking the certificate: it asks itself). Returns an
// empty string if it answered 200, else what went wrong.
std::string ProbeHealth(const ListenAddress& address, std::chrono::milliseconds timeout,
                        bool tls = false);

// An HTTP/1.1 server (Boost.Beast) that answers every request with an HttpHandler, over plain
// HTTP or TLS (Asio's SSL over OpenSSL) and with basic auth, as its WebSecurity says. It runs on
// the io_context's thread and never touches the tick loop. Limits: request size, time to
// receive a request (header_timeout for a connection's first, idle_timeout for later ones on
// a kept-alive connection) and concurrent connections (over the limit: 503 and close).
//
// Basic auth runs bcrypt for a (user, password) pair not seen yet on a thread of the server's
// own, so that a password guesser cannot stall the answers to everyone else.
//
// Thread-safety: construct, Start() and Stop() on one thread, or Stop() from a handler running
// on the io_context. Destroy it once the io_context no longer runs.
class HttpServer {
 public:
  // Binds and listens at once. Throws std::runtime_error naming the address when it cannot
  // (address in use, permission, unknown host).
  // `web`: TLS and basic auth (null: plain HTTP, no auth).
  HttpServer(boost::asio::io_context& io, const ListenAddress& address, const HttpOptions& limits,
             const HttpHandler& handler, std::shared_ptr<const WebSecurity> web = nullptr);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  void Start();  // starts accepting connections
  void Stop();   // stops accepting; open connections end when the io_context stops

  // For a reloaded web config: new connections get its transport (TLS or not), every request
  // from now on its users. Thread-safe.
  void SetWebSecurity(std::shared_ptr<const WebSecurity> web);

  std::uint16_t port() const;         // the bound port (the real one when asked for port 0)
  std::string local_address() const;  // e.g. "127.0.0.1:9720"

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace poolwatch::daemon
