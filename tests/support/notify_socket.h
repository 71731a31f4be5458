#pragma once

#include <chrono>
#include <filesystem>
#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

namespace poolwatch::testing {

// systemd's end of sd_notify(3): the datagram socket $NOTIFY_SOCKET names, bound as systemd
// binds it for a Type=notify service, to read what the daemon tells it.
class NotifySocket {
 public:
  explicit NotifySocket(const std::filesystem::path& path);
  ~NotifySocket();
  NotifySocket(const NotifySocket&) = delete;
  NotifySocket& operator=(const NotifySocket&) = delete;

  bool bound() const { return bound_; }
  const std::filesystem::path& path() const { return path_; }

  // The next message, or "" when none came within `timeout`.
  std::string Receive(std::chrono::milliseconds timeout = std::chrono::seconds{10}) const;
  // The next message that is not a bare watchdog ping ("WATCHDOG=1"), or "" after a timeout.
  std::string ReceiveState() const;

 private:
  std::filesystem::path path_;
  int fd_;
  bool bound_ = false;
};

// Environment variables set while it lives, for the children spawned meanwhile; unset after.
class ScopedEnvironment {
 public:
  ScopedEnvironment(std::initializer_list<std::pair<const char*, std::string>> variables);
  ~ScopedEnvironment();
  ScopedEnvironment(const ScopedEnvironment&) = delete;
  ScopedEnvironment& operator=(const ScopedEnvironment&) = delete;

 private:
  std::vector<const char*> names_;
};

}  // namespace poolwatch::testing
