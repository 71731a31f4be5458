#include "daemon_process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <fstream>
#include <random>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace poolwatch::testing {

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream file(path, std::ios::binary);
  std::ostringstream out;
  out << file.rdbuf();
  return out.str();
}

namespace {

int DecodeStatus(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

// Starts `argv` with stdout and stderr appended to `log_path`.
pid_t Spawn(const std::vector<std::string>& argv, const std::string& log_path) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log_path.c_str(),
                                   O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
  std::vector<char*> args;
  args.reserve(argv.size() + 1);
  for (const std::string& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) throw std::runtime_error("cannot start " + argv[0]);
  return pid;
}

std::vector<std::string> WithBinary(const std::vector<std::string>& args) {
  std::vector<std::string> argv{POOLWATCHD_PATH};
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

}  // namespace

TempDir::TempDir() {
  std::random_device random;
  path_ = std::filesystem::temp_directory_path() /
          ("poolwatch-test-" + std::to_string(getpid()) + "-" + std::to_string(random()));
  std::filesystem::create_directories(path_);
}

TempDir::~TempDir() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

std::string TempDir::Write(const std::string& name, const std::string& content) const {
  std::string file = (path_ / name).string();
  std::ofstream(file, std::ios::binary | std::ios::trunc) << content;
  return file;
}

ChildProcess::ChildProcess(const std::vector<std::string>& argv)
    : log_path_((dir_.path() / "output.log").string()) {
  pid_ = Spawn(argv, log_path_);
}

ChildProcess::~ChildProcess() {
  if (!exit_code_ && pid_ > 0) {
    kill(pid_, SIGTERM);
    if (!WaitExit(std::chrono::seconds{5})) {
      kill(pid_, SIGKILL);
      int status = 0;
      waitpid(pid_, &status, 0);
    }
  }
}

DaemonProcess::DaemonProcess(const std::vector<std::string>& args)
    : ChildProcess(WithBinary(args)) {}

std::uint16_t FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  std::uint16_t port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0) {
    port = ntohs(address.sin_port);
  }
  close(fd);
  return port;
}

bool ChildProcess::WaitForLog(const std::string& needle, std::chrono::milliseconds timeout) {
  return Eventually(
      [&] {
        if (Log().find(needle) != std::string::npos) return true;
        if (!exit_code_) WaitExit(std::chrono::milliseconds{0});
        return false;
      },
      timeout);
}

std::uint16_t DaemonProcess::Port() {
  if (!WaitForLog(" listening on ")) return 0;
  static const std::regex kListening(R"( listening on (?:\[[^\]]*\]|[^ :]*):(\d+))");
  std::smatch match;
  const std::string log = Log();
  if (!std::regex_search(log, match, kListening)) return 0;
  return static_cast<std::uint16_t>(std::stoi(match[1]));
}

void ChildProcess::Signal(int signal) const {
  if (!exit_code_) kill(pid_, signal);
}

std::optional<int> ChildProcess::WaitExit(std::chrono::milliseconds timeout) {
  if (exit_code_) return exit_code_;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  do {
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      exit_code_ = DecodeStatus(status);
      return exit_code_;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds{5});
  } while (std::chrono::steady_clock::now() < deadline);
  return std::nullopt;
}

std::string ChildProcess::Log() const { return ReadFile(log_path_); }

RunResult RunPoolwatchd(const std::vector<std::string>& args) {
  TempDir dir;
  const std::string log = (dir.path() / "out.log").string();
  const pid_t pid = Spawn(WithBinary(args), log);
  int status = 0;
  waitpid(pid, &status, 0);
  return {DecodeStatus(status), ReadFile(log)};
}

RunResult RunCommand(const std::string& command, const std::string& input) {
  TempDir dir;
  const std::string in = dir.Write("stdin", input);
  const std::string out = (dir.path() / "out").string();
  const int status = std::system((command + " < '" + in + "' > '" + out + "' 2>&1").c_str());
  return {DecodeStatus(status), ReadFile(out)};
}

std::map<std::string, double> ParseSamples(const std::string& text) {
  std::map<std::string, double> samples;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    if (line.empty() || line[0] == '#') continue;
    const std::size_t space = line.rfind(' ');
    if (space == std::string::npos) continue;
    samples[line.substr(0, space)] = std::stod(line.substr(space + 1));
  }
  return samples;
}

bool Eventually(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    if (condition()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds{20});
  }
}

}  // namespace poolwatch::testing
