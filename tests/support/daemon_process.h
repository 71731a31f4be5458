#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace poolwatch::testing {

// A temporary directory removed with everything in it when this goes.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  // Writes `content` to path()/name and returns the full path.
  std::string Write(const std::string& name, const std::string& content) const;

 private:
  std::filesystem::path path_;
};

// A program in a child process, its stdout and stderr captured in a file. Stopped by pid when
// this goes, if it is still running: SIGTERM, then SIGKILL after five seconds.
class ChildProcess {
 public:
  // argv[0] is the program's path.
  explicit ChildProcess(const std::vector<std::string>& argv);
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  // Waits until its log contains `needle`; false on timeout or if it exited.
  bool WaitForLog(const std::string& needle,
                  std::chrono::milliseconds timeout = std::chrono::seconds{10});
  void Signal(int signal) const;
  // The exit code (or 128 + signal), or nothing if it is still running after `timeout`.
  std::optional<int> WaitExit(std::chrono::milliseconds timeout = std::chrono::seconds{5});
  std::string Log() const;
  pid_t pid() const { return pid_; }

 private:
  TempDir dir_;
  std::string log_path_;
  pid_t pid_ = -1;
  std::optional<int> exit_code_;
};

// The real poolwatchd binary in a child process.
class DaemonProcess : public ChildProcess {
 public:
  explicit DaemonProcess(const std::vector<std::string>& args);
  // The port from its "listening on HOST:PORT" log line (waits for it); 0 if none came.
  std::uint16_t Port();
};

// A TCP port on 127.0.0.1 that was free a moment ago, for peers that cannot be told port 0.
std::uint16_t FreePort();

// The whole content of a file ("" if it cannot be read).
std::string ReadFile(const std::filesystem::path& path);

// Runs poolwatchd to completion with `args`; returns its exit code and output (stdout+stderr).
struct RunResult {
  int exit_code = -1;
  std::string output;
};
RunResult RunPoolwatchd(const std::vector<std::string>& args);

// Runs a shell command with `input` on its stdin; returns exit code and stdout+stderr.
RunResult RunCommand(const std::string& command, const std::string& input = "");

// Samples of a text-format exposition: "name{labels}" (as written) -> value.
std::map<std::string, double> ParseSamples(const std::string& text);

// Polls `condition` every 20 ms until it holds or `timeout` passes.
bool Eventually(const std::function<bool()>& condition,
                std::chrono::milliseconds timeout = std::chrono::seconds{10});

}  // namespace poolwatch::testing
