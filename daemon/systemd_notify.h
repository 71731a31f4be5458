#pragma once

#include <sys/socket.h>
#include <sys/un.h>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace poolwatch::daemon {

// systemd's notification protocol (sd_notify(3)) in the few lines it takes, without
// libsystemd: a datagram of "KEY=value" lines to the socket $NOTIFY_SOCKET names. So that with
// Type=notify, `systemctl start` returns once poolwatchd serves, `systemctl status` shows its
// STATUS line, and with WatchdogSec= systemd restarts a daemon whose loops stopped ticking.
// Started otherwise (a shell, a container), there is no $NOTIFY_SOCKET and every call does
// nothing.
//
// Thread-safety: construct before other threads start (it reads the environment); use from one
// thread.
class SystemdNotifier {
 public:
  // Reads $NOTIFY_SOCKET (a path, or "@" and an abstract name), $WATCHDOG_USEC and
  // $WATCHDOG_PID.
  SystemdNotifier();
  ~SystemdNotifier();
  SystemdNotifier(const SystemdNotifier&) = delete;
  SystemdNotifier& operator=(const SystemdNotifier&) = delete;

  bool enabled() const { return fd_ >= 0; }

  // Sends `state` ("READY=1", "STATUS=...", several separated by newlines) without waiting.
  // Why it could not, the first time in a row it cannot; else empty (also when disabled).
  std::string Notify(std::string_view state);

  // How often to send WATCHDOG=1 when systemd watches this process: half of $WATCHDOG_USEC
  // (at least 1 ms), as sd_watchdog_enabled(3) advises; else nothing.
  std::optional<std::chrono::microseconds> watchdog_interval() const { return watchdog_interval_; }

  // "RELOADING=1" with the CLOCK_MONOTONIC time systemd asks for it.
  static std::string Reloading();

 private:
  int fd_ = -1;
  sockaddr_un address_{};
  socklen_t address_length_ = 0;
  std::optional<std::chrono::microseconds> watchdog_interval_;
  bool failing_ = false;
};

}  // namespace poolwatch::daemon
