// TLS and basic auth (--web.config.file) on the real poolwatchd: certificates made at test time
// with the openssl command, bcrypt hashes with htpasswd (Apache's own bcrypt, not the libxcrypt
// poolwatchd verifies with), and curl and Prometheus as the clients.
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "credentials.h"
#include "daemon_process.h"
#include "http_client.h"
#include "raw_socket.h"

namespace poolwatch::testing {
namespace {

using namespace std::chrono_literals;

struct CurlResult {
  int exit_code = -1;
  unsigned status = 0;  // 0: no HTTP response
  std::string body;     // or curl's error
};

// curl with `args`, bounded in time; what it printed, and the status on its last line.
CurlResult Curl(const std::string& args) {
  const RunResult run = RunCommand("curl -sS --max-time 5 -w '\\n%{http_code}' " + args);
  CurlResult result{run.exit_code, 0, run.output};
  const std::size_t newline = run.output.rfind('\n');
  if (newline != std::string::npos) {
    result.status = static_cast<unsigned>(std::stoul("0" + run.output.substr(newline + 1)));
    result.body = run.output.substr(0, newline);
  }
  return result;
}

// The Authorization header for `user:password`.
std::string BasicAuth(const std::string& user, const std::string& password) {
  const std::string credentials = user + ":" + password;
  std::string encoded(4 * ((credentials.size() + 2) / 3) + 1, '\0');
  const int size = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(encoded.data()),
                                   reinterpret_cast<const unsigned char*>(credentials.data()),
                                   static_cast<int>(credentials.size()));
  encoded.resize(static_cast<std::size_t>(size));
  return "Basic " + encoded;
}

// Runs a shell command that must succeed (certificate and password tooling).
void MustRun(const std::string& command) {
  const RunResult run = RunCommand(command);
  ASSERT_EQ(run.exit_code, 0) << command << "\n" << run.output;
}

class WebConfigTest : public ::testing::Test {
 protected:
  // A CA, a server certificate for 127.0.0.1 it signed, a client certificate it signed, a
  // self-signed client certificate it did not, and three users' bcrypt hashes. Once for all.
  static void SetUpTestSuite() {
    pki_ = new TempDir();
    const std::string d = pki_->path().string() + "/";
    const std::string ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes ";
    pki_->Write("server.ext", "subjectAltName=IP:127.0.0.1,DNS:localhost\n");
    pki_->Write("client.ext", "extendedKeyUsage=clientAuth\n");
    // Client certificates with SANs, for client_allowed_sans: Prometheus' (a Kubernetes service
    // name, a SPIFFE ID and pod IPs, the IPv6 one written out in full) and another client's the
    // same CA signed.
    pki_->Write("prometheus.ext",
                "extendedKeyUsage=clientAuth\nsubjectAltName=DNS:prometheus.monitoring.svc,"
                "URI:spiffe://cluster.local/ns/monitoring/sa/prometheus,IP:10.0.0.7,"
                "IP:2001:db8:0:0:0:0:0:7\n");
    pki_->Write("intruder.ext",
                "extendedKeyUsage=clientAuth\nsubjectAltName=DNS:intruder.example,"
                "email:prometheus@example.com,IP:10.0.0.8\n");
    SelfSignedCertificate(pki_->path(), "ca", "poolwatch-test-ca");
    // Each signed by the CA: ${name}.key, .csr, .crt with the extensions in ${name}.ext.
    const std::string sign =
        "for name in server client prometheus intruder; do openssl req " + ec + "-keyout " + d +
        "$name.key -out " + d + "$name.csr -subj /CN=$name && " + "openssl x509 -req -in " + d +
        "$name.csr -CA " + d + "ca.crt -CAkey " + d + "ca.key -CAcreateserial -days 2 -out " + d +
        "$name.crt -extfile " + d + "$name.ext || exit 1; done";
    MustRun(sign);
    SelfSignedCertificate(pki_->path(), "stranger", "stranger");
    hashes_["alice"] = BcryptHash("secret", 5);
    hashes_["bob"] = BcryptHash("hunter2", 5);
    // carol's hash is costly (cost 12, ~0.2 s a try) to make password guessing slow.
    hashes_["carol"] = BcryptHash("opensesame", 12);
  }

  static void TearDownTestSuite() {
    delete pki_;
    pki_ = nullptr;
  }

  static std::string Pki(const std::string& name) { return (pki_->path() / name).string(); }

  static std::string TlsBlock(const std::string& extra = "") {
    return "tls_server_config:\n  cert_file: " + Pki("server.crt") +
           "\n  key_file: " + Pki("server.key") + "\n" + extra;
  }

  static std::string Users(std::initializer_list<std::string> users) {
    std::string text = "basic_auth_users:\n";
    for (const std::string& user : users) text += "  " + user + ": " + hashes_.at(user) + "\n";
    return text;
  }

  // Starts poolwatchd with `web` as web.yml, named relatively by http.web_config_file, and
  // `http` as the rest of its http options.
  void Start(const std::string& web, const std::string& http = R"("header_timeout_seconds": 1)") {
    dir_.Write("web.yml", web);
    config_path_ = dir_.Write(
        "poolwatchd.json",
        R"({"http": {"listen": "127.0.0.1:0", "web_config_file": "web.yml", )" + http + R"(},
            "loop": {"tick_hz": 100}, "pool": {"name": "tls"}})");
    daemon_ = std::make_unique<DaemonProcess>(std::vector<std::string>{"--config", config_path_});
    port_ = daemon_->Port();
    ASSERT_NE(port_, 0) << daemon_->Log();
  }

  std::string Url(const std::string& path) const {
    return "https://127.0.0.1:" + std::to_string(port_) + path;
  }

  // An HTTPS request that checks the server's certificate against the test CA.
  CurlResult Https(const std::string& path, const std::string& extra = "") const {
    return Curl("--cacert " + Pki("ca.crt") + " " + extra + " '" + Url(path) + "'");
  }

  CurlResult Scrape(const std::string& credentials = "alice:secret") const {
    return Https("/metrics", "-u " + credentials);
  }

  double Frames() const {
    const auto samples = ParseSamples(Scrape().body);
    const auto it = samples.find("poolwatch_frames_total{loop=\"main\"}");
    return it == samples.end() ? -1 : it->second;
  }

