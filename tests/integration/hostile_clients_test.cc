// Hostile and careless clients against the real poolwatchd: each gets a 4xx or a closed
// connection within the configured limits, while scrapes still answer, frames keep advancing
// and memory stays flat.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/types.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <sstream>
#include <thread>

#include "daemon_process.h"
#include "http_client.h"
#include "raw_socket.h"

namespace poolwatch::testing {
namespace {

using namespace std::chrono_literals;

class HostileClientsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string config = dir_.Write("poolwatchd.json", R"({
      "http": {"listen": "127.0.0.1:0", "header_timeout_seconds": 2, "idle_timeout_seconds": 2,
               "max_connections": 512, "max_request_bytes": 8192},
      "loop": {"tick_hz": 100},
      "workload": {"scenario": "steady", "particles": 256}})");
    daemon_ = std::make_unique<DaemonProcess>(std::vector<std::string>{"--config", config});
    port_ = daemon_->Port();
    ASSERT_NE(port_, 0) << daemon_->Log();
    ASSERT_TRUE(Eventually([&] { return HttpGet(port_, "/readyz").status == 200; }));
  }

  std::map<std::string, double> Scrape() { return ParseSamples(HttpGet(port_, "/metrics").body); }

  // A scrape that must answer within a second.
  void ExpectPromptScrape() {
    const auto start = std::chrono::steady_clock::now();
    const HttpResult result = HttpRequest(port_, "GET", "/metrics", {}, 1s);
    EXPECT_EQ(result.status, 200U) << result.error;
    EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
  }

  TempDir dir_;
  std::unique_ptr<DaemonProcess> daemon_;
  std::uint16_t port_ = 0;
};

TEST_F(HostileClientsTest, HundredsOfStalledHalfHeadersAreCutOffAndScrapesStillAnswer) {
  const double frames_before = Scrape().at("poolwatch_frames_total{loop=\"main\"}");
  std::vector<std::unique_ptr<Socket>> stalled;
  for (int i = 0; i < 300; ++i) {
    stalled.push_back(std::make_unique<Socket>(port_));
    ASSERT_TRUE(stalled.back()->connected());
    stalled.back()->Send("GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: ");
  }
  ExpectPromptScrape();
  // The header timeout (2 s) closes every stalled connection.
  for (auto& socket : stalled) EXPECT_TRUE(socket->ClosedWithin(5s));
  ExpectPromptScrape();
  EXPECT_GT(Scrape().at("poolwatch_frames_total{loop=\"main\"}"), frames_before);
}

TEST_F(HostileClientsTest, OversizedHeadersGet431) {
  Socket socket(port_);
  socket.Send("GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: " +
              std::string(std::size_t{300} * 1024, 'a') + "\r\n\r\n");
  ASSERT_TRUE(socket.ClosedWithin(5s));
  EXPECT_TRUE(socket.received().starts_with("HTTP/1.1 431")) << socket.received().substr(0, 80);
  ExpectPromptScrape();
}

TEST_F(HostileClientsTest, AHundredMegabyteBodyIsRefusedWith413BeforeItIsSent) {
  Socket socket(port_);
  socket.Send("POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 104857600\r\n\r\n");
  ASSERT_TRUE(socket.ClosedWithin(5s));
  EXPECT_TRUE(socket.received().starts_with("HTTP/1.1 413")) << socket.received();
}

