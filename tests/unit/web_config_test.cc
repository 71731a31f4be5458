#include "web_config.h"

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>

#include "credentials.h"
#include "daemon_process.h"

namespace poolwatch::exporter {
namespace {

// htpasswd -nbBC 5 alice secret (Apache's bcrypt): a test vector for libxcrypt's verification.
constexpr const char* kAliceHash = "$2y$05$kY9WG7yJYwBWcTARoD6Lh.r28327yWzrFpnE6EBcX/29hKGeTcfke";

std::string ErrorOf(const std::string& yaml) {
  try {
    ParseWebConfig(yaml, "web.yml", "/etc/poolwatch");
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

TEST(WebConfigTest, ReadsTheExporterToolkitFormat) {
  const WebConfig config = ParseWebConfig(
      "tls_server_config:\n"
      "  cert_file: server.crt\n"
      "  key_file: /keys/server.key\n"
      "  client_auth_type: VerifyClientCertIfGiven\n"
      "  client_ca_file: ca.crt\n"
      "  min_version: TLS13\n"
      "basic_auth_users:\n"
      "  alice: " +
          std::string(kAliceHash) + "\n",
      "web.yml", "/etc/poolwatch");
  ASSERT_TRUE(config.tls);
  EXPECT_EQ(config.tls->cert_file, "/etc/poolwatch/server.crt") << "relative to the file";
  EXPECT_EQ(config.tls->key_file, "/keys/server.key");
  EXPECT_EQ(config.tls->client_ca_file, "/etc/poolwatch/ca.crt");
  EXPECT_EQ(config.tls->client_auth_type, "VerifyClientCertIfGiven");
  EXPECT_EQ(config.tls->min_version, "TLS13");
  EXPECT_EQ(config.tls->max_version, "TLS13");
  EXPECT_EQ(config.basic_auth_users.at("alice"), kAliceHash);
}

TEST(WebConfigTest, EmptyOrCertlessMeansPlainHttp) {
  EXPECT_FALSE(ParseWebConfig("", "web.yml", "/").tls);
  EXPECT_FALSE(ParseWebConfig("tls_server_config: {}\n", "web.yml", "/").tls);
  EXPECT_FALSE(ParseWebConfig("tls_server_config:\n  min_version: TLS12\n", "web.yml", "/").tls);
  EXPECT_TRUE(ParseWebConfig("basic_auth_users: {}\n", "web.yml", "/").basic_auth_users.empty());
}

TEST(WebConfigTest, RefusesWhatItCannotUseNamingKeyAndLine) {
  EXPECT_EQ(ErrorOf("tls_server_config:\n  cert_file: a.crt\n"),
            "web.yml: tls_server_config.key_file: missing (cert_file is set) (line 2)");
  EXPECT_EQ(ErrorOf("tls_server_config:\n  key_file: a.key\n"),
            "web.yml: tls_server_config.cert_file: missing (key_file is set) (line 2)");
  EXPECT_EQ(ErrorOf("tls_server_config:\n  cert_file: a\n  key_file: b\n  max_version: TLS11\n"),
            "web.yml: tls_server_config.min_version: TLS12 is above max_version TLS11 (line 2)");
  EXPECT_EQ(ErrorOf("tls_server_config:\n  cert_file: a\n  key_file: b\n"
                    "  client_auth_type: RequireAndVerifyClientCert\n"),
            "web.yml: tls_server_config.client_ca_file: required by client_auth_type "
            "RequireAndVerifyClientCert (line 2)");
  EXPECT_EQ(ErrorOf("tls_server_config:\n  cert_file: a\n  key_file: b\n  client_ca_file: c\n"),
            "web.yml: tls_server_config.client_ca_file: set, but client_auth_type NoClientCert "
            "does not verify client certificates (line 2)");
  EXPECT_EQ(ErrorOf("tls_server_config:\n  client_auth_type: Maybe\n"),
            "web.yml: tls_server_config.client_auth_type: must be one of NoClientCert, "
            "RequestClientCert, RequireAnyClientCert, VerifyClientCertIfGiven, "
            "RequireAndVerifyClientCert, got \"Maybe\" (line 2)");
  EXPECT_EQ(ErrorOf("tls_server_config:\n  cert_file: [a, b]\n"),
            "web.yml: tls_server_config.cert_file: must be a string (line 2)");
  EXPECT_EQ(ErrorOf("basic_auth_users:\n  alice: $2y$05$short\n"),
            "web.yml: basic_auth_users.alice: must be a bcrypt hash ($2a$, $2b$ or $2y$, 60 "
            "characters) (line 2)");
  EXPECT_EQ(ErrorOf("basic_auth_users: [alice]\n"),
            "web.yml: basic_auth_users: must be a mapping (line 1)");
  EXPECT_EQ(ErrorOf("basic_auth_users:\n  \"a:b\": " + std::string(kAliceHash) + "\n"),
            "web.yml: basic_auth_users.a:b: a user name must be non-empty and without ':' "
            "(line 2)");
  EXPECT_EQ(ErrorOf("tls_server_config:\n  cert_path: a.crt\n"),
            "web.yml: tls_server_config.cert_path: unknown key (line 2)");
  EXPECT_EQ(ErrorOf("basic_auth_user: {}\n"), "web.yml: basic_auth_user: unknown key (line 1)");
  EXPECT_EQ(ErrorOf("- a\n- b\n"), "web.yml: <root>: must be a mapping (line 1)");
  EXPECT_NE(ErrorOf("tls_server_config: {\n").find("web.yml: not valid YAML"), std::string::npos);
}

// http_server_config as the toolkit has it: the five security headers it allows, set on every
// response, and http2, which poolwatch can only have off.
TEST(WebConfigTest, ReadsTheResponseHeadersTheToolkitAllows) {
  const WebConfig config = ParseWebConfig(
      "http_server_config:\n"
      "  http2: false\n"
      "  headers:\n"
      "    X-Frame-Options: deny\n"
      "    X-Content-Type-Options: nosniff\n"
      "    Content-Security-Policy: \"default-src 'self'\"\n"
      "    Strict-Transport-Security: max-age=31536000; includeSubDomains\n",
      "web.yml", "/");
  EXPECT_EQ(config.headers,
            (std::map<std::string, std::string, std::less<>>{
                {"Content-Security-Policy", "default-src 'self'"},
                {"Strict-Transport-Security", "max-age=31536000; includeSubDomains"},
                {"X-Content-Type-Options", "nosniff"},
                {"X-Frame-Options", "deny"}}));
  EXPECT_TRUE(ParseWebConfig("http_server_config: {}\n", "web.yml", "/").headers.empty());

  EXPECT_EQ(ErrorOf("http_server_config:\n  http2: true\n"),
            "web.yml: http_server_config.http2: poolwatch serves HTTP/1.1 only: set it to false "
            "or leave it out (line 2)");
  EXPECT_EQ(ErrorOf("http_server_config:\n  http2: sometimes\n"),
            "web.yml: http_server_config.http2: must be true or false, got \"sometimes\" (line 2)");
  EXPECT_EQ(ErrorOf("http_server_config:\n  headers:\n    Server: nginx\n"),
            "web.yml: http_server_config.headers.Server: cannot be set (one of "
            "Content-Security-Policy, Strict-Transport-Security, X-Content-Type-Options, "
            "X-Frame-Options, X-XSS-Protection) (line 3)");
  EXPECT_EQ(ErrorOf("http_server_config:\n  headers:\n    X-Frame-Options: allow\n"),
            "web.yml: http_server_config.headers.X-Frame-Options: must be deny or sameorigin, got "
            "\"allow\" (line 3)");
  EXPECT_EQ(ErrorOf("http_server_config:\n  headers:\n    X-XSS-Protection: \"0\\r\\nSet-Cookie: "
                    "a=b\"\n"),
            "web.yml: http_server_config.headers.X-XSS-Protection: must not hold control "
            "characters (line 3)");
  EXPECT_EQ(ErrorOf("http_server_config:\n  headers: [X-Frame-Options]\n"),
            "web.yml: http_server_config.headers: must be a mapping (line 2)");
  EXPECT_EQ(ErrorOf("http_server_config:\n  header: {}\n"),
            "web.yml: http_server_config.header: unknown key (line 2)");
}

// client_allowed_sans, as the toolkit checks it: only where every client must present a
// certificate, since otherwise one without a certificate has no SAN to match.
TEST(WebConfigTest, ReadsTheAllowedSansOfClientCertificates) {
  const std::string tls = "tls_server_config:\n  cert_file: a\n  key_file: b\n";
  const WebConfig config = ParseWebConfig(
      tls +
          "  client_auth_type: RequireAnyClientCert\n  client_allowed_sans:\n"
          "    - prometheus.monitoring.svc\n    - spiffe://cluster.local/sa/prometheus\n",
      "web.yml", "/");
  EXPECT_EQ(config.tls->client_allowed_sans,
            (std::vector<std::string>{"prometheus.monitoring.svc",
                                      "spiffe://cluster.local/sa/prometheus"}));
  EXPECT_TRUE(RequiresClientCertificate(*config.tls));
  EXPECT_TRUE(ParseWebConfig(tls + "  client_allowed_sans: []\n", "web.yml", "/")
                  .tls->client_allowed_sans.empty());

  for (const char* type : {"NoClientCert", "RequestClientCert", "VerifyClientCertIfGiven"}) {
    const std::string ca =
        std::string(type) == "VerifyClientCertIfGiven" ? "  client_ca_file: c\n" : "";
    EXPECT_EQ(ErrorOf(tls + ca + "  client_auth_type: " + type +
                      "\n  client_allowed_sans: [prometheus]\n"),
              "web.yml: tls_server_config.client_allowed_sans: needs client_auth_type "
              "RequireAnyClientCert or RequireAndVerifyClientCert: with " +
                  std::string(type) +
                  ", a client may connect without a certificate, leaving no SAN to match (line " +
                  (ca.empty() ? "5" : "6") + ")");
  }
  EXPECT_EQ(ErrorOf(tls + "  client_auth_type: RequireAnyClientCert\n"
                          "  client_allowed_sans: prometheus\n"),
            "web.yml: tls_server_config.client_allowed_sans: must be a list (line 5)");
  EXPECT_EQ(ErrorOf(tls + "  client_auth_type: RequireAnyClientCert\n"
                          "  client_allowed_sans: [a, \"\", b]\n"),
            "web.yml: tls_server_config.client_allowed_sans: must hold non-empty strings (line 5)");
}

// cipher_suites, prefer_server_cipher_suites and curve_preferences by the names the toolkit
// reads them with (Go's), and each suite of Go's list loads into OpenSSL.
TEST(WebConfigTest, ReadsCipherSuitesAndCurvesByGosNames) {
  const testing::TempDir dir;
  testing::SelfSignedCertificate(dir.path(), "server", "server");
  const std::string tls = "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n";
  const WebConfig config = ParseWebConfig(
      tls +
          "  cipher_suites: [TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, TLS_AES_256_GCM_SHA384]\n"
          "  prefer_server_cipher_suites: false\n  curve_preferences: [X25519, CurveP384]\n",
      "web.yml", dir.path());
  EXPECT_EQ(config.tls->cipher_suites,
            (std::vector<std::string>{"TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
                                      "TLS_AES_256_GCM_SHA384"}));
  EXPECT_FALSE(config.tls->prefer_server_cipher_suites);
  EXPECT_EQ(config.tls->curve_preferences, (std::vector<std::string>{"X25519", "CurveP384"}));
  EXPECT_EQ(WebSecurity(config).Describe(),
            "TLS (TLS12..TLS13, client certificates: NoClientCert, 2 cipher suites in the "
            "client's order, curves X25519 CurveP384)");
  EXPECT_TRUE(ParseWebConfig(tls, "web.yml", dir.path()).tls->prefer_server_cipher_suites);

  std::string all = tls +
                    "  curve_preferences: [CurveP256, CurveP384, CurveP521, X25519]\n"
                    "  cipher_suites:\n";
  for (const char* suite :
       {"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256",
        "TLS_RSA_WITH_AES_128_CBC_SHA", "TLS_RSA_WITH_AES_256_CBC_SHA",
        "TLS_RSA_WITH_AES_128_GCM_SHA256", "TLS_RSA_WITH_AES_256_GCM_SHA384",
        "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA", "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
        "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"}) {
    all += "    - " + std::string(suite) + "\n";
  }
  const WebConfig every = ParseWebConfig(all, "web.yml", dir.path());
  EXPECT_EQ(every.tls->cipher_suites.size(), 17U);
  EXPECT_NO_THROW(WebSecurity{every});

  EXPECT_EQ(ErrorOf(tls + "  cipher_suites: [TLS_RSA_WITH_RC4_128_SHA]\n"),
            "web.yml: tls_server_config.cipher_suites: must name suites of Go's "
            "tls.CipherSuites(), such as TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 or "
            "TLS_AES_128_GCM_SHA256, got \"TLS_RSA_WITH_RC4_128_SHA\" (line 4)");
  EXPECT_NE(ErrorOf(tls + "  cipher_suites: [ECDHE-ECDSA-AES128-GCM-SHA256]\n")
                .find("got \"ECDHE-ECDSA-AES128-GCM-SHA256\""),
            std::string::npos)
      << "OpenSSL's names are not Go's";
  EXPECT_EQ(ErrorOf(tls + "  cipher_suites: [TLS_AES_128_GCM_SHA256]\n"),
            "web.yml: tls_server_config.cipher_suites: lists TLS 1.3 suites only, so TLS 1.2 and "
            "below (allowed by min_version TLS12) would have none: list some of theirs too, or "
            "set min_version: TLS13 (line 4)");
  EXPECT_EQ(ErrorOf(tls + "  min_version: TLS13\n  cipher_suites: [TLS_AES_128_GCM_SHA256]\n"), "");
  EXPECT_EQ(ErrorOf(tls + "  curve_preferences: [P-256]\n"),
            "web.yml: tls_server_config.curve_preferences: must name CurveP256, CurveP384, "
            "CurveP521 or X25519, got \"P-256\" (line 4)");
  EXPECT_EQ(ErrorOf(tls + "  curve_preferences: X25519\n"),
            "web.yml: tls_server_config.curve_preferences: must be a list (line 4)");
  EXPECT_EQ(ErrorOf(tls + "  prefer_server_cipher_suites: maybe\n"),
            "web.yml: tls_server_config.prefer_server_cipher_suites: must be true or false, got "
            "\"maybe\" (line 4)");
}

// cert, key and client_ca inline, as PEM text in the web config (a Kubernetes Secret rendered
// into it, say): each instead of its file, and nothing on disk to watch for renewal.
TEST(WebConfigTest, ReadsInlinePemInsteadOfFiles) {
  const testing::TempDir dir;
  testing::SelfSignedCertificate(dir.path(), "server", "server");
  testing::SelfSignedCertificate(dir.path(), "other", "other");
  const std::string cert = testing::ReadFile(dir.path() / "server.crt");
  const std::string key = testing::ReadFile(dir.path() / "server.key");
  const std::string ca = testing::ReadFile(dir.path() / "other.crt");
  const WebConfig config = ParseWebConfig(
      "tls_server_config:\n  cert: " + testing::PemBlock(cert) +
          "  key: " + testing::PemBlock(key) +
          "  client_auth_type: RequireAndVerifyClientCert\n  client_ca: " + testing::PemBlock(ca),
      "web.yml", dir.path());
  ASSERT_TRUE(config.tls);
  EXPECT_EQ(config.tls->cert, cert);
  EXPECT_EQ(config.tls->key, key);
  EXPECT_EQ(config.tls->client_ca, ca);
  EXPECT_TRUE(TlsFiles(config).empty());
  const WebSecurity security(config);
  EXPECT_NE(security.tls_context(), nullptr);

  const std::string tls = "tls_server_config:\n";
  EXPECT_EQ(ErrorOf(tls + "  cert_file: a.crt\n  cert: x\n  key_file: a.key\n"),
            "web.yml: tls_server_config.cert: set beside cert_file: give one of them (line 3)");
  EXPECT_EQ(ErrorOf(tls + "  key: " + testing::PemBlock(key)),
            "web.yml: tls_server_config.cert_file: missing (key is set) (line 2)");
  EXPECT_EQ(ErrorOf(tls + "  cert: " + testing::PemBlock(cert)),
            "web.yml: tls_server_config.key_file: missing (cert is set) (line 2)");
  EXPECT_EQ(ErrorOf(tls + "  cert: " + testing::PemBlock(cert) +
                    "  key: " + testing::PemBlock(key) + "  client_ca: " + testing::PemBlock(ca)),
            "web.yml: tls_server_config.client_ca: set, but client_auth_type NoClientCert does "
            "not verify client certificates (line 2)");

  // Loaded: text that is not PEM, a key that is not the certificate's, a CA text without one.
  const auto load_error = [&](const std::string& yaml) -> std::string {
    try {
      WebSecurity{ParseWebConfig(yaml, "web.yml", dir.path())};
    } catch (const ConfigError& e) {
      return e.what();
    }
    return "";
  };
  EXPECT_EQ(load_error(tls + "  cert: not a certificate\n  key: " + testing::PemBlock(key)),
            "tls_server_config.cert: no PEM block in it (-----BEGIN CERTIFICATE-----, -----BEGIN "
            "PRIVATE KEY----- and the like)");
  EXPECT_TRUE(load_error(tls + "  cert: " + testing::PemBlock(cert) +
                         "  key: " + testing::PemBlock(testing::ReadFile(dir.path() / "other.key")))
                  .starts_with("tls_server_config.key: "));
  EXPECT_EQ(
      load_error(tls + "  cert: " + testing::PemBlock(cert) + "  key: " + testing::PemBlock(key) +
                 "  client_auth_type: VerifyClientCertIfGiven\n  client_ca: just text\n"),
      "tls_server_config.client_ca: no PEM block in it (-----BEGIN CERTIFICATE-----, "
      "-----BEGIN PRIVATE KEY----- and the like)");
}

// Durations as Go's time.ParseDuration reads them, which is how the toolkit's YAML reads
// rate_limit.interval.
TEST(WebConfigTest, ReadsGoDurations) {
  using namespace std::chrono_literals;
  EXPECT_EQ(ParseGoDuration("0"), 0ns);
  EXPECT_EQ(ParseGoDuration("0s"), 0ns);
  EXPECT_EQ(ParseGoDuration("1s"), 1s);
  EXPECT_EQ(ParseGoDuration("250ms"), 250ms);
  EXPECT_EQ(ParseGoDuration("1.5s"), 1500ms);
  EXPECT_EQ(ParseGoDuration(".5m"), 30s);
  EXPECT_EQ(ParseGoDuration("1m30s"), 90s);
  EXPECT_EQ(ParseGoDuration("1h2m3s4ms5us6ns"), 1h + 2min + 3s + 4ms + 5us + 6ns);
  EXPECT_EQ(ParseGoDuration("7\u00b5s"), 7us);
  EXPECT_EQ(ParseGoDuration("7\u03bcs"), 7us);
  for (const char* bad : {"", "1", "1.5", "s", ".s", "-1s", "+1s", "1 s", "1d", "1sec", "1.2.3s",
                          "1e3s", "1s ", "99999999999h"}) {
    EXPECT_EQ(ParseGoDuration(bad), std::nullopt) << '"' << bad << '"';
  }
}

TEST(WebConfigTest, ReadsTheRateLimitAsTheToolkitDoes) {
  using namespace std::chrono_literals;
  const WebConfig config =
      ParseWebConfig("rate_limit:\n  interval: 100ms\n  burst: 20\n", "web.yml", "/");
  ASSERT_TRUE(config.rate_limit);
  EXPECT_EQ(config.rate_limit->interval, 100ms);
  EXPECT_EQ(config.rate_limit->burst, 20);
  EXPECT_NE(WebSecurity(config).Describe().find("rate limit: bursts of 20, one request per 100ms"),
            std::string::npos)
      << WebSecurity(config).Describe();
  // Off, as in the toolkit: no rate_limit, or an interval of 0 (whatever the burst).
  EXPECT_FALSE(ParseWebConfig("rate_limit: {}\n", "web.yml", "/").rate_limit);
  EXPECT_FALSE(
      ParseWebConfig("rate_limit:\n  interval: 0\n  burst: 5\n", "web.yml", "/").rate_limit);

  EXPECT_EQ(ErrorOf("rate_limit:\n  interval: 1\n  burst: 5\n"),
            "web.yml: rate_limit.interval: must be a duration such as 1s, 500ms or 1m30s, got "
            "\"1\" (line 2)");
  EXPECT_EQ(ErrorOf("rate_limit:\n  interval: 25h\n  burst: 5\n"),
            "web.yml: rate_limit.interval: must be at most 24h, got 25h (line 2)");
  EXPECT_EQ(ErrorOf("rate_limit:\n  interval: 1s\n"),
            "web.yml: rate_limit.burst: missing (with a burst of 0, every request would be "
            "refused) (line 2)");
  for (const char* burst : {"0", "-1", "1.5", "many", "1000001"}) {
    EXPECT_EQ(ErrorOf("rate_limit:\n  interval: 1s\n  burst: " + std::string(burst) + "\n"),
              "web.yml: rate_limit.burst: must be a whole number from 1 to 1000000, got \"" +
                  std::string(burst) + "\" (line 3)");
  }
  EXPECT_EQ(ErrorOf("rate_limit:\n  burst: 5\n"),
            "web.yml: rate_limit.interval: missing (burst is set; interval: 0 turns the limit "
            "off) (line 2)");
  EXPECT_EQ(ErrorOf("rate_limit:\n  interval: 1s\n  burst: 5\n  per_ip: true\n"),
            "web.yml: rate_limit.per_ip: unknown key (line 4)");
  EXPECT_EQ(ErrorOf("rate_limit: 10\n"), "web.yml: rate_limit: must be a mapping (line 1)");
}

// The bucket of golang.org/x/time/rate with rate.Every(interval) and `burst`: full at first,
// one token back per interval, and a reload with the same limit keeps it.
TEST(RateLimiterTest, IsATokenBucketOfBurstTokensRefilledOnePerInterval) {
  using namespace std::chrono_literals;
  RateLimiter limiter;
  const RateLimiter::Clock::time_point t0 = RateLimiter::Clock::now();
  EXPECT_EQ(limiter.Take(t0), 0ns) << "no limit configured";

  limiter.Configure(WebConfig::RateLimit{.interval = 1s, .burst = 3});
  for (int i = 0; i < 3; ++i) EXPECT_EQ(limiter.Take(t0), 0ns) << i;
  EXPECT_EQ(limiter.Take(t0), 1s);
  EXPECT_EQ(limiter.Take(t0 + 400ms), 600ms) << "a refusal takes no token";
  EXPECT_EQ(limiter.Take(t0 + 1s), 0ns);
  EXPECT_EQ(limiter.Take(t0 + 1s), 1s);
  // Idle for long, the bucket holds `burst` tokens, not more.
  const auto t1 = t0 + 1h;
  for (int i = 0; i < 3; ++i) EXPECT_EQ(limiter.Take(t1), 0ns) << i;
  EXPECT_GT(limiter.Take(t1), 0ns);

  limiter.Configure(WebConfig::RateLimit{.interval = 1s, .burst = 3});
  EXPECT_EQ(limiter.Take(t1), 1s) << "the same limit again keeps the spent bucket";
  limiter.Configure(WebConfig::RateLimit{.interval = 1s, .burst = 2});
  EXPECT_EQ(limiter.Take(t1), 0ns) << "a changed limit starts full";
  EXPECT_EQ(limiter.Take(t1), 0ns);
  EXPECT_EQ(limiter.Take(t1), 1s);
  limiter.Configure(std::nullopt);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(limiter.Take(t1), 0ns) << "no limit";

  // The largest burst at the longest interval does not overflow.
  limiter.Configure(WebConfig::RateLimit{.interval = 24h, .burst = 1'000'000});
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(limiter.Take(t1), 0ns) << i;
}

// yaml-cpp keeps a key given twice and finds the first; the toolkit refuses it, and so does
// poolwatch, at the second's line: two hashes for one user must not leave one of them unseen.
TEST(WebConfigTest, RefusesAKeyGivenTwice) {
  const std::string hash(kAliceHash);
  EXPECT_EQ(ErrorOf("basic_auth_users:\n  alice: " + hash + "\n  bob: " + hash +
                    "\n  alice: " + hash + "\n"),
            "web.yml: basic_auth_users.alice: given twice (line 4)");
  EXPECT_EQ(ErrorOf("tls_server_config:\n  min_version: TLS12\n  min_version: TLS13\n"),
            "web.yml: tls_server_config.min_version: given twice (line 3)");
  EXPECT_EQ(ErrorOf("basic_auth_users: {}\nbasic_auth_users:\n  alice: " + hash + "\n"),
            "web.yml: basic_auth_users: given twice (line 2)");
}

TEST(WebConfigTest, TlsMaterialThatCannotBeLoadedIsNamed) {
  WebConfig config;
  config.tls.emplace();
  config.tls->cert_file = "/nonexistent/server.crt";
  config.tls->key_file = "/k";
  try {
    WebSecurity security(config);
    FAIL() << "a missing certificate was accepted";
  } catch (const ConfigError& e) {
    EXPECT_TRUE(
        std::string(e.what()).starts_with("tls_server_config.cert_file: /nonexistent/server.crt: "))
        << e.what();
  }
}

WebSecurity Alice() {
  WebConfig config;
  config.basic_auth_users.emplace("alice", kAliceHash);
  return WebSecurity(std::move(config));
}

// Whether a request is answered, decided as the server does: Check(), then Verify() if needed.
bool Allowed(const WebSecurity& security, std::string_view target, std::string_view authorization) {
  switch (security.Check(target, authorization)) {
    case WebSecurity::Access::kGranted:
      return true;
    case WebSecurity::Access::kDenied:
      return false;
    case WebSecurity::Access::kVerify:
      break;
  }
  return security.Verify(authorization);
}

TEST(WebConfigTest, BasicAuthAcceptsOnlyTheRightPassword) {
  const WebSecurity security = Alice();
  // base64("alice:secret"), base64("alice:wrong"), base64("bob:secret"), base64("alicesecret").
  EXPECT_TRUE(Allowed(security, "/metrics", "Basic YWxpY2U6c2VjcmV0"));
  EXPECT_TRUE(Allowed(security, "/metrics", "basic YWxpY2U6c2VjcmV0")) << "scheme: any case";
  EXPECT_TRUE(Allowed(security, "/metrics", "Basic YWxpY2U6c2VjcmV0")) << "cached: same answer";
  for (const char* header :
       {"", "Basic", "Basic ", "Basic YWxpY2U6d3Jvbmc=", "Basic Ym9iOnNlY3JldA==",
        "Basic YWxpY2VzZWNyZXQ=", "Basic YWxpY2U6c2VjcmV0=", "Basic ***", "Bearer YWxpY2U6c2VjcmV0",
        "YWxpY2U6c2VjcmV0"}) {
    EXPECT_FALSE(Allowed(security, "/metrics", header)) << header;
  }
}

TEST(WebConfigTest, CheckNeverHashesAndVerifyRemembersItsVerdicts) {
  const WebSecurity security = Alice();
  using Access = WebSecurity::Access;
  const std::string right = "Basic YWxpY2U6c2VjcmV0";  // alice:secret
  const std::string wrong = "Basic YWxpY2U6d3Jvbmc=";  // alice:wrong
  EXPECT_EQ(security.Check("/metrics", right), Access::kVerify);
  EXPECT_EQ(security.Check("/metrics", wrong), Access::kVerify);
  EXPECT_EQ(security.Check("/metrics", "Bearer x"), Access::kDenied) << "not basic auth";
  EXPECT_EQ(security.Check("/healthz", ""), Access::kGranted);
  EXPECT_TRUE(security.Verify(right));
  EXPECT_FALSE(security.Verify(wrong));
  EXPECT_FALSE(security.Verify("Bearer x"));
  EXPECT_EQ(security.Check("/metrics", right), Access::kGranted);
  EXPECT_EQ(security.Check("/metrics", wrong), Access::kDenied);
}

TEST(WebConfigTest, AGuesserDoesNotEvictTheGrantedPair) {
  const WebSecurity security = Alice();
  const std::string right = "Basic YWxpY2U6c2VjcmV0";  // alice:secret
  ASSERT_TRUE(security.Verify(right));
  // More wrong passwords than the cache holds (base64 of "alice:" is "YWxpY2U6").
  for (int i = 0; i < 300; ++i) {
    const std::string password = "Basic YWxpY2U6" + std::to_string(1000 + i);  // 4 digits
    ASSERT_FALSE(security.Verify(password)) << password;
  }
  EXPECT_EQ(security.Check("/metrics", right), WebSecurity::Access::kGranted);
}

TEST(WebConfigTest, OnlyTheProbesAreOpenWithoutCredentials) {
  const WebSecurity security = Alice();
  EXPECT_TRUE(Allowed(security, "/healthz", ""));
  EXPECT_TRUE(Allowed(security, "/readyz?x=1", ""));
  for (const char* target :
       {"/metrics", "/debug", "/debug/health", "/", "/healthz/", "/readyzz", "/metrics?/healthz"}) {
    EXPECT_FALSE(Allowed(security, target, "")) << target;
  }
  EXPECT_TRUE(Allowed(WebSecurity(WebConfig{}), "/metrics", "")) << "no users: no auth";
}

TEST(WebConfigTest, DescribesItselfForTheLog) {
  EXPECT_EQ(Alice().Describe(), "plain HTTP, basic auth for 1 user");
  EXPECT_EQ(WebSecurity(WebConfig{}).Describe(), "plain HTTP");
  WebConfig headers;
  headers.headers = {{"X-Frame-Options", "deny"}, {"X-Content-Type-Options", "nosniff"}};
  EXPECT_EQ(WebSecurity(std::move(headers)).Describe(),
            "plain HTTP, headers: X-Content-Type-Options, X-Frame-Options");
}

TEST(WebConfigTest, TlsFileStampsTellAReplacedOrRewrittenFileFromTheLoadedOne) {
  const testing::TempDir dir;
  testing::SelfSignedCertificate(dir.path(), "server", "server");
  testing::SelfSignedCertificate(dir.path(), "renewed", "renewed");
  WebConfig config;
  config.tls.emplace();
  config.tls->cert_file = dir.path() / "server.crt";
  config.tls->key_file = dir.path() / "server.key";
  const WebSecurity loaded(config);
  ASSERT_EQ(loaded.tls_files().size(), 2U) << "the certificate and the key; no client CA is set";
  EXPECT_NE(loaded.tls_files()[0], FileStamp{});
  EXPECT_EQ(StampTlsFiles(config), loaded.tls_files()) << "nothing changed";

  // Renamed over, as a renewal that writes a new file and moves it into place: another inode.
  std::filesystem::copy_file(dir.path() / "renewed.crt", dir.path() / "next.crt");
  std::filesystem::rename(dir.path() / "next.crt", config.tls->cert_file);
  const std::vector<FileStamp> renamed = StampTlsFiles(config);
  EXPECT_NE(renamed[0], loaded.tls_files()[0]);
  EXPECT_NE(renamed[0].inode, loaded.tls_files()[0].inode);
  EXPECT_EQ(renamed[1], loaded.tls_files()[1]) << "the key was not touched";

  // Rewritten in place: the same inode, another size.
  std::ofstream(config.tls->key_file, std::ios::trunc)
      << testing::ReadFile(dir.path() / "renewed.key") << "\n";
  const std::vector<FileStamp> rewritten = StampTlsFiles(config);
  EXPECT_EQ(rewritten[1].inode, loaded.tls_files()[1].inode);
  EXPECT_NE(rewritten[1], loaded.tls_files()[1]);

  // Gone: all zero, unlike any file.
  std::filesystem::remove(config.tls->cert_file);
  EXPECT_EQ(StampTlsFiles(config)[0], FileStamp{});
  EXPECT_TRUE(StampTlsFiles(WebConfig{}).empty()) << "no TLS, no files";
}

}  // namespace
}  // namespace poolwatch::exporter