  static inline TempDir* pki_ = nullptr;
  static inline std::map<std::string, std::string> hashes_;
  TempDir dir_;
  std::string config_path_;
  std::unique_ptr<DaemonProcess> daemon_;
  std::uint16_t port_ = 0;
};

TEST_F(WebConfigTest, HttpsScrapeWithTheRightPasswordSucceeds) {
  Start(TlsBlock() + Users({"alice", "bob"}));
  EXPECT_TRUE(
      daemon_->WaitForLog("TLS (TLS12..TLS13, client certificates: NoClientCert), "
                          "basic auth for 2 users"))
      << daemon_->Log();
  const CurlResult alice = Scrape("alice:secret");
  ASSERT_EQ(alice.status, 200U) << alice.body;
  EXPECT_NE(alice.body.find("poolwatch_pool_allocations_total{pool=\"tls\"}"), std::string::npos);
  EXPECT_EQ(Scrape("bob:hunter2").status, 200U);
  // Kept alive: the second request reuses the first's TLS connection (no new connect).
  const RunResult twice =
      RunCommand("curl -sS --max-time 5 --cacert " + Pki("ca.crt") +
                 " -u alice:secret -o /dev/null -o /dev/null -w '%{http_code}/%{num_connects} ' '" +
                 Url("/metrics") + "' '" + Url("/debug/health") + "'");
  EXPECT_EQ(twice.exit_code, 0) << twice.output;
  EXPECT_EQ(twice.output, "200/1 200/0 ");
}

TEST_F(WebConfigTest, WrongOrMissingCredentialsGet401) {
  Start(TlsBlock() + Users({"alice", "bob"}));
  for (const std::string credentials :
       {"alice:wrong", "alice:hunter2", "mallory:secret", "alice:", "alice:secret2"}) {
    EXPECT_EQ(Scrape(credentials).status, 401U) << credentials;
  }
  const CurlResult none = Https("/metrics", "-D -");
  EXPECT_EQ(none.status, 401U);
  EXPECT_NE(none.body.find("WWW-Authenticate: Basic realm=\"poolwatchd\""), std::string::npos)
      << none.body;
  for (const std::string header :
       {"Basic", "Basic !!!notbase64", "Bearer YWxpY2U6c2VjcmV0", "Basic YWxpY2VzZWNyZXQ="}) {
    EXPECT_EQ(Https("/metrics", "-H 'Authorization: " + header + "'").status, 401U) << header;
  }
  // The scheme's name is case-insensitive (RFC 7617); YWxpY2U6c2VjcmV0 is alice:secret.
  EXPECT_EQ(Https("/metrics", "-H 'Authorization: basic YWxpY2U6c2VjcmV0'").status, 200U);
  EXPECT_EQ(Https("/debug/health").status, 401U);
  EXPECT_EQ(Https("/").status, 401U);
  // Each refusal is counted, by endpoint and code, for the next scrape that gets in.
  EXPECT_TRUE(Eventually([&] {
    const auto samples = ParseSamples(Scrape().body);
    const auto count = [&](const std::string& handler) {
      const auto it =
          samples.find(R"(poolwatch_http_requests_total{code="401",handler=")" + handler + "\"}");
      return it == samples.end() ? -1 : it->second;
    };
    return count("/metrics") == 10 && count("/debug/health") == 1 && count("/") == 1;
  }));
}

TEST_F(WebConfigTest, ProbesAnswerWithoutCredentials) {
  Start(TlsBlock() + Users({"alice"}));
  EXPECT_EQ(Https("/healthz").status, 200U);
  EXPECT_TRUE(Eventually([&] { return Https("/readyz").status == 200; }));
  EXPECT_EQ(Https("/healthz?verbose=1").status, 200U);
  EXPECT_EQ(Https("/healthzz").status, 401U) << "only the probes' exact paths are open";
}

TEST_F(WebConfigTest, PlainHttpToTheTlsPortFailsCleanlyAndServingGoesOn) {
  Start(TlsBlock() + Users({"alice"}));
  const double before = Frames();
  ASSERT_GE(before, 0);

  const HttpResult plain = HttpGet(port_, "/metrics");
  EXPECT_EQ(plain.status, 400U) << plain.error;
  EXPECT_EQ(plain.body, "Client sent an HTTP request to an HTTPS server.\n");
  // Bytes that are neither HTTP nor TLS get the same, then the connection closes.
  const std::string garbage = RawExchange(port_, std::string("\x16\x03\x01\x00\x05hello", 10));
  EXPECT_TRUE(garbage.empty() || garbage.starts_with("HTTP/1.0 400")) << garbage;
  EXPECT_TRUE(RawExchange(port_, "\x01\x02garbage\r\n\r\n").starts_with("HTTP/1.0 400"));

  EXPECT_TRUE(Eventually([&] { return Frames() > before + 10; })) << daemon_->Log();
  EXPECT_EQ(Scrape().status, 200U);
  // The answers in clear text are counted as requests refused before a path was read.
  const double refused = garbage.empty() ? 2 : 3;
  EXPECT_TRUE(Eventually([&] {
    return ParseSamples(
               Scrape().body)[R"(poolwatch_http_requests_total{code="400",handler="other"})"] ==
           refused;
  }));
}

