// Serves one loop of its own with the installed exporter on 127.0.0.1, port 0, and prints what
// a GET /metrics over a plain socket returns.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poolwatch/buffer_pool.h>
#include <poolwatch/exporter/exporter.h>
#include <poolwatch/health_monitor.h>
#include <sys/socket.h>
#include <unistd.h>

#include <iostream>
#include <string>

namespace {

std::string Get(std::uint16_t port, const std::string& target) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string response;
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0) {
    const std::string request =
        "GET " + target + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    send(fd, request.data(), request.size(), 0);
    char buffer[4096];
    for (ssize_t n; (n = recv(fd, buffer, sizeof buffer, 0)) > 0;) response.append(buffer, n);
  }
  close(fd);
  return response;
}

}  // namespace

int main() {
  using namespace std::chrono_literals;
  poolwatch::BufferPool pool;
  poolwatch::HealthMonitor monitor({.loop = "sim", .period = 1ms});
  monitor.AddPool("consumer", pool);
  poolwatch::exporter::Exporter exporter(
      {.http = {.listen = "127.0.0.1:0"},
       .diagnostics = {.history_points = 60},
       .log = [](poolwatch::exporter::LogLevel, std::string_view line) {
         std::cerr << line << "\n";
       }});
  exporter.Attach(monitor);
  exporter.Start();
  for (int frame = 0; frame < 10; ++frame) {
    pool.Acquire(poolwatch::BufferFormat::kU8, 64, "consumer.leak");
    monitor.EndFrame({});
  }
  std::cout << Get(exporter.port(), "/metrics");
  exporter.Stop();
  return 0;
}
