#pragma once

#include <openssl/types.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "poolwatch/exporter/exporter.h"
#include "poolwatch/exporter/options.h"

namespace poolwatch::exporter {

// The web configuration file of the Prometheus exporter-toolkit (`--web.config.file`), so that
// the exporter is configured like node_exporter:
//
//   tls_server_config:
//     cert_file: server.crt          # relative paths: to the web config file's directory
//     key_file: server.key           # or inline PEM: cert, key (and client_ca)
//     client_auth_type: RequireAndVerifyClientCert   # default NoClientCert
//     client_ca_file: clients-ca.crt
//     client_allowed_sans: [prometheus.monitoring.svc]   # the client certificate needs one
//     min_version: TLS12             # TLS10..TLS13, default TLS12; max_version default TLS13
//     cipher_suites: [TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384]   # Go's names
//     prefer_server_cipher_suites: true
//     curve_preferences: [X25519, CurveP256]                    # Go's names
//   basic_auth_users:
//     prometheus: $2y$10$...         # bcrypt hashes, e.g. from `htpasswd -nBC 10 prometheus`
//   http_server_config:
//     http2: false                   # poolwatch serves HTTP/1.1 only: true is refused
//     headers:                       # on every response
//       X-Frame-Options: deny
//   rate_limit:                      # a token bucket over all requests but /healthz, /readyz
//     interval: 1s                   # one token back per interval (a Go duration; 0: off)
//     burst: 10                      # tokens when full; a request without one gets 429
//
// Unknown keys are errors: a setting that silently does nothing is worse than none.

struct TlsServerConfig {
  std::filesystem::path cert_file;
  std::filesystem::path key_file;
  std::filesystem::path client_ca_file;  // empty: none
  // Or inline, as PEM text in the web config (cert, key, client_ca): each instead of its file.
  std::string cert;
  std::string key;
  std::string client_ca;
  std::string client_auth_type = "NoClientCert";
  // The client's certificate must have one of these SANs (DNS name, e-mail, IP or URI, exactly
  // as written there); empty: any. Only with a client_auth_type that requires a certificate.
  std::vector<std::string> client_allowed_sans;
  std::string min_version = "TLS12";
  std::string max_version = "TLS13";
  // Go's names (tls.CipherSuites(): TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, ...), in order of
  // preference; empty: OpenSSL's defaults. Those of TLS 1.2 and below replace OpenSSL's list for
  // those versions; TLS 1.3's (TLS_AES_128_GCM_SHA256, ...), where any are listed, its list.
  std::vector<std::string> cipher_suites;
  // The server's order wins (OpenSSL's SSL_OP_CIPHER_SERVER_PREFERENCE), else the client's.
  bool prefer_server_cipher_suites = true;
  // Go's names (CurveP256, CurveP384, CurveP521, X25519), in order of preference; empty:
  // OpenSSL's defaults.
  std::vector<std::string> curve_preferences;
};

struct WebConfig {
  std::optional<TlsServerConfig> tls;                                // none: plain HTTP
  std::map<std::string, std::string, std::less<>> basic_auth_users;  // user -> bcrypt hash
  // http_server_config.headers: set on every response. The toolkit's five security headers
  // only (Strict-Transport-Security, Content-Security-Policy, X-Frame-Options: deny or
  // sameorigin, X-Content-Type-Options: nosniff, X-XSS-Protection).
  std::map<std::string, std::string, std::less<>> headers;
  // rate_limit; none: no limit (also `interval: 0`, as in the toolkit).
  struct RateLimit {
    std::chrono::nanoseconds interval{0};  // > 0
    std::int64_t burst = 0;                // >= 1
    bool operator==(const RateLimit&) const = default;
  };
  std::optional<RateLimit> rate_limit;
};

// A Go duration as the toolkit's YAML reads time.Duration: "0", or numbers with units (ns, us,
// µs, ms, s, m, h) such as "1s", "250ms", "1.5s" or "1m30s". None for anything else, negative
// durations included.
std::optional<std::chrono::nanoseconds> ParseGoDuration(std::string_view text);

// The token bucket of rate_limit, as the toolkit's golang.org/x/time/rate limiter
// (rate.Every(interval), burst): full at first, one token back per interval, at most `burst`.
// Kept as the time at which the bucket is full again, so a request costs one compare.
//
// Thread-safety: all members may be called from any thread.
class RateLimiter {
 public:
  using Clock = std::chrono::steady_clock;