TEST_F(WebConfigTest, AStalledHandshakeIsClosedWithinTheHeaderTimeout) {
  Start(TlsBlock() + Users({"alice"}));
  // Each sends the start of a TLS record, then nothing: the server waits for the rest. Six
  // bytes are too few to tell a TLS client from another (Beast's detection needs nine); nine
  // begin a ClientHello, and the handshake waits for its rest.
  const auto stall = [&](std::string bytes) {
    return std::thread([this, bytes = std::move(bytes)] {
      const auto start = std::chrono::steady_clock::now();
      const std::string answer = RawExchange(port_, bytes, 5s);
      EXPECT_EQ(answer, "");
      EXPECT_LT(std::chrono::steady_clock::now() - start, 3s) << "header_timeout_seconds is 1";
    });
  };
  std::thread undetected = stall(std::string("\x16\x03\x01\x02\x00\x01", 6));
  std::thread in_handshake = stall(std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc", 9));
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(Scrape().status, 200U) << "other clients are served meanwhile";
  undetected.join();
  in_handshake.join();
  // The one that began a handshake is counted as a failed one; the other never was a handshake
  // (as a TCP probe's connection is not).
  double failed = -1;
  EXPECT_TRUE(Eventually([&] {
    return (failed = ParseSamples(Scrape().body)["poolwatch_http_tls_handshake_failures_total"]) ==
           1;
  })) << failed;
}

// Over http.max_connections a TLS connection is closed unanswered (no 503 in clear text to a
// TLS client), before any handshake: counted as a connection refused, not as a failed handshake.
TEST_F(WebConfigTest, TlsConnectionsOverTheLimitAreClosedAndCounted) {
  Start(TlsBlock(), R"("header_timeout_seconds": 30, "max_connections": 4)");
  const std::vector<std::unique_ptr<Socket>> refused = TurnedAway(port_, 4, 5s);
  ASSERT_FALSE(refused.empty()) << "a fifth connection was not closed";
  for (const auto& socket : refused) EXPECT_EQ(socket->received(), "");
  // Served again once the held connections are closed.
  std::size_t turned_away = refused.size();
  std::map<std::string, double> samples;
  ASSERT_TRUE(Eventually([&] {
    const CurlResult result = Scrape();
    turned_away += result.status == 0 ? 1 : 0;
    if (result.status != 200) return false;
    samples = ParseSamples(result.body);
    return true;
  }));
  EXPECT_EQ(samples.at("poolwatch_http_connections_refused_total"),
            static_cast<double>(turned_away));
  EXPECT_EQ(samples.at("poolwatch_http_tls_handshake_failures_total"), 0);
  EXPECT_FALSE(samples.contains(R"(poolwatch_http_requests_total{code="503",handler="other"})"));
}

TEST_F(WebConfigTest, WithoutTlsBasicAuthWorksOverPlainHttp) {
  Start(Users({"alice"}));
  EXPECT_EQ(HttpGet(port_, "/metrics").status, 401U);
  EXPECT_EQ(HttpGet(port_, "/metrics", {{"Authorization", "Basic YWxpY2U6c2VjcmV0"}}).status, 200U);
  EXPECT_EQ(HttpGet(port_, "/healthz").status, 200U);
  // A target in absolute form is authorized as its path: no way around the password.
  EXPECT_EQ(HttpGet(port_, "http://127.0.0.1/metrics").status, 401U);
  EXPECT_EQ(
      HttpGet(port_, "http://127.0.0.1/metrics", {{"Authorization", "Basic YWxpY2U6c2VjcmV0"}})
          .status,
      200U);
  EXPECT_EQ(HttpGet(port_, "http://127.0.0.1/healthz").status, 200U);
  // A mark changes what the pages show: it needs the same credentials.
  EXPECT_EQ(HttpRequest(port_, "POST", "/debug/mark?name=x").status, 401U);
  EXPECT_EQ(HttpRequest(port_, "POST", "/debug/mark?name=x",
                        {{"Authorization", BasicAuth("alice", "wrong")}})
                .status,
            401U);
  EXPECT_EQ(HttpRequest(port_, "POST", "/debug/mark?name=x",
                        {{"Authorization", BasicAuth("alice", "secret")}})
                .status,
            201U);
}

// http_server_config.headers on every response, refusals included, and swapped by a reload.
TEST_F(WebConfigTest, ConfiguredHeadersGoOnEveryResponse) {
  const std::string headers =
      "http_server_config:\n  http2: false\n  headers:\n    X-Frame-Options: deny\n"
      "    Content-Security-Policy: \"default-src 'self'\"\n";
  Start(headers + Users({"alice"}));
  const std::vector<std::pair<std::string, std::string>> alice = {
      {"Authorization", BasicAuth("alice", "secret")}};
  for (const HttpResult& response :
       {HttpGet(port_, "/metrics", alice), HttpGet(port_, "/debug", alice),
        HttpGet(port_, "/healthz"), HttpGet(port_, "/metrics"),
        HttpGet(port_, "/nowhere", alice)}) {
    EXPECT_EQ(response.headers.count("x-frame-options"), 1U) << response.status;
    EXPECT_EQ(response.headers.at("x-frame-options"), "deny") << response.status;
    EXPECT_EQ(response.headers.at("content-security-policy"), "default-src 'self'")
        << response.status;
  }

  dir_.Write("web.yml", "http_server_config:\n  headers:\n    X-Frame-Options: sameorigin\n" +
                            Users({"alice"}));
  daemon_->Signal(SIGHUP);
  ASSERT_TRUE(Eventually([&] {
    const HttpResult response = HttpGet(port_, "/metrics", alice);
    return response.headers.contains("x-frame-options") &&
           response.headers.at("x-frame-options") == "sameorigin";
  })) << daemon_->Log();
  EXPECT_FALSE(HttpGet(port_, "/metrics", alice).headers.contains("content-security-policy"));
}

// rate_limit as in the toolkit: `burst` requests at once, then one per interval, 429 beyond,
// counted before the credentials (a flood never reaches bcrypt). The probes are not counted. A
// reload with the same limit keeps the spent bucket; removing it lifts the limit, and putting it
// back starts a full bucket.
TEST_F(WebConfigTest, RateLimitRefusesRequestsBeyondTheBurstWith429) {
  const std::string limit = "rate_limit:\n  interval: 1h\n  burst: 3\n";
  Start(limit + Users({"alice"}));
  const std::vector<std::pair<std::string, std::string>> alice = {
      {"Authorization", BasicAuth("alice", "secret")}};
  for (int i = 0; i < 3; ++i) ASSERT_EQ(HttpGet(port_, "/metrics", alice).status, 200U) << i;
  const HttpResult refused = HttpGet(port_, "/metrics", alice);
  EXPECT_EQ(refused.status, 429U);
  EXPECT_NE(refused.body.find("rate_limit"), std::string::npos) << refused.body;
  ASSERT_TRUE(refused.headers.contains("retry-after"));
  const int retry_after = std::stoi(refused.headers.at("retry-after"));
  EXPECT_GE(retry_after, 3500);
  EXPECT_LE(retry_after, 3600);
  EXPECT_EQ(HttpGet(port_, "/debug", {{"Authorization", BasicAuth("alice", "wrong")}}).status, 429U)
      << "counted before the credentials";
  // Answered, whatever they say (/readyz may still be 503 on a slow start), not refused.
  for (int i = 0; i < 5; ++i) {
    for (const char* probe : {"/healthz", "/readyz"}) {
      const unsigned status = HttpGet(port_, probe).status;
      EXPECT_TRUE(status == 200 || status == 503) << probe << " " << status;
    }
  }

  // The same limit, reloaded (with a header, to see the reload applied): the bucket stays spent.
  const std::string deny = "http_server_config:\n  headers:\n    X-Frame-Options: deny\n";
  dir_.Write("web.yml", limit + deny + Users({"alice"}));
  daemon_->Signal(SIGHUP);
  bool served = false;
  ASSERT_TRUE(Eventually([&] {
    const HttpResult response = HttpGet(port_, "/metrics", alice);
    served = served || response.status != 429;
    return response.headers.contains("x-frame-options");
  })) << daemon_->Log();
  EXPECT_FALSE(served) << "a reload with the same limit handed out a fresh burst";

  // Removed, no limit.
  const std::string same_origin =
      "http_server_config:\n  headers:\n    X-Frame-Options: sameorigin\n";
  dir_.Write("web.yml", same_origin + Users({"alice"}));
  daemon_->Signal(SIGHUP);
  ASSERT_TRUE(Eventually([&] {
    const HttpResult response = HttpGet(port_, "/metrics", alice);
    return response.status == 200 && response.headers.at("x-frame-options") == "sameorigin";
  })) << daemon_->Log();
  for (int i = 0; i < 10; ++i) EXPECT_EQ(HttpGet(port_, "/metrics", alice).status, 200U) << i;

  // Back: a full bucket of three. The request that sees the reload's header may or may not have
  // taken a token (the limit is asked when a request is read, the headers when its response is
  // written), so two or three more get through before the 429.
  dir_.Write("web.yml", limit + deny + Users({"alice"}));
  daemon_->Signal(SIGHUP);
  ASSERT_TRUE(Eventually([&] {
    const HttpResult response = HttpGet(port_, "/metrics", alice);
    return response.status == 200 && response.headers.at("x-frame-options") == "deny";
  })) << daemon_->Log();
  int served_after = 0;
  while (served_after < 10 && HttpGet(port_, "/metrics", alice).status == 200) ++served_after;
  EXPECT_GE(served_after, 2);
  EXPECT_LE(served_after, 3);
  EXPECT_EQ(HttpGet(port_, "/metrics", alice).status, 429U);
  EXPECT_TRUE(daemon_->WaitForLog("rate limit: bursts of 3, one request per 1h")) << daemon_->Log();
}

TEST_F(WebConfigTest, PasswordGuessersDoNotHoldUpTheScrapes) {
  // Plain HTTP keeps the clients cheap; bcrypt is what costs here.
  Start(Users({"alice", "carol"}));
  const auto scrape = [&] {
    return HttpRequest(port_, "GET", "/metrics", {{"Authorization", BasicAuth("alice", "secret")}});
  };
  ASSERT_EQ(scrape().status, 200U) << "verified once, then answered from the cache";

  // 16 clients guess carol's password, each try a new one: ~0.2 s of bcrypt a try, one try at a
  // time, so a queue of seconds. Were bcrypt run on the I/O thread, a scrape would wait for it.
  std::atomic<bool> stop{false};
  std::atomic<int> denied{0};
  std::atomic<int> other{0};
  constexpr int kGuessers = 16;
  std::vector<std::thread> guessers;
  guessers.reserve(kGuessers);
  for (int g = 0; g < kGuessers; ++g) {
    guessers.emplace_back([&, g] {
      for (int n = 0; !stop; ++n) {
        const std::string guess = "guess-" + std::to_string(g) + "-" + std::to_string(n);
        const HttpResult answer = HttpRequest(port_, "GET", "/metrics",
                                              {{"Authorization", BasicAuth("carol", guess)}}, 60s);
        ++(answer.status == 401 ? denied : other);
      }
    });
  }
  std::this_thread::sleep_for(500ms);

  const double frames_before =
      ParseSamples(scrape().body).at("poolwatch_frames_total{loop=\"main\"}");
  auto slowest = std::chrono::steady_clock::duration::zero();
  for (int i = 0; i < 10; ++i) {
    const auto start = std::chrono::steady_clock::now();
    const HttpResult answer = scrape();
    slowest = std::max(slowest, std::chrono::steady_clock::now() - start);
    EXPECT_EQ(answer.status, 200U) << answer.error;
    std::this_thread::sleep_for(100ms);
  }
  const double frames_after =
      ParseSamples(scrape().body).at("poolwatch_frames_total{loop=\"main\"}");
  stop = true;
  for (std::thread& guesser : guessers) guesser.join();

  EXPECT_LT(slowest, 1s) << "a scrape waited behind bcrypt for "
                         << std::chrono::duration<double>(slowest).count() << " s";
  EXPECT_GT(frames_after, frames_before);
  EXPECT_GT(denied.load(), 0);
  EXPECT_EQ(other.load(), 0) << "every guess is refused, none dropped";
  EXPECT_EQ(HttpRequest(port_, "GET", "/metrics",
                        {{"Authorization", BasicAuth("carol", "opensesame")}}, 60s)
                .status,
            200U);
}

// Asio's ssl::stream encrypts a buffer sequence 8 KiB at a time, so a response of header and
// body over 8 KiB went out as two records in two sends (docs/performance.md, TLS). openssl
// s_client -msg prints every record it receives: the response must be one application-data
// record.
TEST_F(WebConfigTest, AnExpositionUnder16KiBGoesOutAsOneTlsRecord) {
  Start(TlsBlock());
  const CurlResult scrape = Https("/metrics");
  ASSERT_EQ(scrape.status, 200U) << scrape.body;
  ASSERT_GT(scrape.body.size(), 8192U) << "the exposition must outgrow Asio's 8 KiB to tell";
  ASSERT_LT(scrape.body.size(), 15000U) << "and fit one record with its header";

  const RunResult run =
      RunCommand("timeout 10 openssl s_client -connect 127.0.0.1:" + std::to_string(port_) +
                     " -CAfile " + Pki("ca.crt") + " -msg -ign_eof 2>&1",
                 "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
  ASSERT_NE(run.output.find("HTTP/1.1 200 OK"), std::string::npos) << run.output;
  // Each encrypted record received prints "<<< TLS 1.3, InnerContent [length 0001]" and, on
  // the next line, its real content type in hex: 17 for application data (16 handshake, 15
  // alert).
  int application_data = 0;
  std::istringstream lines(run.output);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("<<< ", 0) != 0 || line.find("InnerContent") == std::string::npos) continue;
    std::string type;
    if (std::getline(lines, type) && type.find_first_not_of(' ') != std::string::npos &&
        type.substr(type.find_first_not_of(' '), 2) == "17") {
      ++application_data;
    }
  }
  EXPECT_EQ(application_data, 1) << run.output.substr(0, 4000);
}

