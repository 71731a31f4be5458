#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace poolwatch::testing {

// A raw TCP connection to 127.0.0.1:port, closed when this goes: for clients that speak no
// protocol, or only part of one.
class Socket {
 public:
  explicit Socket(std::uint16_t port);
  ~Socket();
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;

  bool connected() const { return connected_; }
  // False if the connection broke first (a reset, or writing after the peer closed).
  bool Send(std::string_view bytes) const;
  // True once the peer has closed (EOF or reset) within `timeout`; what it sent is kept.
  bool ClosedWithin(std::chrono::milliseconds timeout);
  const std::string& received() const { return received_; }

 private:
  int fd_;
  bool connected_ = false;
  std::string received_;
};

// Holds `max_connections` idle connections open to a server limited to that many, and opens one
// more, which the server must close at once. Returns the connections it closed at once, each
// with what it received: that one, and any held one it closed as well (a connection of an
// earlier request the server had not let go of yet took a place; then it tries again, up to 10
// times). Empty when the one more was never closed within `wait` (shorter than the server's
// header timeout). The held connections are closed on return.
std::vector<std::unique_ptr<Socket>> TurnedAway(std::uint16_t port, int max_connections,
                                                std::chrono::milliseconds wait);

}  // namespace poolwatch::testing