  // Sets the limit; none turns it off. An unchanged limit keeps its bucket, so a reload does not
  // hand out a fresh burst; a changed one starts full.
  void Configure(const std::optional<WebConfig::RateLimit>& limit);

  // Takes a token at `now`: zero if there was one (or no limit), else how long until the next.
  Clock::duration Take(Clock::time_point now);

 private:
  std::mutex mutex_;
  std::optional<WebConfig::RateLimit> limit_;
  Clock::duration tolerance_{};  // (burst - 1) intervals: how far ahead `full_at_` may run
  Clock::time_point full_at_{};  // when full again: (full_at_ - now) / interval tokens spent
};

// Whether `tls`'s client_auth_type lets no client in without a certificate:
// RequireAnyClientCert or RequireAndVerifyClientCert.
bool RequiresClientCertificate(const TlsServerConfig& tls);

// Parses and validates the YAML text; relative file names are resolved against `base_dir`.
// Throws ConfigError naming the key path (and line) and the reason; `origin` prefixes it.
WebConfig ParseWebConfig(std::string_view yaml, std::string_view origin,
                         const std::filesystem::path& base_dir);

// What stat() says of a file, enough to tell it from the file loaded before: another inode (a
// rename over it, or a symlink swapped, as Kubernetes updates a mounted Secret and certbot its
// live/ links), or another size or modification time (a write in place). All zero for a file
// that cannot be looked at.
struct FileStamp {
  std::uint64_t device = 0;
  std::uint64_t inode = 0;
  std::int64_t size = 0;
  std::int64_t modified_ns = 0;
  bool operator==(const FileStamp&) const = default;
};

// The TLS files `config` names: certificate, key and client CA (the ones set), in that order;
// none without TLS.
std::vector<std::filesystem::path> TlsFiles(const WebConfig& config);

// Their stamps, in the same order.
std::vector<FileStamp> StampTlsFiles(const WebConfig& config);

// A loaded web config, ready to serve: the TLS context with its certificate, key and client CA
// loaded and checked, and the basic-auth users.
//
// Thread-safety: all const members may be called from any thread.
class WebSecurity {
 public:
  // Loads the TLS material. Throws ConfigError naming the key, the file and OpenSSL's reason.
  explicit WebSecurity(WebConfig config);
  WebSecurity(const WebSecurity&) = delete;
  WebSecurity& operator=(const WebSecurity&) = delete;

  // The server context; null for plain HTTP.
  SSL_CTX* tls_context() const { return tls_context_.get(); }
  const WebConfig& config() const { return config_; }
  // The TLS files as they were just before they were loaded (StampTlsFiles): when the files on
  // disk no longer match, they are not the ones loaded.
  const std::vector<FileStamp>& tls_files() const { return tls_files_; }

  enum class Access { kGranted, kDenied, kVerify };

  // What a request may get without hashing anything: the path's policy, the header's form and
  // the verdicts seen before. kVerify: a (user, password) pair not seen yet; Verify() decides.
  Access Check(std::string_view target, std::string_view authorization) const;

  // Decides a kVerify with one bcrypt run (milliseconds to tens of them, by the hash's cost;
  // one at a time, as in the exporter-toolkit) and remembers the verdict. An unknown user costs
  // as much as a known one. The HTTP server calls it on a thread of its own, so that its I/O
  // thread never waits for bcrypt.
  bool Verify(std::string_view authorization) const;

  // One line for the log: "TLS (TLS12..TLS13, client certificates: NoClientCert), basic auth
  // for 2 users".
  std::string Describe() const;

 private:
  WebConfig config_;
  std::vector<FileStamp> tls_files_;
  struct FreeContext {
    void operator()(SSL_CTX* context) const;
  };
  std::unique_ptr<SSL_CTX, FreeContext> tls_context_;
  mutable std::mutex bcrypt_mutex_;  // one bcrypt run at a time
  mutable std::mutex cache_mutex_;
  // SHA-256(user, password) of the pairs seen. Apart, so that a guesser filling the cache of
  // failures never evicts the pair Prometheus scrapes with.
  mutable std::unordered_set<std::string> granted_;
  mutable std::unordered_set<std::string> denied_;
};

}  // namespace poolwatch::exporter