TEST_F(WebConfigTest, MinimumVersionIsEnforced) {
  Start(TlsBlock("  min_version: TLS13\n"));
  const CurlResult old_client = Https("/healthz", "--tls-max 1.2");
  EXPECT_NE(old_client.exit_code, 0);
  EXPECT_EQ(old_client.status, 0U) << old_client.body;
  EXPECT_EQ(Https("/healthz", "--tlsv1.3").status, 200U);
}

TEST_F(WebConfigTest, ClientCertificatesAreVerifiedWhenRequired) {
  Start(TlsBlock(
      "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: " + Pki("ca.crt") + "\n"));
  EXPECT_EQ(Https("/metrics").status, 0U) << "no client certificate: no handshake";
  const std::string stranger = "--cert " + Pki("stranger.crt") + " --key " + Pki("stranger.key");
  EXPECT_EQ(Https("/metrics", stranger).status, 0U) << "a certificate the CA did not sign";
  const std::string client = "--cert " + Pki("client.crt") + " --key " + Pki("client.key");
  EXPECT_EQ(Https("/metrics", client).status, 200U);
}

// client_allowed_sans, as the toolkit's VerifyPeerCertificate: a client certificate the CA
// signed gets in only with one of the listed SANs (DNS, e-mail, IP or URI); any other fails the
// handshake, and the server goes on serving the clients it allows.
TEST_F(WebConfigTest, OnlyClientCertificatesWithAnAllowedSanGetIn) {
  const auto with = [](const std::string& name) {
    return "--cert " + Pki(name + ".crt") + " --key " + Pki(name + ".key");
  };
  Start(TlsBlock(
      "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: " + Pki("ca.crt") +
      "\n  client_allowed_sans:\n"
      "    - spiffe://cluster.local/ns/monitoring/sa/prometheus\n"));
  const CurlResult intruder = Https("/metrics", with("intruder"));
  EXPECT_EQ(intruder.status, 0U) << "signed by the CA, but no allowed SAN";
  EXPECT_NE(intruder.body.find("bad certificate"), std::string::npos) << intruder.body;
  EXPECT_EQ(Https("/metrics", with("client")).status, 0U) << "no SAN at all";
  EXPECT_EQ(Https("/metrics", with("stranger")).status, 0U) << "not signed by the CA";
  EXPECT_EQ(Https("/metrics", with("prometheus")).status, 200U);
  EXPECT_EQ(Https("/metrics", with("intruder")).status, 0U);
  EXPECT_EQ(Https("/metrics", with("prometheus")).status, 200U);
  // Every client turned away is a failed handshake on the server's side, counted: the four
  // above, and those the daemon's start was awaited with (no certificate at all).
  const auto failed_handshakes = [&] {
    return ParseSamples(
        Https("/metrics", with("prometheus")).body)["poolwatch_http_tls_handshake_failures_total"];
  };
  double failed = 0;
  EXPECT_TRUE(Eventually([&] { return (failed = failed_handshakes()) >= 4; })) << failed;
  EXPECT_EQ(Https("/metrics", with("intruder")).status, 0U);
  EXPECT_TRUE(Eventually([&] { return failed_handshakes() == failed + 1; })) << failed;

  // Any certificate, signed or not, with an allowed SAN: here an IP address or an e-mail.
  Start(
      TlsBlock("  client_auth_type: RequireAnyClientCert\n"
               "  client_allowed_sans: [10.0.0.7, ops@example.com]\n"));
  EXPECT_EQ(Https("/metrics", with("prometheus")).status, 200U);
  EXPECT_EQ(Https("/metrics", with("intruder")).status, 0U) << "10.0.0.8 is not 10.0.0.7";
  EXPECT_EQ(Https("/metrics", with("stranger")).status, 0U);
  EXPECT_EQ(Https("/metrics").status, 0U) << "no certificate";
  EXPECT_TRUE(daemon_->WaitForLog("RequireAnyClientCert with 2 allowed SANs")) << daemon_->Log();
  // An IPv6 address as Go writes it, shortest.
  Start(
      TlsBlock("  client_auth_type: RequireAnyClientCert\n  client_allowed_sans: [2001:db8::7]\n"));
  EXPECT_EQ(Https("/metrics", with("prometheus")).status, 200U);
  EXPECT_EQ(Https("/metrics", with("intruder")).status, 0U);

  // The healthcheck presents the server's own certificate (IP:127.0.0.1, DNS:localhost): it
  // passes when one of those is allowed, and says what to list when none is.
  const auto healthcheck = [&] {
    return RunPoolwatchd({"--config", config_path_, "--listen",
                          "127.0.0.1:" + std::to_string(port_), "--healthcheck"});
  };
  RunResult check = healthcheck();
  EXPECT_EQ(check.exit_code, 1) << check.output;
  EXPECT_NE(check.output.find("the server's own certificate: for the check to pass, the server "
                              "must accept it: client_allowed_sans must list one of its SANs"),
            std::string::npos)
      << check.output;
  Start(
      TlsBlock("  client_auth_type: RequireAnyClientCert\n"
               "  client_allowed_sans: [10.0.0.7, localhost]\n"));
  check = healthcheck();
  EXPECT_EQ(check.exit_code, 0) << check.output;
}

