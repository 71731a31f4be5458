#include "systemd_notify.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <ctime>

namespace poolwatch::daemon {

namespace {

// A whole positive number from the environment, or nothing.
std::optional<unsigned long long> EnvironmentNumber(const char* name) {
  const char* text = std::getenv(name);
  if (text == nullptr) return std::nullopt;
  const std::string_view value(text);
  unsigned long long number = 0;
  const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), number);
  if (ec != std::errc{} || end != value.data() + value.size() || number == 0) return std::nullopt;
  return number;
}

}  // namespace

SystemdNotifier::SystemdNotifier() {
  const char* socket_name = std::getenv("NOTIFY_SOCKET");
  if (socket_name == nullptr) return;
  const std::string_view name(socket_name);
  // A path, or an abstract socket's name after "@" (sent with a leading NUL instead).
  if (name.size() < 2 || name.size() >= sizeof(address_.sun_path) ||
      (name[0] != '/' && name[0] != '@')) {
    return;
  }
  address_.sun_family = AF_UNIX;
  std::memcpy(address_.sun_path, name.data(), name.size());
  if (name[0] == '@') address_.sun_path[0] = '\0';
  address_length_ = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + name.size() +
                                           (name[0] == '/' ? 1 : 0));
  fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  // The watchdog is ours when WATCHDOG_PID names this process, or is not set.
  const auto usec = EnvironmentNumber("WATCHDOG_USEC");
  const auto pid = EnvironmentNumber("WATCHDOG_PID");
  if (usec && (!pid || *pid == static_cast<unsigned long long>(::getpid()))) {
    // At least a millisecond: a WatchdogSec= shorter than that must not make a busy loop.
    watchdog_interval_ = std::chrono::microseconds(std::max(*usec / 2, 1'000ULL));
  }
}

SystemdNotifier::~SystemdNotifier() {
  if (fd_ >= 0) ::close(fd_);
}

std::string SystemdNotifier::Notify(std::string_view state) {
  if (fd_ < 0) return "";
  // Never waits: a message systemd is not reading now is dropped, rather than hold up the
  // signals (a stop) behind it.
  const ssize_t sent = ::sendto(fd_, state.data(), state.size(), MSG_NOSIGNAL | MSG_DONTWAIT,
                                reinterpret_cast<const sockaddr*>(&address_), address_length_);
  const bool failed_before = failing_;
  failing_ = sent != static_cast<ssize_t>(state.size());
  if (!failing_ || failed_before) return "";
  return std::string(
             "cannot notify systemd at $NOTIFY_SOCKET (told once until it works "
             "again): ") +
         (sent < 0 ? std::strerror(errno) : "short write");
}

std::string SystemdNotifier::Reloading() {
  timespec now{};
  ::clock_gettime(CLOCK_MONOTONIC, &now);
  const long long usec = static_cast<long long>(now.tv_sec) * 1'000'000 + now.tv_nsec / 1'000;
  return "RELOADING=1\nMONOTONIC_USEC=" + std::to_string(usec);
}

}  // namespace poolwatch::daemon