// A client that goes on sending after the server has refused, as an HTTP client library does
// (it writes the whole request, then reads): without a lingering close the unread bytes make
// the kernel reset the connection, the client's write fails with a broken pipe or a reset, and
// it never reads the refusal (measured before: 3 of 20 clients read the 431, 2 of 20 the 413).
TEST_F(HostileClientsTest, ARefusedClientReadsTheRefusalEveryTime) {
  const auto refusals_read = [&](const std::string& head, std::size_t rest_bytes,
                                 std::string_view piece, std::string_view status) {
    int read = 0;
    for (int attempt = 0; attempt < 20; ++attempt) {
      Socket socket(port_);
      std::string rest;
      while (rest.size() < rest_bytes) rest.append(piece);
      bool sent = socket.Send(head);
      for (std::size_t at = 0; sent && at < rest.size(); at += 16384) {
        sent = socket.Send(std::string_view(rest).substr(at, 16384));
      }
      if (sent && socket.ClosedWithin(5s) && socket.received().starts_with(status)) ++read;
    }
    return read;
  };
  EXPECT_EQ(refusals_read("GET /metrics HTTP/1.1\r\nHost: x\r\n", 256 << 10,
                          "X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n",
                          "HTTP/1.1 431"),
            20);
  EXPECT_EQ(refusals_read("POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 1048576\r\n\r\n",
                          1 << 20, std::string(4096, 'b'), "HTTP/1.1 413"),
            20);
  ExpectPromptScrape();
}

// max_request_bytes (8192 here) bounds the request line, headers and body together: a 5000-byte
// header with a 5000-byte body is over it, although each alone is not.
TEST_F(HostileClientsTest, TheRequestLimitCountsHeadersAndBodyTogether) {
  const std::string header = "X-Pad: " + std::string(5000, 'p') + "\r\n";
  const std::string small =
      RawExchange(port_,
                  "POST /metrics HTTP/1.1\r\nHost: x\r\n" + header +
                      "Content-Length: 100\r\nConnection: close\r\n\r\n" + std::string(100, 'b'),
                  5s);
  EXPECT_TRUE(small.starts_with("HTTP/1.1 405")) << small.substr(0, 40);
  const std::string big =
      RawExchange(port_,
                  "POST /metrics HTTP/1.1\r\nHost: x\r\n" + header +
                      "Content-Length: 5000\r\nConnection: close\r\n\r\n" + std::string(5000, 'b'),
                  5s);
  EXPECT_TRUE(big.starts_with("HTTP/1.1 413")) << big.substr(0, 40);
  const std::string chunked =
      RawExchange(port_,
                  "POST /metrics HTTP/1.1\r\nHost: x\r\n" + header +
                      "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n1388\r\n" +
                      std::string(5000, 'b') + "\r\n0\r\n\r\n",
                  5s);
  EXPECT_TRUE(chunked.starts_with("HTTP/1.1 413")) << chunked.substr(0, 40);
}

