#include "raw_socket.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

namespace poolwatch::testing {

Socket::Socket(std::uint16_t port) : fd_(socket(AF_INET, SOCK_STREAM, 0)) {
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  connected_ = connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
}

Socket::~Socket() { close(fd_); }

bool Socket::Send(std::string_view bytes) const {
  while (!bytes.empty()) {
    const ssize_t n = send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n <= 0) return false;
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

bool Socket::ClosedWithin(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  char buffer[4096];
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd pfd{fd_, POLLIN, 0};
    if (poll(&pfd, 1, 50) <= 0) continue;
    const ssize_t n = recv(fd_, buffer, sizeof buffer, 0);
    if (n <= 0) return true;
    received_.append(buffer, static_cast<std::size_t>(n));
  }
  return false;
}

std::vector<std::unique_ptr<Socket>> TurnedAway(std::uint16_t port, int max_connections,
                                                std::chrono::milliseconds wait) {
  std::vector<std::unique_ptr<Socket>> refused;
  for (int attempt = 0; attempt < 10; ++attempt) {
    std::vector<std::unique_ptr<Socket>> held;
    held.reserve(static_cast<std::size_t>(max_connections));
    for (int i = 0; i < max_connections; ++i) held.push_back(std::make_unique<Socket>(port));
    auto over = std::make_unique<Socket>(port);
    const bool closed = over->ClosedWithin(wait);
    for (auto& socket : held) {
      if (socket->ClosedWithin(std::chrono::milliseconds{10})) refused.push_back(std::move(socket));
    }
    if (closed) {
      refused.push_back(std::move(over));
      return refused;
    }
  }
  return {};
}

}  // namespace poolwatch::testing
