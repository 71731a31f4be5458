#include "notify_socket.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

namespace poolwatch::testing {

NotifySocket::NotifySocket(const std::filesystem::path& path)
    : path_(path), fd_(socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (path.string().size() >= sizeof(address.sun_path)) return;
  std::strncpy(address.sun_path, path.c_str(), sizeof(address.sun_path) - 1);
  bound_ = bind(fd_, reinterpret_cast<const sockaddr*>(&address), sizeof(address)) == 0;
}

NotifySocket::~NotifySocket() { close(fd_); }

std::string NotifySocket::Receive(std::chrono::milliseconds timeout) const {
  pollfd ready{fd_, POLLIN, 0};
  if (poll(&ready, 1, static_cast<int>(timeout.count())) != 1) return "";
  char message[4096];
  const ssize_t size = recv(fd_, message, sizeof(message), 0);
  return size > 0 ? std::string(message, static_cast<std::size_t>(size)) : "";
}

std::string NotifySocket::ReceiveState() const {
  for (std::string message = Receive();; message = Receive()) {
    if (message != "WATCHDOG=1") return message;
  }
}

ScopedEnvironment::ScopedEnvironment(
    std::initializer_list<std::pair<const char*, std::string>> variables) {
  for (const auto& [name, value] : variables) {
    setenv(name, value.c_str(), 1);
    names_.push_back(name);
  }
}

ScopedEnvironment::~ScopedEnvironment() {
  for (const char* name : names_) unsetenv(name);
}

}  // namespace poolwatch::testing
