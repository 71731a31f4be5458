#include "http_client.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cctype>

namespace poolwatch::testing {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

HttpResult HttpRequest(std::uint16_t port, const std::string& method, const std::string& target,
                       const std::vector<std::pair<std::string, std::string>>& headers,
                       std::chrono::milliseconds timeout) {
  HttpResult result;
  asio::io_context io;
  beast::tcp_stream stream(io);
  beast::error_code ec;
  stream.expires_after(timeout);
  stream.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), ec);
  if (ec) {
    result.error = "connect: " + ec.message();
    return result;
  }
  http::request<http::empty_body> req{http::string_to_verb(method), target, 11};
  if (req.method() == http::verb::unknown) req.method_string(method);
  req.set(http::field::host, "127.0.0.1:" + std::to_string(port));
  req.set(http::field::connection, "close");
  for (const auto& [name, value] : headers) req.set(name, value);

  // The synchronous calls ignore tcp_stream's expiry, so run them as async ones with it.
  http::async_write(stream, req, [&](beast::error_code e, std::size_t) { ec = e; });
  io.run();
  if (ec) {
    result.error = "write: " + ec.message();
    return result;
  }
  io.restart();
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(64 << 20);
  if (method == "HEAD") parser.skip(true);
  stream.expires_after(timeout);
  http::async_read(stream, buffer, parser, [&](beast::error_code e, std::size_t) { ec = e; });
  io.run();
  if (ec) {
    result.error = "read: " + ec.message();
    return result;
  }
  const auto& res = parser.get();
  result.status = res.result_int();
  for (const auto& field : res) {
    std::string name(field.name_string());
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    result.headers[name] = std::string(field.value());
  }
  result.body = res.body();
  return result;
}

std::string RawExchange(std::uint16_t port, std::string_view bytes,
                        std::chrono::milliseconds timeout) {
  asio::io_context io;
  beast::tcp_stream stream(io);
  beast::error_code ec;
  stream.expires_after(timeout);
  stream.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), ec);
  if (ec) return "";
  asio::async_write(stream, asio::buffer(bytes.data(), bytes.size()),
                    [&](beast::error_code e, std::size_t) { ec = e; });
  io.run();
  io.restart();
  std::string received;
  std::array<char, 4096> chunk{};
  std::function<void(beast::error_code, std::size_t)> on_read = [&](beast::error_code e,
                                                                    std::size_t n) {
    received.append(chunk.data(), n);
    if (!e) stream.async_read_some(asio::buffer(chunk), on_read);
  };
  stream.async_read_some(asio::buffer(chunk), on_read);
  io.run();
  return received;
}

}  // namespace poolwatch::testing