TEST_F(HostileClientsTest, UnknownMethodsGet405AndGarbageGets400) {
  EXPECT_TRUE(
      RawExchange(port_, "BREW /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 5s)
          .starts_with("HTTP/1.1 405"));
  EXPECT_TRUE(
      RawExchange(port_, "DELETE /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 5s)
          .starts_with("HTTP/1.1 405"));
  std::string garbage(4096, '\0');
  for (std::size_t i = 0; i < garbage.size(); ++i) garbage[i] = static_cast<char>(i * 131 + 7);
  EXPECT_TRUE(RawExchange(port_, garbage, 5s).starts_with("HTTP/1.1 400"));
  ExpectPromptScrape();
}

// poolwatch_http_requests_total counts every answer by endpoint and code, whatever the path
// asked for: a request refused before its path was read, or on a path not served, is "other"
// (also on a connection whose request before had a path).
TEST_F(HostileClientsTest, EveryAnswerIsCountedByEndpointAndCodeWithABoundedLabel) {
  const auto exchange = [&](const std::string& request) { return RawExchange(port_, request, 5s); };
  const std::string close = " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  EXPECT_TRUE(exchange("GET /wp-login.php" + close).starts_with("HTTP/1.1 404"));
  EXPECT_TRUE(exchange("GET /metrics/../.env" + close).starts_with("HTTP/1.1 404"));
  EXPECT_TRUE(exchange("DELETE /metrics" + close).starts_with("HTTP/1.1 405"));
  EXPECT_TRUE(exchange("GET /healthz?verbose" + close).starts_with("HTTP/1.1 200"));
  // A page, then on the same connection a request without Host: 200 for /debug, 400 for other.
  const std::string kept = exchange(
      "GET /debug HTTP/1.1\r\nHost: x\r\n\r\nGET /debug HTTP/1.1\r\nConnection: close\r\n\r\n");
  EXPECT_TRUE(kept.starts_with("HTTP/1.1 200")) << kept.substr(0, 40);
  EXPECT_NE(kept.find("HTTP/1.1 400"), std::string::npos);

  const std::string prefix = "poolwatch_http_requests_total{";
  std::map<std::string, double> counted;
  ASSERT_TRUE(Eventually([&] {
    counted.clear();
    for (const auto& [series, value] : Scrape()) {
      if (series.starts_with(prefix)) counted[series.substr(prefix.size())] = value;
    }
    // The scrapes count too, in the exposition made after theirs.
    return counted.contains(R"(code="400",handler="other"})") &&
           counted[R"(code="200",handler="/metrics"})"] >= 1;
  })) << "not every request is counted";
  EXPECT_EQ(counted[R"(code="404",handler="other"})"], 2);
  EXPECT_EQ(counted[R"(code="405",handler="/metrics"})"], 1);
  EXPECT_EQ(counted[R"(code="200",handler="/healthz"})"], 1);
  EXPECT_EQ(counted[R"(code="200",handler="/debug"})"], 1);
  EXPECT_EQ(counted[R"(code="400",handler="other"})"], 1);
  EXPECT_GE(counted[R"(code="200",handler="/readyz"})"], 1) << "the fixture awaits readiness";
  EXPECT_EQ(counted.count(R"(code="400",handler="/debug"})"), 0U);
  for (const auto& [labels, value] : counted) {
    EXPECT_TRUE(labels.find(R"(handler="/wp-login.php")") == std::string::npos &&
                labels.find(".env") == std::string::npos)
        << labels;
  }
}

// http.max_connections: a connection over it is answered 503 and closed, and counted (as a
// connection refused, and as the answer), so that a scraper turned away shows on the next
// scrape that gets through; once connections close, scrapes are served again.
TEST_F(HostileClientsTest, ConnectionsOverTheLimitGet503AndAreCounted) {
  const std::string config = dir_.Write("limited.json", R"({
      "http": {"listen": "127.0.0.1:0", "header_timeout_seconds": 30, "max_connections": 4},
      "loop": {"tick_hz": 100}})");
  DaemonProcess limited({"--config", config});
  const std::uint16_t port = limited.Port();
  ASSERT_NE(port, 0) << limited.Log();
  const std::vector<std::unique_ptr<Socket>> refused = TurnedAway(port, 4, 5s);
  ASSERT_FALSE(refused.empty()) << "a fifth connection was not closed";
  for (const auto& socket : refused) {
    EXPECT_TRUE(socket->received().starts_with("HTTP/1.1 503")) << socket->received();
    EXPECT_TRUE(socket->received().ends_with("too many connections\n")) << socket->received();
  }
  // The held connections are closed: scrapes get through again, once the server has seen the
  // closes (a scrape before that is turned away too, and counted).
  std::size_t turned_away = refused.size();
  std::map<std::string, double> samples;
  ASSERT_TRUE(Eventually([&] {
    const HttpResult result = HttpGet(port, "/metrics");
    turned_away += result.status == 503 ? 1 : 0;
    if (result.status != 200) return false;
    samples = ParseSamples(result.body);
    return true;
  }));
  EXPECT_EQ(samples.at("poolwatch_http_connections_refused_total"),
            static_cast<double>(turned_away));
  EXPECT_EQ(samples.at(R"(poolwatch_http_requests_total{code="503",handler="other"})"),
            static_cast<double>(turned_away));
}

TEST_F(HostileClientsTest, PathTraversalFindsNothing) {
  for (const char* target : {"/../../etc/passwd", "/metrics/../../etc/passwd", "/%2e%2e/etc",
                             "../etc/passwd", "//etc/passwd"}) {
    const std::string response = RawExchange(
        port_, std::string("GET ") + target + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        5s);
    EXPECT_TRUE(response.starts_with("HTTP/1.1 404") || response.starts_with("HTTP/1.1 400"))
        << target << ": " << response.substr(0, 40);
    EXPECT_EQ(response.find("root:"), std::string::npos);
  }
}

TEST_F(HostileClientsTest, Http10WithoutHostIsAnsweredAndClosed) {
  Socket socket(port_);
  socket.Send("GET /metrics HTTP/1.0\r\n\r\n");
  ASSERT_TRUE(socket.ClosedWithin(5s));
  EXPECT_TRUE(socket.received().starts_with("HTTP/1.0 200")) << socket.received().substr(0, 40);
  EXPECT_NE(socket.received().find("poolwatch_frames_total{loop=\"main\"}"), std::string::npos);
}

// RFC 9112, 3.2: an HTTP/1.1 request without Host, and any request with two, get 400.
TEST_F(HostileClientsTest, MissingOrRepeatedHostGets400) {
  const auto get = [&](const std::string& version, const std::string& headers) {
    return RawExchange(port_, "GET /metrics " + version + "\r\n" + headers + "\r\n", 5s);
  };
  const std::string missing = get("HTTP/1.1", "Connection: close\r\n");
  EXPECT_TRUE(missing.starts_with("HTTP/1.1 400")) << missing.substr(0, 40);
  EXPECT_TRUE(missing.ends_with("an HTTP/1.1 request needs a Host header\n")) << missing;
  for (const char* version : {"HTTP/1.1", "HTTP/1.0"}) {
    const std::string twice = get(version, "Host: a\r\nHost: b\r\nConnection: close\r\n");
    EXPECT_TRUE(twice.starts_with("HTTP/1.1 400")) << version << ": " << twice.substr(0, 40);
    EXPECT_TRUE(twice.ends_with("more than one Host header\n")) << twice;
  }
  ExpectPromptScrape();
}

// RFC 9112, 6.1: a body whose transfer coding does not end in chunked has no length the
// server can tell; it gets 400 and a close, and what followed it is never read as a request.
TEST_F(HostileClientsTest, TransferCodingNotEndingInChunkedGets400) {
  for (const char* coding : {"gzip", "chunked, gzip", "identity"}) {
    const std::string response = RawExchange(
        port_,
        std::string("POST /debug/mark?name=smuggled HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: ") +
            coding + "\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        5s);
    EXPECT_TRUE(response.starts_with("HTTP/1.1 400")) << coding << ": " << response.substr(0, 40);
    EXPECT_TRUE(response.ends_with("a Transfer-Encoding must end in chunked\n")) << response;
  }
  EXPECT_TRUE(RawExchange(port_,
                          "POST /debug/mark?name=chunked HTTP/1.1\r\nHost: x\r\n"
                          "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n0\r\n\r\n",
                          5s)
                  .starts_with("HTTP/1.1 201"));
  ExpectPromptScrape();
}

// RFC 9112, 3.2.2: a server accepts a target in absolute form, as it would its path.
TEST_F(HostileClientsTest, AbsoluteFormTargetsAreAnsweredAsTheirPaths) {
  const auto get = [&](const std::string& target) {
    return RawExchange(port_, "GET " + target + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                       5s);
  };
  const std::string metrics = get("http://127.0.0.1:" + std::to_string(port_) + "/metrics");
  EXPECT_TRUE(metrics.starts_with("HTTP/1.1 200")) << metrics.substr(0, 40);
  EXPECT_NE(metrics.find("poolwatch_frames_total{loop=\"main\"}"), std::string::npos);
  const std::string healthz = get("HTTP://x/healthz?verbose=1");
  EXPECT_TRUE(healthz.starts_with("HTTP/1.1 200")) << healthz.substr(0, 40);
  EXPECT_TRUE(healthz.ends_with("\r\n\r\nok\n")) << healthz;
  for (const char* landing : {"http://x", "https://x?y=1"}) {
    const std::string page = get(landing);
    EXPECT_TRUE(page.starts_with("HTTP/1.1 200")) << landing << ": " << page.substr(0, 40);
    EXPECT_NE(page.find("text/html"), std::string::npos) << landing;
  }
  for (const char* missing : {"http://x/nope", "http://x/../etc/passwd", "ftp://x/metrics"}) {
    EXPECT_TRUE(get(missing).starts_with("HTTP/1.1 404")) << missing;
  }
}

// CPU time the process `pid` has used so far, user and system, in seconds.
double CpuSeconds(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text(std::istreambuf_iterator<char>(stat), {});
  // After the command's closing parenthesis: state is field 3, utime and stime 14 and 15.
  std::istringstream fields(text.substr(text.rfind(')') + 2));
  std::string field;
  double ticks = 0;
  for (int i = 3; fields >> field && i <= 15; ++i) {
    if (i >= 14) ticks += std::stod(field);
  }
  return ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// Out of file descriptors (EMFILE), an accept fails at once, and so does the next: the server
// must wait between tries, not spin on its I/O thread, and serve again once some are free.
TEST_F(HostileClientsTest, OutOfDescriptorsTheServerWaitsInsteadOfSpinning) {
  const auto open_fds = static_cast<rlim_t>(Scrape().at("process_open_fds"));
  const rlimit limit{open_fds + 8, open_fds + 8};
  ASSERT_EQ(prlimit(daemon_->pid(), RLIMIT_NOFILE, &limit, nullptr), 0) << std::strerror(errno);
  const double quiet_start = CpuSeconds(daemon_->pid());
  std::this_thread::sleep_for(3s);
  const double quiet = CpuSeconds(daemon_->pid()) - quiet_start;

  // 8 connections take what is left; the rest wait in the listen backlog.
  std::vector<std::unique_ptr<Socket>> clients;
  for (int i = 0; i < 40; ++i) {
    clients.push_back(std::make_unique<Socket>(port_));
    ASSERT_TRUE(clients.back()->connected());
  }
  std::this_thread::sleep_for(500ms);
  const double exhausted_start = CpuSeconds(daemon_->pid());
  std::this_thread::sleep_for(3s);
  const double exhausted = CpuSeconds(daemon_->pid()) - exhausted_start;
  EXPECT_LT(exhausted, quiet + 0.3) << "3 s out of descriptors took " << exhausted
                                    << " s of CPU, against " << quiet << " s before";

  clients.clear();
  EXPECT_TRUE(Eventually([&] { return HttpGet(port_, "/healthz").status == 200; }))
      << "not serving again once descriptors were free";
}

// process_open_fds against process_max_fds is what shows descriptors running out, so the last
// scrape answered before they do must say so: every descriptor in use, the scrape's own the last
// of them, with none of the process_* families dropped or read as 0 for want of one.
TEST_F(HostileClientsTest, TheLastScrapeBeforeDescriptorsRunOutCountsThemAll) {
  const auto before = Scrape();
  const auto open_fds = static_cast<rlim_t>(before.at("process_open_fds"));
  const rlimit limit{open_fds + 8, open_fds + 8};
  ASSERT_EQ(prlimit(daemon_->pid(), RLIMIT_NOFILE, &limit, nullptr), 0) << std::strerror(errno);

  // Idle connections take the free descriptors one by one, a scrape after each, until a scrape
  // finds none left to be accepted with; well within the 2 s after which idle ones are closed.
  std::vector<std::unique_ptr<Socket>> idle;
  std::map<std::string, double> last;
  int answered = 0;
  for (; answered < 16; ++answered) {
    const HttpResult result = HttpRequest(port_, "GET", "/metrics", {}, 2s);
    if (result.status != 200) break;
    last = ParseSamples(result.body);
    idle.push_back(std::make_unique<Socket>(port_));
    ASSERT_TRUE(idle.back()->connected());
    std::this_thread::sleep_for(30ms);  // accepted, and the scrape's connection closed
  }
  ASSERT_GT(answered, 0);
  ASSERT_LT(answered, 16) << "the descriptors never ran out";
  ASSERT_TRUE(last.contains("process_open_fds")) << "process_* families dropped";
  EXPECT_EQ(last.at("process_max_fds"), static_cast<double>(limit.rlim_cur));
  // The limit bounds descriptor numbers: every one below it was in use, and those above it that
  // the daemon was started with (inherited) are open too.
  double above_limit = 0;
  for (const auto& entry :
       std::filesystem::directory_iterator("/proc/" + std::to_string(daemon_->pid()) + "/fd")) {
    if (std::stoul(entry.path().filename().string()) >= limit.rlim_cur) ++above_limit;
  }
  EXPECT_EQ(last.at("process_open_fds"), last.at("process_max_fds") + above_limit);
  EXPECT_EQ(last.at("process_start_time_seconds"), before.at("process_start_time_seconds"));

  idle.clear();
  EXPECT_TRUE(Eventually([&] { return HttpGet(port_, "/healthz").status == 200; }))
      << "not serving again once descriptors were free";
}

TEST_F(HostileClientsTest, ThousandsOfShortConnectionsLeaveMemoryFlat) {
  for (int i = 0; i < 200; ++i) ASSERT_EQ(HttpGet(port_, "/healthz").status, 200U);
  const auto before = Scrape();
  for (int i = 0; i < 3000; ++i) {
    const HttpResult result = HttpGet(port_, i % 2 == 0 ? "/metrics" : "/debug/health");
    ASSERT_EQ(result.status, 200U) << "request " << i << ": " << result.error;
  }
  const auto after = Scrape();
  EXPECT_GT(after.at("poolwatch_frames_total{loop=\"main\"}"),
            before.at("poolwatch_frames_total{loop=\"main\"}"));
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  // Under a sanitizer RSS measures its runtime (ASan's quarantine keeps freed memory, ~170 MB
  // here), not poolwatchd; the uninstrumented build checks the bound, LeakSanitizer leaks.
  static_cast<void>(before.at("process_resident_memory_bytes"));
#else
  EXPECT_LT(after.at("process_resident_memory_bytes") - before.at("process_resident_memory_bytes"),
            4 << 20)
      << "RSS grew by more than 4 MiB over 3000 connections";
#endif
  EXPECT_LE(after.at("process_open_fds"), before.at("process_open_fds") + 2);
}

TEST_F(HostileClientsTest, SigtermDuringScrapesExitsCleanly) {
  std::atomic<bool> stop{false};
  std::atomic<int> answered{0};
  std::vector<std::thread> scrapers;
  scrapers.reserve(4);
  for (int t = 0; t < 4; ++t) {
    scrapers.emplace_back([&] {
      while (!stop) {
        const HttpResult result = HttpRequest(port_, "GET", "/metrics", {}, 2s);
        // A complete answer or a refused/closed connection; never a cut-off 200.
        if (result.status == 200U) {
          EXPECT_NE(result.body.find("process_threads"), std::string::npos);
          ++answered;
        }
      }
    });
  }
  ASSERT_TRUE(Eventually([&] { return answered > 20; }));
  daemon_->Signal(SIGTERM);
  const auto code = daemon_->WaitExit(2s);
  stop = true;
  for (auto& scraper : scrapers) scraper.join();
  ASSERT_TRUE(code) << "still running after SIGTERM";
  EXPECT_EQ(*code, 0) << daemon_->Log();
}

}  // namespace
}  // namespace poolwatch::testing
