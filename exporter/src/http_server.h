#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "http_handler.h"
#include "http_metrics.h"
#include "poolwatch/exporter/exporter.h"
#include "poolwatch/exporter/options.h"

namespace boost::asio {
class io_context;
}  // namespace boost::asio

namespace poolwatch::exporter {

// An HTTP/1.1 server (Boost.Beast) that answers every request with an HttpHandler, over plain
// HTTP or TLS (Asio's SSL over OpenSSL) and with basic auth, as its WebSecurity says.
//
// The io_context's thread does only I/O: answers that are ready (probes, a /metrics exposition
// made already) are written from there without a copy; the others (/debug, a new exposition)
// are made on threads of the server's own (one for expositions, one for /debug pages), and
// bcrypt for a (user, password) pair not seen yet on a third, so that neither a /debug page
// nor a password guesser delays a scrape.
//
// Limits: request size (line, headers and body together), time to receive a request
// (header_timeout for a connection's first, idle_timeout for later ones on a kept-alive
// connection) and concurrent connections (over the limit: 503 and close). A refused request
// (413, 431, 400, 503) is answered, then the connection is closed lingering, as nginx and Go's
// net/http close: half-closed, then what the client still sends is read and discarded for a
// bounded time and size, so that the client reads the refusal instead of a reset.
//
// Thread-safety: construct and destroy on one thread, while the io_context is not running or
// from outside it; the rest from any thread.
class HttpServer {
 public:
  // Binds and listens at once. Throws std::runtime_error naming the address when it cannot
  // (address in use, permission, unknown host).
  // `metrics`: where every response and failed TLS handshake is counted (it must outlive the
  // server). `web`: TLS and basic auth (null: plain HTTP, no auth). `name`: the Server header,
  // and the basic-auth realm. `log`: where a reload of changed TLS files is told (may be null).
  HttpServer(boost::asio::io_context& io, const ListenAddress& address, const HttpOptions& limits,
             const HttpHandler& handler, HttpMetrics& metrics,
             std::shared_ptr<const WebSecurity> web = nullptr, std::string name = "poolwatch",
             LogCallback log = {});
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  void Start();  // starts accepting connections
  // Closes the listener and starts the drain: idle connections close; a connection whose
  // request has been read completes its response, then closes. Returns at once.
  void Stop();
  // Closes every connection still open (the drain took too long).
  void Abort();
  std::size_t connections() const;  // open now

  // For a reloaded web config: new connections get its transport (TLS or not), every request
  // from now on its users.
  //
  // A renewed certificate needs no call: before it accepts a connection (at most once a
  // second), the server looks at the TLS files of its web config, and loads them again when
  // they changed on disk, as the exporter-toolkit's servers load them for every connection.
  // Files that do not load (a certificate renewed, its key not yet) are logged once and the
  // running ones stay, until the files change again.
  void SetWebSecurity(std::shared_ptr<const WebSecurity> web);

  std::uint16_t port() const;         // the bound port (the real one when asked for port 0)
  std::string local_address() const;  // e.g. "127.0.0.1:9720"

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace poolwatch::exporter
