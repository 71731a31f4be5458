#include "webhook_receiver.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <mutex>
#include <thread>

namespace poolwatch::testing {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

struct WebhookReceiver::Impl {
  asio::io_context io;
  tcp::acceptor acceptor{io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)};
  mutable std::mutex mutex;
  std::vector<Request> requests;
  std::thread thread;

  struct Session : std::enable_shared_from_this<Session> {
    Session(tcp::socket socket, Impl& owner) : stream(std::move(socket)), impl(owner) {}

    void Read() {
      request = {};
      http::async_read(stream, buffer, request,
                       [self = shared_from_this()](beast::error_code ec, std::size_t) {
                         if (!ec) self->Answer();
                       });
    }

    void Answer() {
      {
        std::scoped_lock lock(impl.mutex);
        impl.requests.push_back(
            {std::string(request.method_string()), std::string(request.target()), request.body()});
      }
      response = {http::status::ok, request.version()};
      response.keep_alive(request.keep_alive());
      response.prepare_payload();
      http::async_write(stream, response,
                        [self = shared_from_this()](beast::error_code ec, std::size_t) {
                          if (!ec && self->response.keep_alive()) self->Read();
                        });
    }

    beast::tcp_stream stream;
    Impl& impl;
    beast::flat_buffer buffer;
    http::request<http::string_body> request;
    http::response<http::empty_body> response;
  };

  void Accept() {
    acceptor.async_accept([this](beast::error_code ec, tcp::socket socket) {
      if (ec) return;
      std::make_shared<Session>(std::move(socket), *this)->Read();
      Accept();
    });
  }
};

WebhookReceiver::WebhookReceiver() : impl_(std::make_unique<Impl>()) {
  impl_->Accept();
  impl_->thread = std::thread([this] { impl_->io.run(); });
}

WebhookReceiver::~WebhookReceiver() {
  impl_->io.stop();
  impl_->thread.join();
}

std::uint16_t WebhookReceiver::port() const { return impl_->acceptor.local_endpoint().port(); }

std::vector<WebhookReceiver::Request> WebhookReceiver::Requests() const {
  std::scoped_lock lock(impl_->mutex);
  return impl_->requests;
}

}  // namespace poolwatch::testing