// cipher_suites, prefer_server_cipher_suites and curve_preferences, by Go's names, as OpenSSL
// clients see them: a suite or group left out is not negotiated, and the order is the server's
// unless prefer_server_cipher_suites is false. The server's key is P-256 (ECDSA suites), which a
// TLS 1.2 client must list among its groups whatever the server's groups for the key exchange.
TEST_F(WebConfigTest, CipherSuitesAndCurvesLimitWhatIsNegotiated) {
  // curl's account of the exchange: "SSL connection using TLSv1.2 / ECDHE-...", "< HTTP/1.1
  // 200 OK", or "curl: (35) ..." when the handshake failed.
  const auto negotiated = [&](const std::string& options) {
    return RunCommand("(curl -sS -v -o /dev/null --max-time 5 --cacert " + Pki("ca.crt") + " " +
                      options + " '" + Url("/metrics") + "' 2>&1)")
        .output;
  };
  const std::string both_aes =
      "--tls-max 1.2 --ciphers ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384";
  Start(
      TlsBlock("  cipher_suites:\n    - TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384\n"
               "    - TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256\n    - TLS_AES_256_GCM_SHA384\n"
               "  curve_preferences: [CurveP384]\n"));
  EXPECT_NE(negotiated("--tls-max 1.2 --ciphers ECDHE-ECDSA-CHACHA20-POLY1305").find("curl:"),
            std::string::npos)
      << "a TLS 1.2 suite left out";
  EXPECT_NE(negotiated("--tls13-ciphers TLS_AES_128_GCM_SHA256").find("curl:"), std::string::npos)
      << "a TLS 1.3 suite left out";
  EXPECT_NE(negotiated("--curves P-256").find("curl:"), std::string::npos) << "a group left out";
  std::string out = negotiated("--curves P-384:P-256 " + both_aes);
  EXPECT_NE(out.find("TLSv1.2 / ECDHE-ECDSA-AES256-GCM-SHA384"), std::string::npos)
      << "the server's first choice over the client's: " << out;
  EXPECT_NE(out.find("< HTTP/1.1 200 OK"), std::string::npos) << out;
  out = negotiated("--curves P-384 --tls13-ciphers TLS_AES_256_GCM_SHA384");
  EXPECT_NE(out.find("TLSv1.3 / TLS_AES_256_GCM_SHA384"), std::string::npos) << out;
  EXPECT_NE(out.find("< HTTP/1.1 200 OK"), std::string::npos) << out;

  Start(
      TlsBlock("  cipher_suites:\n    - TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384\n"
               "    - TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256\n"
               "  prefer_server_cipher_suites: false\n"));
  out = negotiated(both_aes);
  EXPECT_NE(out.find("TLSv1.2 / ECDHE-ECDSA-AES128-GCM-SHA256"), std::string::npos)
      << "the client's first choice: " << out;
  out = negotiated("--curves P-256");
  EXPECT_NE(out.find("< HTTP/1.1 200 OK"), std::string::npos)
      << "OpenSSL's default groups: " << out;
}

// cert, key and client_ca inline: the daemon serves the certificate with its chain, verifies
// client certificates against the inline CA, and its healthcheck presents the inline pair.
TEST_F(WebConfigTest, InlineCertificateKeyAndClientCaServeAsTheirFilesWould) {
  const std::string chain = ReadFile(Pki("server.crt")) + ReadFile(Pki("ca.crt"));
  Start("tls_server_config:\n  cert: " + PemBlock(chain) +
        "  key: " + PemBlock(ReadFile(Pki("server.key"))) +
        "  client_auth_type: RequireAndVerifyClientCert\n  client_ca: " +
        PemBlock(ReadFile(Pki("ca.crt"))));
  const std::string client = "--cert " + Pki("client.crt") + " --key " + Pki("client.key");
  EXPECT_EQ(Https("/metrics", client).status, 200U);
  EXPECT_EQ(Https("/metrics").status, 0U) << "no client certificate";
  EXPECT_EQ(
      Https("/metrics", "--cert " + Pki("stranger.crt") + " --key " + Pki("stranger.key")).status,
      0U)
      << "one the inline CA did not sign";

  const std::string served =
      RunCommand(
          "(timeout 5 openssl s_client -showcerts -connect 127.0.0.1:" + std::to_string(port_) +
          " -cert " + Pki("client.crt") + " -key " + Pki("client.key") + " < /dev/null 2>&1)")
          .output;
  std::size_t certificates = 0;
  for (std::size_t at = served.find("-----BEGIN CERTIFICATE-----"); at != std::string::npos;
       at = served.find("-----BEGIN CERTIFICATE-----", at + 1)) {
    ++certificates;
  }
  EXPECT_EQ(certificates, 2U) << "the server's certificate and the chain after it\n" << served;

  const RunResult check = RunPoolwatchd({"--config", config_path_, "--listen",
                                         "127.0.0.1:" + std::to_string(port_), "--healthcheck"});
  EXPECT_EQ(check.exit_code, 0) << check.output;
}

TEST_F(WebConfigTest, HealthcheckSpeaksTls) {
  Start(TlsBlock() + Users({"alice"}));
  const RunResult check = RunPoolwatchd({"--config", config_path_, "--listen",
                                         "127.0.0.1:" + std::to_string(port_), "--healthcheck"});
  EXPECT_EQ(check.exit_code, 0) << check.output;
  EXPECT_EQ(check.output, "healthy\n");
  // Without the web config, the check speaks plain HTTP to the TLS port, and says what to give it.
  const RunResult plain =
      RunPoolwatchd({"--listen", "127.0.0.1:" + std::to_string(port_), "--healthcheck"});
  EXPECT_EQ(plain.exit_code, 1) << plain.output;
  EXPECT_NE(plain.output.find("answered 400: Client sent an HTTP request to an HTTPS server"),
            std::string::npos)
      << plain.output;
  EXPECT_NE(plain.output.find("it speaks TLS: give --healthcheck the daemon's web config too"),
            std::string::npos)
      << plain.output;
}

// A web config that asks for client certificates: the check presents the server's own, as the
// container's HEALTHCHECK runs it with the daemon's config and no certificate of its own.
TEST_F(WebConfigTest, HealthcheckPresentsTheServersOwnCertificateWhenClientsNeedOne) {
  const auto healthcheck = [&] {
    return RunPoolwatchd({"--config", config_path_, "--listen",
                          "127.0.0.1:" + std::to_string(port_), "--healthcheck"});
  };
  Start(TlsBlock("  client_auth_type: RequireAnyClientCert\n"));
  RunResult check = healthcheck();
  EXPECT_EQ(check.exit_code, 0) << check.output;
  EXPECT_EQ(check.output, "healthy\n");

  // The test CA signed the server's certificate.
  Start(TlsBlock(
      "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: " + Pki("ca.crt") + "\n"));
  check = healthcheck();
  EXPECT_EQ(check.exit_code, 0) << check.output;
  EXPECT_EQ(Https("/healthz").status, 0U) << "other clients still need a certificate";

  // Where a certificate is optional, none is presented: the server's would not verify here.
  Start(TlsBlock("  client_auth_type: VerifyClientCertIfGiven\n  client_ca_file: " +
                 Pki("stranger.crt") + "\n"));
  check = healthcheck();
  EXPECT_EQ(check.exit_code, 0) << check.output;

  // A client CA that did not: unhealthy, and the output says what was presented and why.
  Start(TlsBlock("  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: " +
                 Pki("stranger.crt") + "\n"));
  check = healthcheck();
  EXPECT_EQ(check.exit_code, 1) << check.output;
  EXPECT_NE(check.output.find("unknown ca (as client_auth_type RequireAndVerifyClientCert asks, "
                              "the check presented " +
                              Pki("server.crt") + ", the server's own certificate"),
            std::string::npos)
      << check.output;
}

// An encrypted key: OpenSSL's own password callback would ask for the passphrase on the
// terminal, and a poolwatchd started from one would wait there for ever. It is refused at once,
// saying what to do, with a terminal too (`script` gives it one).
TEST_F(WebConfigTest, AnEncryptedKeyIsRefusedAtOnceEvenFromATerminal) {
  const std::string d = dir_.path().string() + "/";
  MustRun(
      "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -aes256 -pass "
      "pass:secret -out " +
      d + "encrypted.key && openssl req -new -x509 -key " + d +
      "encrypted.key -passin pass:secret -subj /CN=encrypted -days 2 -out " + d + "encrypted.crt");
  const std::string web = dir_.Write("encrypted-web.yml",
                                     "tls_server_config:\n  cert_file: encrypted.crt\n  key_file: "
                                     "encrypted.key\n");
  const std::string config = dir_.Write("encrypted.json", R"({"http": {"listen": "127.0.0.1:0"}})");
  const RunResult run =
      RunCommand("(timeout 10 script -qec '" + std::string(POOLWATCHD_PATH) + " --config " +
                 config + " --web.config.file " + web + "' /dev/null; echo \"exit $?\")");
  EXPECT_NE(run.output.find("exit 2"), std::string::npos) << "124: it waited\n" << run.output;
  EXPECT_NE(run.output.find("tls_server_config.key_file: " + d +
                            "encrypted.key: the key is encrypted, and poolwatchd asks for no "
                            "passphrase"),
            std::string::npos)
      << run.output;
  EXPECT_EQ(run.output.find("pass phrase"), std::string::npos) << run.output;
}

TEST_F(WebConfigTest, BadWebConfigsAreRefusedNamingWhatIsWrong) {
  const auto refused = [&](const std::string& web, const std::string& expected) {
    const std::string web_path = dir_.Write("bad-web.yml", web);
    const std::string config = dir_.Write("bad.json", R"({"http": {"listen": "127.0.0.1:0"}})");
    const RunResult run = RunPoolwatchd({"--config", config, "--web.config.file", web_path});
    EXPECT_EQ(run.exit_code, 2) << web;
    EXPECT_NE(run.output.find(expected), std::string::npos) << run.output;
    EXPECT_NE(run.output.find(web_path), std::string::npos) << run.output;
  };
  refused("tls_server_config:\n  cert_file: /nonexistent/server.crt\n  key_file: " +
              Pki("server.key") + "\n",
          "tls_server_config.cert_file: /nonexistent/server.crt:");
  refused("tls_server_config:\n  cert_file: " + Pki("server.crt") +
              "\n  key_file: " + Pki("client.key") + "\n",
          "tls_server_config.key_file: " + Pki("client.key") + ": ");
  refused("tls_server_config:\n  cert_file: " + Pki("server.crt") + "\n",
          "tls_server_config.key_file: missing (cert_file is set)");
  refused(TlsBlock("  min_version: SSL3\n"),
          "tls_server_config.min_version: must be one of TLS10, TLS11, TLS12, TLS13, got \"SSL3\"");
  refused(TlsBlock("  cipher_suites: [TLS_AES_128_GCM_SHA256]\n"),
          "tls_server_config.cipher_suites: lists TLS 1.3 suites only, so TLS 1.2 and below "
          "(allowed by min_version TLS12) would have none: list some of theirs too, or set "
          "min_version: TLS13 (line 4)");
  refused(TlsBlock("  key: \"-----BEGIN PRIVATE KEY-----\"\n"),
          "tls_server_config.key: set beside key_file: give one of them (line 4)");
  refused("basic_auth_users:\n  alice: secret\n", "basic_auth_users.alice: must be a bcrypt hash");
  refused("tls_server_confg: {}\n", "tls_server_confg: unknown key (line 1)");
  refused("tls_server_config: [", "not valid YAML");
  refused(TlsBlock("  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: " +
                   dir_.path().string() + "\n"),
          "tls_server_config.client_ca_file: " + dir_.path().string() + ": not a regular file");
  // A FIFO would have OpenSSL wait for a writer for ever: refused at once.
  const std::string fifo = (dir_.path() / "fifo.crt").string();
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  const std::string web_path =
      dir_.Write("fifo-web.yml", "tls_server_config:\n  cert_file: " + fifo +
                                     "\n  key_file: " + Pki("server.key") + "\n");
  const RunResult run = RunCommand(std::string("timeout 10 ") + POOLWATCHD_PATH +
                                   " --web.config.file " + web_path + " --check-config");
  EXPECT_EQ(run.exit_code, 2) << run.output;
  EXPECT_NE(run.output.find("tls_server_config.cert_file: " + fifo + ": not a regular file"),
            std::string::npos)
      << run.output;
}

TEST_F(WebConfigTest, AnEmptyWebConfigMeansPlainHttpWithoutAuth) {
  Start("");
  EXPECT_EQ(HttpGet(port_, "/metrics").status, 200U);
}

TEST_F(WebConfigTest, ReloadSwapsTheWebConfigAndKeepsTheOldOneWhenBroken) {
  Start(TlsBlock() + Users({"alice"}));
  ASSERT_EQ(Scrape("alice:secret").status, 200U);

  dir_.Write("web.yml", TlsBlock() + "basic_auth_users:\n  alice: not-a-hash\n");
  daemon_->Signal(SIGHUP);
  ASSERT_TRUE(Eventually([&] {
    const auto s = ParseSamples(Scrape("alice:secret").body);
    return s.contains("poolwatch_config_last_reload_successful") &&
           s.at("poolwatch_config_last_reload_successful") == 0;
  })) << daemon_->Log();
  EXPECT_TRUE(daemon_->WaitForLog("basic_auth_users.alice: must be a bcrypt hash"));
  EXPECT_EQ(Scrape("bob:hunter2").status, 401U);

  dir_.Write("web.yml", TlsBlock() + Users({"bob"}));
  daemon_->Signal(SIGHUP);
  ASSERT_TRUE(Eventually([&] { return Scrape("bob:hunter2").status == 200; })) << daemon_->Log();
  EXPECT_EQ(Scrape("alice:secret").status, 401U);
  EXPECT_EQ(ParseSamples(Scrape("bob:hunter2").body).at("poolwatch_config_last_reload_successful"),
            1);
}

// A certificate renewed on disk (cert-manager updating a mounted Secret, certbot its live/
// links) is served to new connections without a signal, as node_exporter serves it; a renewal
// caught half-way (the certificate written, its key not yet) keeps the running pair and is
// logged once, until the key comes.
TEST_F(WebConfigTest, ARenewedCertificateIsServedWithoutASignal) {
  SelfSignedCertificate(dir_.path(), "renewed", "renewed");
  SelfSignedCertificate(dir_.path(), "third", "third");
  const auto place = [&](const std::string& from, const std::string& to) {
    // As a renewal does: written beside, then renamed over the file the web config names.
    std::filesystem::copy_file(from, dir_.path() / "next",
                               std::filesystem::copy_options::overwrite_existing);
    std::filesystem::rename(dir_.path() / "next", dir_.path() / to);
  };
  place(Pki("server.crt"), "tls.crt");
  place(Pki("server.key"), "tls.key");
  Start("tls_server_config:\n  cert_file: tls.crt\n  key_file: tls.key\n" + Users({"alice"}));
  // The subject of the certificate a new connection is served.
  const auto served = [&] {
    return RunCommand("(timeout 5 openssl s_client -connect 127.0.0.1:" + std::to_string(port_) +
                      " 2>/dev/null | grep '^subject=')")
        .output;
  };
  ASSERT_EQ(served(), "subject=CN = server\n");

  place((dir_.path() / "renewed.key").string(), "tls.key");
  place((dir_.path() / "renewed.crt").string(), "tls.crt");
  ASSERT_TRUE(Eventually([&] { return served() == "subject=CN = renewed\n"; })) << daemon_->Log();
  EXPECT_TRUE(daemon_->WaitForLog("web config: " + (dir_.path() / "tls.crt").string() + ", " +
                                  (dir_.path() / "tls.key").string() +
                                  " changed on disk, loaded again: TLS"))
      << daemon_->Log();

  // Half-way: the new certificate does not match the running key.
  place((dir_.path() / "third.crt").string(), "tls.crt");
  const std::string refused =
      "the TLS files changed on disk but do not load, the running ones stay: "
      "tls_server_config.key_file: " +
      (dir_.path() / "tls.key").string() + ": ";
  ASSERT_TRUE(Eventually([&] {
    served();  // the files are looked at when a connection comes
    return daemon_->Log().find(refused) != std::string::npos;
  })) << daemon_->Log();
  for (int i = 0; i < 3; ++i) {  // over more than the second between two looks at the files
    EXPECT_EQ(served(), "subject=CN = renewed\n");
    std::this_thread::sleep_for(500ms);
  }
  const std::string log = daemon_->Log();
  const std::size_t first = log.find("do not load");
  EXPECT_EQ(log.find("do not load", first + 1), std::string::npos)
      << "logged once, not per connection: " << log;
  // The renewed certificates are self-signed: not checked against the test CA.
  const auto scrape = [&] { return Curl("-k -u alice:secret '" + Url("/metrics") + "'"); };
  EXPECT_EQ(scrape().status, 200U) << "served all along";

  place((dir_.path() / "third.key").string(), "tls.key");
  EXPECT_TRUE(Eventually([&] { return served() == "subject=CN = third\n"; })) << daemon_->Log();
  EXPECT_EQ(ParseSamples(scrape().body).at("poolwatch_config_last_reload_successful"), 1)
      << "not a config reload";

  // A FIFO renamed over the certificate would block the acceptor in OpenSSL's read, and no
  // connection would be accepted again: it is refused, and the running pair serves on.
  ASSERT_EQ(mkfifo((dir_.path() / "next").c_str(), 0600), 0);
  std::filesystem::rename(dir_.path() / "next", dir_.path() / "tls.crt");
  ASSERT_TRUE(Eventually([&] {
    served();
    return daemon_->Log().find(
               "tls_server_config.cert_file: " + (dir_.path() / "tls.crt").string() +
               ": not a regular file") != std::string::npos;
  })) << daemon_->Log();
  EXPECT_EQ(served(), "subject=CN = third\n");
  EXPECT_EQ(scrape().status, 200U);
}

// The real Prometheus scrapes over TLS, checking the certificate, with basic auth; a job with a
// wrong password is refused.
TEST_F(WebConfigTest, PrometheusScrapesOverTlsWithBasicAuth) {
  Start(TlsBlock() + Users({"alice"}));
  const std::string target = "['127.0.0.1:" + std::to_string(port_) + "']";
  const std::string job = "    scheme: https\n    tls_config:\n      ca_file: " + Pki("ca.crt") +
                          "\n    static_configs:\n      - targets: " + target + "\n";
  const std::string config =
      "global:\n  scrape_interval: 1s\nscrape_configs:\n"
      "  - job_name: right\n    basic_auth: {username: alice, password: "
      "secret}\n" +
      job +
      "  - job_name: wrong\n    basic_auth: {username: alice, password: "
      "guess}\n" +
      job;
  const std::uint16_t prometheus_port = FreePort();
  ChildProcess prometheus(
      {"/usr/bin/prometheus", "--config.file=" + dir_.Write("prometheus.yml", config),
       "--storage.tsdb.path=" + (dir_.path() / "prom-data").string(),
       "--web.listen-address=127.0.0.1:" + std::to_string(prometheus_port), "--log.level=warn"});
  const auto up = [&](const std::string& job_name) -> std::string {
    const HttpResult result =
        HttpGet(prometheus_port, "/api/v1/query?query=up%7Bjob%3D%22" + job_name + "%22%7D");
    if (result.status != 200) return "";
    const auto data = nlohmann::json::parse(result.body)["data"]["result"];
    return data.empty() ? "" : data[0]["value"][1].get<std::string>();
  };
  EXPECT_TRUE(Eventually([&] { return up("right") == "1" && up("wrong") == "0"; }, 30s))
      << "right: " << up("right") << ", wrong: " << up("wrong") << "\n"
      << prometheus.Log();
}

}  // namespace
}  // namespace poolwatch::testing
