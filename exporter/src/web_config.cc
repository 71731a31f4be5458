#include "web_config.h"

#include <arpa/inet.h>
#include <crypt.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstring>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "endpoints.h"

namespace poolwatch::exporter {

namespace {

constexpr std::size_t kMaxCachedVerdicts = 256;

std::string Where(const YAML::Node& node) {
  const YAML::Mark mark = node.Mark();
  return mark.is_null() ? "" : " (line " + std::to_string(mark.line + 1) + ")";
}

// Walks one YAML mapping, refusing unknown keys.
class MappingReader {
 public:
  MappingReader(const YAML::Node& node, std::string path) : node_(node), path_(std::move(path)) {
    if (!node_.IsMap() && !node_.IsNull()) {
      Fail(path_.empty() ? "<root>" : path_, "must be a mapping", node_);
    }
    // yaml-cpp keeps both, and node_[key] finds the first; the toolkit (UnmarshalStrict)
    // refuses a key given twice.
    if (!node_.IsMap()) return;
    std::set<std::string> keys;
    for (const auto& entry : node_) {
      const auto key = entry.first.as<std::string>();
      if (!keys.insert(key).second) Fail(Path(key), "given twice", entry.first);
    }
  }

  // The scalar at `key`, if present.
  std::optional<std::string> Scalar(const std::string& key) {
    known_.push_back(key);
    if (!node_.IsMap()) return std::nullopt;
    const YAML::Node value = node_[key];
    if (!value || value.IsNull()) return std::nullopt;
    if (!value.IsScalar()) Fail(Path(key), "must be a string", value);
    return value.Scalar();
  }

  // The list of non-empty strings at `key`; empty if absent.
  std::vector<std::string> List(const std::string& key) {
    known_.push_back(key);
    std::vector<std::string> list;
    if (!node_.IsMap()) return list;
    const YAML::Node value = node_[key];
    if (!value || value.IsNull()) return list;
    if (!value.IsSequence()) Fail(Path(key), "must be a list", value);
    for (const YAML::Node& item : value) {
      if (!item.IsScalar() || item.Scalar().empty()) {
        Fail(Path(key), "must hold non-empty strings", item);
      }
      list.push_back(item.Scalar());
    }
    return list;
  }

  YAML::Node Child(const std::string& key) {
    known_.push_back(key);
    return node_.IsMap() ? node_[key] : YAML::Node();
  }

  // Refuses keys not read.
  void Finish() const {
    if (!node_.IsMap()) return;
    for (const auto& entry : node_) {
      const auto key = entry.first.as<std::string>();
      if (std::find(known_.begin(), known_.end(), key) == known_.end()) {
        Fail(Path(key), "unknown key", entry.first);
      }
    }
  }

  std::string Path(std::string_view key) const {
    return path_.empty() ? std::string(key) : path_ + "." + std::string(key);
  }

  [[noreturn]] static void Fail(const std::string& path, const std::string& reason,
                                const YAML::Node& at) {
    throw ConfigError(path + ": " + reason + Where(at));
  }

 private:
  YAML::Node node_;
  std::string path_;
  std::vector<std::string> known_;
};

int TlsVersion(std::string_view name) {
  if (name == "TLS10") return TLS1_VERSION;
  if (name == "TLS11") return TLS1_1_VERSION;
  if (name == "TLS12") return TLS1_2_VERSION;
  if (name == "TLS13") return TLS1_3_VERSION;
  return 0;
}

// The suites of Go's tls.CipherSuites() (those without known security issues), by the names the
// toolkit reads (RFC names; OPENSSL_cipher_name gives OpenSSL's). TLS 1.3's, then the older ones.
constexpr std::array<std::string_view, 3> kGoTls13Suites = {
    "TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"};
constexpr std::array<std::string_view, 14> kGoTls12Suites = {
    "TLS_RSA_WITH_AES_128_CBC_SHA",
    "TLS_RSA_WITH_AES_256_CBC_SHA",
    "TLS_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"};

bool IsTls13Suite(std::string_view name) {
  return std::ranges::find(kGoTls13Suites, name) != kGoTls13Suites.end();
}

bool IsGoCipherSuite(std::string_view name) {
  return IsTls13Suite(name) || std::ranges::find(kGoTls12Suites, name) != kGoTls12Suites.end();
}

// OpenSSL's name of the group the toolkit calls `curve`; empty for none it knows.
std::string_view OpenSslGroup(std::string_view curve) {
  if (curve == "CurveP256") return "P-256";
  if (curve == "CurveP384") return "P-384";
  if (curve == "CurveP521") return "P-521";
  if (curve == "X25519") return "X25519";
  return {};
}

// OpenSSL's most recent error, for messages; clears the queue.
std::string OpenSslError() {
  const unsigned long code = ERR_get_error();  // NOLINT(google-runtime-int): OpenSSL's type
  ERR_clear_error();
  if (code == 0) return "unknown OpenSSL error";
  std::array<char, 256> text{};
  ERR_error_string_n(code, text.data(), text.size());
  return text.data();
}

// OpenSSL's password callback for an encrypted key: none, so that the load fails at once, and
// `*asked` (a bool, if given) set. OpenSSL's own would ask on the terminal, and a poolwatchd
// started from one would wait there.
int NoPassword(char* /*buffer*/, int /*size*/, int /*rwflag*/, void* asked) {
  if (asked != nullptr) *static_cast<bool*>(asked) = true;
  return 0;
}

// Refuses inline PEM text (`key` of tls_server_config) with OpenSSL's reason, or, where there
// was no PEM block at all, with what it should hold.
[[noreturn]] void FailInline(const std::string& key) {
  const unsigned long error = ERR_peek_last_error();  // NOLINT(google-runtime-int): OpenSSL's type
  if (ERR_GET_LIB(error) == ERR_LIB_PEM && ERR_GET_REASON(error) == PEM_R_NO_START_LINE) {
    ERR_clear_error();
    throw ConfigError("tls_server_config." + key +
                      ": no PEM block in it (-----BEGIN CERTIFICATE-----, -----BEGIN PRIVATE "
                      "KEY----- and the like)");
  }
  throw ConfigError("tls_server_config." + key + ": " + OpenSslError());
}

// A memory BIO over `pem`, freed with it.
using Bio = std::unique_ptr<BIO, decltype(&BIO_free)>;
Bio ReadPem(std::string_view pem) {
  return {BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), &BIO_free};
}

// SSL_CTX_use_certificate_chain_file for PEM text: the first certificate is the server's, the
// rest its chain. False with OpenSSL's error queued.
bool UsePemCertificateChain(SSL_CTX* context, std::string_view pem) {
  const Bio bio = ReadPem(pem);
  X509* const leaf = PEM_read_bio_X509_AUX(bio.get(), nullptr, nullptr, nullptr);
  if (leaf == nullptr) return false;
  const bool used = SSL_CTX_use_certificate(context, leaf) == 1;
  X509_free(leaf);
  if (!used || SSL_CTX_clear_chain_certs(context) != 1) return false;
  while (X509* const link = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
    if (SSL_CTX_add0_chain_cert(context, link) != 1) {
      X509_free(link);
      return false;
    }
  }
  // The read that found no more certificates left an error: the end of the text.
  if (ERR_GET_REASON(ERR_peek_last_error()) != PEM_R_NO_START_LINE) return false;
  ERR_clear_error();
  return true;
}

// The server's private key, from key or key_file, checked against its certificate. An
// encrypted one is refused saying so: poolwatchd asks for no passphrase, as the toolkit.
void UsePrivateKey(SSL_CTX* context, const TlsServerConfig& tls) {
  bool asked = false;
  bool used = false;
  if (!tls.key.empty()) {
    const Bio bio = ReadPem(tls.key);
    EVP_PKEY* const key = PEM_read_bio_PrivateKey(bio.get(), nullptr, NoPassword, &asked);
    used = key != nullptr && SSL_CTX_use_PrivateKey(context, key) == 1;
    EVP_PKEY_free(key);
  } else {
    SSL_CTX_set_default_passwd_cb_userdata(context, &asked);
    used = SSL_CTX_use_PrivateKey_file(context, tls.key_file.c_str(), SSL_FILETYPE_PEM) == 1;
    SSL_CTX_set_default_passwd_cb_userdata(context, nullptr);
  }
  if (used && SSL_CTX_check_private_key(context) == 1) return;
  const std::string key = tls.key.empty() ? "key_file: " + tls.key_file.string() : "key";
  if (asked) {
    ERR_clear_error();
    throw ConfigError("tls_server_config." + key +
                      ": the key is encrypted, and poolwatchd asks for no passphrase: give it "
                      "the key decrypted (openssl pkey -in KEY -out PLAIN), readable by "
                      "poolwatchd alone");
  }
  if (!tls.key.empty()) FailInline("key");
  throw ConfigError("tls_server_config." + key + ": " + OpenSslError());
}

// Adds every certificate of `pem` to `store`; false if there is none, or one that is not.
bool AddPemCertificates(X509_STORE* store, std::string_view pem) {
  const Bio bio = ReadPem(pem);
  std::size_t added = 0;
  while (X509* const certificate = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
    const bool ok = X509_STORE_add_cert(store, certificate) == 1;
    X509_free(certificate);
    if (!ok) return false;
    ++added;
  }
  if (ERR_GET_REASON(ERR_peek_last_error()) != PEM_R_NO_START_LINE) return false;
  if (added == 0) return false;  // "no start line" stays queued: there was no certificate
  ERR_clear_error();
  return true;
}

// The subject alternative names of `certificate`, spelled as Go's crypto/x509 gives them to
// the toolkit's check of client_allowed_sans: DNS names, e-mail addresses and URIs as written,
// IP addresses as net.IP.String() (an IPv4-mapped IPv6 address as IPv4).
std::vector<std::string> SubjectAltNames(X509* certificate) {
  std::vector<std::string> names;
  auto* const sans = static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(certificate, NID_subject_alt_name, nullptr, nullptr));
  if (sans == nullptr) return names;
  for (int i = 0; i < sk_GENERAL_NAME_num(sans); ++i) {
    const GENERAL_NAME* const name = sk_GENERAL_NAME_value(sans, i);
    if (name->type == GEN_DNS || name->type == GEN_EMAIL || name->type == GEN_URI) {
      // dNSName, rfc822Name and uniformResourceIdentifier are IA5Strings alike.
      const ASN1_IA5STRING* const text = name->d.ia5;
      names.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(text)),
                         static_cast<std::size_t>(ASN1_STRING_length(text)));
      continue;
    }
    if (name->type != GEN_IPADD) continue;
    const unsigned char* const data = ASN1_STRING_get0_data(name->d.iPAddress);
    const auto size = static_cast<std::size_t>(ASN1_STRING_length(name->d.iPAddress));
    if (size == 4 || size == 16) {
      static constexpr std::array<unsigned char, 12> kV4Mapped = {0, 0, 0, 0, 0,    0,
                                                                  0, 0, 0, 0, 0xff, 0xff};
      const bool v4 = size == 4 || std::equal(kV4Mapped.begin(), kV4Mapped.end(), data);
      std::array<char, INET6_ADDRSTRLEN> text{};
      if (inet_ntop(v4 ? AF_INET : AF_INET6, v4 ? data + size - 4 : data, text.data(),
                    text.size()) != nullptr) {
        names.emplace_back(text.data());
      }
    }
  }
  GENERAL_NAMES_free(sans);
  return names;
}

// Where an SSL_CTX keeps its client_allowed_sans, freed with it.
int AllowedSansIndex() {
  static const int index = SSL_CTX_get_ex_new_index(
      0, nullptr, nullptr, nullptr,
      [](void* /*parent*/, void* sans, CRYPTO_EX_DATA* /*data*/, int /*index*/, long /*argl*/,
         void* /*argp*/) { delete static_cast<std::vector<std::string>*>(sans); });
  return index;
}

// Whether the certificate `store` is at has an allowed SAN; true above the client's own
// certificate (depth 0), where the chain is checked.
bool HasAllowedSan(X509_STORE_CTX* store) {
  if (X509_STORE_CTX_get_error_depth(store) != 0) return true;
  auto* const ssl =
      static_cast<SSL*>(X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx()));
  const auto* const allowed = static_cast<const std::vector<std::string>*>(
      SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), AllowedSansIndex()));
  for (const std::string& name : SubjectAltNames(X509_STORE_CTX_get_current_cert(store))) {
    if (allowed != nullptr && std::ranges::find(*allowed, name) != allowed->end()) return true;
  }
  // As Go answers a VerifyPeerCertificate error: a bad_certificate alert.
  X509_STORE_CTX_set_error(store, X509_V_ERR_CERT_REJECTED);
  return false;
}

bool IsClientAuthType(std::string_view type) {
  for (std::string_view known : {"NoClientCert", "RequestClientCert", "RequireAnyClientCert",
                                 "VerifyClientCertIfGiven", "RequireAndVerifyClientCert"}) {
    if (type == known) return true;
  }
  return false;
}

// http_server_config, as the toolkit reads it: the response headers it lets a web config set
// (and the values it lets the enumerated ones have), and http2, which poolwatch can only have
// off.
void ReadHttpServerConfig(const YAML::Node& node, WebConfig& config) {
  MappingReader http(node, "http_server_config");
  if (const auto http2 = http.Scalar("http2")) {
    bool on = true;
    if (!YAML::convert<bool>::decode(node["http2"], on)) {
      http.Fail("http_server_config.http2", "must be true or false, got \"" + *http2 + "\"",
                node["http2"]);
    }
    if (on) {
      http.Fail("http_server_config.http2",
                "poolwatch serves HTTP/1.1 only: set it to false or leave it out", node["http2"]);
    }
  }
  const YAML::Node headers = http.Child("headers");
  if (headers && !headers.IsNull()) {
    if (!headers.IsMap()) http.Fail("http_server_config.headers", "must be a mapping", headers);
    static const std::map<std::string, std::vector<std::string>, std::less<>> kAllowed = {
        {"Content-Security-Policy", {}},
        {"Strict-Transport-Security", {}},
        {"X-Content-Type-Options", {"nosniff"}},
        {"X-Frame-Options", {"deny", "sameorigin"}},
        {"X-XSS-Protection", {}}};
    for (const auto& entry : headers) {
      const auto name = entry.first.as<std::string>();
      const std::string key = "http_server_config.headers." + name;
      const auto allowed = kAllowed.find(name);
      if (allowed == kAllowed.end()) {
        http.Fail(key,
                  "cannot be set (one of Content-Security-Policy, Strict-Transport-Security, "
                  "X-Content-Type-Options, X-Frame-Options, X-XSS-Protection)",
                  entry.first);
      }
      if (!entry.second.IsScalar()) http.Fail(key, "must be a string", entry.second);
      const std::string& value = entry.second.Scalar();
      if (std::ranges::any_of(value, [](char c) {
            return (static_cast<unsigned char>(c) < 0x20 && c != '\t') || c == 0x7f;
          })) {
        http.Fail(key, "must not hold control characters", entry.second);
      }
      const std::vector<std::string>& values = allowed->second;
      if (!values.empty() && std::ranges::find(values, value) == values.end()) {
        std::string reason = "must be ";
        for (const std::string& v : values) {
          if (&v != &values.front()) reason += " or ";
          reason += v;
        }
        reason.append(", got \"").append(value).append("\"");
        http.Fail(key, reason, entry.second);
      }
      if (!config.headers.emplace(name, value).second) http.Fail(key, "given twice", entry.first);
    }
  }
  http.Finish();
}

// The longest interval and the largest burst rate_limit takes: a day between requests is no
// longer a rate limit, and no scraper needs a burst of a million.
constexpr std::chrono::hours kMaxRateLimitInterval{24};
constexpr std::int64_t kMaxRateLimitBurst = 1'000'000;

// rate_limit, as the toolkit reads it: interval 0 (or none) turns it off. Where the toolkit's
// limiter would quietly refuse every request (an interval without a burst), this is an error.
void ReadRateLimit(const YAML::Node& node, WebConfig& config) {
  MappingReader rate(node, "rate_limit");
  const std::optional<std::string> interval_text = rate.Scalar("interval");
  const std::optional<std::string> burst_text = rate.Scalar("burst");
  rate.Finish();
  if (!interval_text) {
    if (burst_text) {
      rate.Fail("rate_limit.interval", "missing (burst is set; interval: 0 turns the limit off)",
                node);
    }
    return;
  }
  const std::optional<std::chrono::nanoseconds> interval = ParseGoDuration(*interval_text);
  if (!interval) {
    rate.Fail("rate_limit.interval",
              "must be a duration such as 1s, 500ms or 1m30s, got \"" + *interval_text + "\"",
              node["interval"]);
  }
  if (*interval > kMaxRateLimitInterval) {
    rate.Fail("rate_limit.interval", "must be at most 24h, got " + *interval_text,
              node["interval"]);
  }
  if (interval->count() == 0) return;
  std::int64_t burst = 0;
  if (!burst_text) {
    rate.Fail("rate_limit.burst", "missing (with a burst of 0, every request would be refused)",
              node);
  }
  if (!YAML::convert<std::int64_t>::decode(node["burst"], burst) || burst < 1 ||
      burst > kMaxRateLimitBurst) {
    rate.Fail("rate_limit.burst",
              "must be a whole number from 1 to " + std::to_string(kMaxRateLimitBurst) +
                  ", got \"" + *burst_text + "\"",
              node["burst"]);
  }
  config.rate_limit = WebConfig::RateLimit{.interval = *interval, .burst = burst};
}

// "1s", "250ms", "90s": the interval as the config would give it, for the log.
std::string FormatInterval(std::chrono::nanoseconds interval) {
  using namespace std::chrono;
  for (const auto& [unit, suffix] : {std::pair<nanoseconds, const char*>{hours{1}, "h"},
                                     {minutes{1}, "m"},
                                     {seconds{1}, "s"},
                                     {milliseconds{1}, "ms"},
                                     {microseconds{1}, "us"}}) {
    if (interval % unit == nanoseconds{0}) return std::to_string(interval / unit) + suffix;
  }
  return std::to_string(interval.count()) + "ns";
}

// "$2a$", "$2b$" or "$2y$", a two-digit cost, "$", then 53 characters of bcrypt's base64.
bool IsBcryptHash(std::string_view hash) {
  if (hash.size() != 60 || !hash.starts_with("$2") || hash[3] != '$' || hash[6] != '$') {
    return false;
  }
  if (hash[2] != 'a' && hash[2] != 'b' && hash[2] != 'y') return false;
  if (!std::isdigit(static_cast<unsigned char>(hash[4])) ||
      !std::isdigit(static_cast<unsigned char>(hash[5]))) {
    return false;
  }
  return hash.substr(7).find_first_not_of(
             "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789") ==
         std::string_view::npos;
}

std::optional<std::string> DecodeBase64(std::string_view text) {
  if (text.empty() || text.size() % 4 != 0) return std::nullopt;
  std::string out(text.size() / 4 * 3, '\0');
  const int length = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                     reinterpret_cast<const unsigned char*>(text.data()),
                                     static_cast<int>(text.size()));
  if (length < 0) return std::nullopt;
  // EVP_DecodeBlock counts the padding as zero bytes.
  const std::size_t padding = text.ends_with("==") ? 2 : text.ends_with('=') ? 1 : 0;
  out.resize(static_cast<std::size_t>(length) - padding);
  return out;
}

std::string Sha256(std::string_view a, std::string_view b) {
  std::string input;
  input.reserve(a.size() + 1 + b.size());
  input.append(a).push_back('\0');
  input.append(b);
  std::string digest(EVP_MAX_MD_SIZE, '\0');
  unsigned int size = 0;
  EVP_Digest(input.data(), input.size(), reinterpret_cast<unsigned char*>(digest.data()), &size,
             EVP_sha256(), nullptr);
  digest.resize(size);
  return digest;
}

bool EqualsIgnoringCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

// The user and password of a basic-auth Authorization header; nothing if it is not one.
struct Credentials {
  std::string user;
  std::string password;
};

std::optional<Credentials> ParseBasicAuth(std::string_view authorization) {
  const std::size_t space = authorization.find(' ');
  if (space == std::string_view::npos ||
      !EqualsIgnoringCase(authorization.substr(0, space), "Basic")) {
    return std::nullopt;
  }
  std::string_view encoded = authorization.substr(space + 1);
  while (!encoded.empty() && encoded.front() == ' ') encoded.remove_prefix(1);
  std::optional<std::string> decoded = DecodeBase64(encoded);
  if (!decoded) return std::nullopt;
  const std::size_t colon = decoded->find(':');
  if (colon == std::string::npos) return std::nullopt;
  return Credentials{decoded->substr(0, colon), decoded->substr(colon + 1)};
}

}  // namespace

WebConfig ParseWebConfig(std::string_view yaml, std::string_view origin,
                         const std::filesystem::path& base_dir) {
  if (yaml.size() > kMaxConfigBytes) {
    throw ConfigError(std::string(origin) + ": larger than " + std::to_string(kMaxConfigBytes) +
                      " bytes");
  }
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml));
  } catch (const YAML::Exception& e) {
    throw ConfigError(std::string(origin) + ": not valid YAML: " + e.what());
  }

  WebConfig config;
  try {
    MappingReader reader(root, "");
    const YAML::Node tls_node = reader.Child("tls_server_config");
    if (tls_node && !tls_node.IsNull()) {
      MappingReader tls(tls_node, "tls_server_config");
      TlsServerConfig out;
      const auto path = [&](const std::string& key) -> std::filesystem::path {
        const auto value = tls.Scalar(key);
        if (!value || value->empty()) return {};
        const std::filesystem::path file(*value);
        return file.is_absolute() ? file : base_dir / file;
      };
      out.cert_file = path("cert_file");
      out.key_file = path("key_file");
      out.client_ca_file = path("client_ca_file");
      // Inline PEM, each instead of its file, not beside it: which one would be served?
      for (const auto& [key, file, text] :
           {std::tuple{"cert", &out.cert_file, &out.cert},
            std::tuple{"key", &out.key_file, &out.key},
            std::tuple{"client_ca", &out.client_ca_file, &out.client_ca}}) {
        *text = tls.Scalar(key).value_or("");
        if (!text->empty() && !file->empty()) {
          tls.Fail(tls.Path(key), "set beside " + std::string(key) + "_file: give one of them",
                   tls_node[key]);
        }
      }
      if (auto type = tls.Scalar("client_auth_type")) {
        if (!IsClientAuthType(*type)) {
          tls.Fail(tls.Path("client_auth_type"),
                   "must be one of NoClientCert, RequestClientCert, RequireAnyClientCert, "
                   "VerifyClientCertIfGiven, RequireAndVerifyClientCert, got \"" +
                       *type + "\"",
                   tls_node["client_auth_type"]);
        }
        out.client_auth_type = *type;
      }
      out.client_allowed_sans = tls.List("client_allowed_sans");
      out.cipher_suites = tls.List("cipher_suites");
      for (const std::string& suite : out.cipher_suites) {
        if (!IsGoCipherSuite(suite)) {
          tls.Fail(tls.Path("cipher_suites"),
                   "must name suites of Go's tls.CipherSuites(), such as "
                   "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 or TLS_AES_128_GCM_SHA256, got \"" +
                       suite + "\"",
                   tls_node["cipher_suites"]);
        }
      }
      if (const auto prefer = tls.Scalar("prefer_server_cipher_suites")) {
        if (!YAML::convert<bool>::decode(tls_node["prefer_server_cipher_suites"],
                                         out.prefer_server_cipher_suites)) {
          tls.Fail(tls.Path("prefer_server_cipher_suites"),
                   "must be true or false, got \"" + *prefer + "\"",
                   tls_node["prefer_server_cipher_suites"]);
        }
      }
      out.curve_preferences = tls.List("curve_preferences");
      for (const std::string& curve : out.curve_preferences) {
        if (OpenSslGroup(curve).empty()) {
          tls.Fail(tls.Path("curve_preferences"),
                   "must name CurveP256, CurveP384, CurveP521 or X25519, got \"" + curve + "\"",
                   tls_node["curve_preferences"]);
        }
      }
      for (const char* key : {"min_version", "max_version"}) {
        if (auto version = tls.Scalar(key)) {
          if (TlsVersion(*version) == 0) {
            tls.Fail(tls.Path(key),
                     "must be one of TLS10, TLS11, TLS12, TLS13, got \"" + *version + "\"",
                     tls_node[key]);
          }
          (std::string_view(key) == "min_version" ? out.min_version : out.max_version) = *version;
        }
      }
      tls.Finish();

      // As the toolkit: no certificate and no key means plain HTTP; one without the other is
      // an error.
      const bool has_cert = !out.cert_file.empty() || !out.cert.empty();
      const bool has_key = !out.key_file.empty() || !out.key.empty();
      const bool any = has_cert || has_key;
      if (any && !has_cert) {
        tls.Fail("tls_server_config.cert_file",
                 std::string("missing (") + (out.key.empty() ? "key_file" : "key") + " is set)",
                 tls_node);
      }
      if (any && !has_key) {
        tls.Fail("tls_server_config.key_file",
                 std::string("missing (") + (out.cert.empty() ? "cert_file" : "cert") + " is set)",
                 tls_node);
      }
      const bool verifies = out.client_auth_type == "VerifyClientCertIfGiven" ||
                            out.client_auth_type == "RequireAndVerifyClientCert";
      const bool has_client_ca = !out.client_ca_file.empty() || !out.client_ca.empty();
      if (verifies && !has_client_ca) {
        tls.Fail("tls_server_config.client_ca_file",
                 "required by client_auth_type " + out.client_auth_type, tls_node);
      }
      if (has_client_ca && !verifies) {
        tls.Fail(out.client_ca.empty() ? "tls_server_config.client_ca_file"
                                       : "tls_server_config.client_ca",
                 "set, but client_auth_type " + out.client_auth_type +
                     " does not verify client certificates",
                 tls_node);
      }
      if (!out.client_allowed_sans.empty() && !RequiresClientCertificate(out)) {
        tls.Fail(tls.Path("client_allowed_sans"),
                 "needs client_auth_type RequireAnyClientCert or RequireAndVerifyClientCert: "
                 "with " +
                     out.client_auth_type +
                     ", a client may connect without a certificate, leaving no SAN to match",
                 tls_node["client_allowed_sans"]);
      }
      if (TlsVersion(out.min_version) > TlsVersion(out.max_version)) {
        tls.Fail("tls_server_config.min_version",
                 out.min_version + " is above max_version " + out.max_version, tls_node);
      }
      if (!out.cipher_suites.empty() && std::ranges::all_of(out.cipher_suites, IsTls13Suite) &&
          TlsVersion(out.min_version) < TLS1_3_VERSION) {
        tls.Fail(tls.Path("cipher_suites"),
                 "lists TLS 1.3 suites only, so TLS 1.2 and below (allowed by min_version " +
                     out.min_version +
                     ") would have none: list some of theirs too, or set min_version: TLS13",
                 tls_node["cipher_suites"]);
      }
      if (any) {
        config.tls = std::move(out);
      } else if (out.client_auth_type != "NoClientCert") {
        tls.Fail("tls_server_config.cert_file",
                 "missing (needed for client_auth_type " + out.client_auth_type + ")", tls_node);
      }
    }

    const YAML::Node users = reader.Child("basic_auth_users");
    if (users && !users.IsNull()) {
      if (!users.IsMap()) reader.Fail("basic_auth_users", "must be a mapping", users);
      for (const auto& entry : users) {
        const auto user = entry.first.as<std::string>();
        const std::string key = "basic_auth_users." + user;
        if (user.empty() || user.find(':') != std::string::npos) {
          reader.Fail(key, "a user name must be non-empty and without ':'", entry.first);
        }
        if (!entry.second.IsScalar() || !IsBcryptHash(entry.second.Scalar())) {
          reader.Fail(key, "must be a bcrypt hash ($2a$, $2b$ or $2y$, 60 characters)",
                      entry.second);
        }
        if (!config.basic_auth_users.emplace(user, entry.second.Scalar()).second) {
          reader.Fail(key, "given twice", entry.first);
        }
      }
    }
    const YAML::Node http_node = reader.Child("http_server_config");
    if (http_node && !http_node.IsNull()) ReadHttpServerConfig(http_node, config);
    const YAML::Node rate_node = reader.Child("rate_limit");
    if (rate_node && !rate_node.IsNull()) ReadRateLimit(rate_node, config);
    reader.Finish();
  } catch (const ConfigError& e) {
    throw ConfigError(std::string(origin) + ": " + e.what());
  } catch (const YAML::Exception& e) {
    throw ConfigError(std::string(origin) + ": " + e.what());
  }
  return config;
}

bool RequiresClientCertificate(const TlsServerConfig& tls) {
  return tls.client_auth_type == "RequireAnyClientCert" ||
         tls.client_auth_type == "RequireAndVerifyClientCert";
}

std::optional<std::chrono::nanoseconds> ParseGoDuration(std::string_view text) {
  using Nanoseconds = std::chrono::nanoseconds;
  if (text == "0") return Nanoseconds{0};
  // Longer units first, so that "ms" is not read as "m" followed by "s".
  static constexpr std::array<std::pair<std::string_view, double>, 8> kUnits = {{{"ns", 1},
                                                                                 {"us", 1e3},
                                                                                 {"\u00b5s", 1e3},
                                                                                 {"\u03bcs", 1e3},
                                                                                 {"ms", 1e6},
                                                                                 {"s", 1e9},
                                                                                 {"m", 60e9},
                                                                                 {"h", 3600e9}}};
  if (text.empty()) return std::nullopt;
  double total = 0;
  while (!text.empty()) {
    const std::size_t number_size = text.find_first_not_of("0123456789.");
    const std::string_view number = text.substr(0, number_size);
    double value = 0;
    const auto [end, error] = std::from_chars(number.data(), number.data() + number.size(), value,
                                              std::chars_format::fixed);
    if (number.empty() || number == "." || error != std::errc() ||
        end != number.data() + number.size()) {
      return std::nullopt;
    }
    text.remove_prefix(number.size());
    const auto unit =
        std::ranges::find_if(kUnits, [&](const auto& u) { return text.starts_with(u.first); });
    if (unit == kUnits.end()) return std::nullopt;
    text.remove_prefix(unit->first.size());
    total += value * unit->second;
  }
  // Past about 292 years, Go refuses it too; the caller bounds it far below.
  if (total >= 9.2e18) return std::nullopt;
  return Nanoseconds{std::llround(total)};
}

void RateLimiter::Configure(const std::optional<WebConfig::RateLimit>& limit) {
  std::scoped_lock lock(mutex_);
  if (limit == limit_) return;
  limit_ = limit;
  full_at_ = {};
  tolerance_ = {};
  if (!limit) return;
  // (burst - 1) intervals, at most a century: past that, no client waits anyway, and full_at_
  // stays far from overflowing.
  constexpr Clock::duration kCentury = std::chrono::hours{24 * 365 * 100};
  const auto interval = std::chrono::duration_cast<Clock::duration>(limit->interval);
  tolerance_ = limit->burst - 1 > kCentury / interval ? kCentury : interval * (limit->burst - 1);
}

RateLimiter::Clock::duration RateLimiter::Take(Clock::time_point now) {
  std::scoped_lock lock(mutex_);
  if (!limit_) return {};
  const Clock::time_point from = std::max(full_at_, now);
  if (from - now > tolerance_) return from - now - tolerance_;
  full_at_ = from + std::chrono::duration_cast<Clock::duration>(limit_->interval);
  return {};
}

std::vector<std::filesystem::path> TlsFiles(const WebConfig& config) {
  std::vector<std::filesystem::path> files;
  if (!config.tls) return files;
  for (const std::filesystem::path& file :
       {config.tls->cert_file, config.tls->key_file, config.tls->client_ca_file}) {
    if (!file.empty()) files.push_back(file);
  }
  return files;
}

std::vector<FileStamp> StampTlsFiles(const WebConfig& config) {
  std::vector<FileStamp> stamps;
  for (const std::filesystem::path& file : TlsFiles(config)) {
    FileStamp& stamp = stamps.emplace_back();
    struct stat info {};
    if (::stat(file.c_str(), &info) != 0) continue;
    stamp = {.device = info.st_dev,
             .inode = info.st_ino,
             .size = info.st_size,
             .modified_ns = info.st_mtim.tv_sec * 1'000'000'000LL + info.st_mtim.tv_nsec};
  }
  return stamps;
}

WebSecurity::WebSecurity(WebConfig config)
    : config_(std::move(config)), tls_files_(StampTlsFiles(config_)) {
  if (!config_.tls) return;
  const TlsServerConfig& tls = *config_.tls;
  ERR_clear_error();
  tls_context_.reset(SSL_CTX_new(TLS_server_method()));
  if (!tls_context_) throw ConfigError("tls_server_config: " + OpenSslError());
  SSL_CTX* const context = tls_context_.get();
  const auto fail = [](const std::string& key, const std::filesystem::path& file) {
    throw ConfigError("tls_server_config." + key + ": " + file.string() + ": " + OpenSslError());
  };
  // OpenSSL would wait for ever on a FIFO (at the start, or on the acceptor's strand when the
  // files change on disk) and read a directory as "no start line": refused by name first.
  for (const auto& [key, file] :
       {std::pair{"cert_file", &tls.cert_file}, std::pair{"key_file", &tls.key_file},
        std::pair{"client_ca_file", &tls.client_ca_file}}) {
    std::error_code ec;
    if (!file->empty() && std::filesystem::exists(*file, ec) &&
        !std::filesystem::is_regular_file(*file, ec)) {
      throw ConfigError(std::string("tls_server_config.") + key + ": " + file->string() +
                        ": not a regular file");
    }
  }
  SSL_CTX_set_options(context, SSL_OP_NO_RENEGOTIATION);
  SSL_CTX_set_default_passwd_cb(context, NoPassword);
  if (tls.prefer_server_cipher_suites) {
    SSL_CTX_set_options(context, SSL_OP_CIPHER_SERVER_PREFERENCE);
  }
  SSL_CTX_set_min_proto_version(context, TlsVersion(tls.min_version));
  SSL_CTX_set_max_proto_version(context, TlsVersion(tls.max_version));
  // cipher_suites: OpenSSL keeps TLS 1.3's list apart (SSL_CTX_set_ciphersuites) from the older
  // versions' (SSL_CTX_set_cipher_list, in its own names).
  std::string tls12_suites;
  std::string tls13_suites;
  for (const std::string& suite : tls.cipher_suites) {
    const bool tls13 = IsTls13Suite(suite);
    std::string& list = tls13 ? tls13_suites : tls12_suites;
    if (!list.empty()) list += ':';
    list += tls13 ? suite.c_str() : OPENSSL_cipher_name(suite.c_str());
  }
  if ((!tls12_suites.empty() && SSL_CTX_set_cipher_list(context, tls12_suites.c_str()) != 1) ||
      (!tls13_suites.empty() && SSL_CTX_set_ciphersuites(context, tls13_suites.c_str()) != 1)) {
    throw ConfigError("tls_server_config.cipher_suites: " + OpenSslError());
  }
  if (!tls.curve_preferences.empty()) {
    std::string groups;
    for (const std::string& curve : tls.curve_preferences) {
      if (!groups.empty()) groups += ':';
      groups += OpenSslGroup(curve);
    }
    if (SSL_CTX_set1_groups_list(context, groups.c_str()) != 1) {
      throw ConfigError("tls_server_config.curve_preferences: " + OpenSslError());
    }
  }
  if (!tls.cert.empty()) {
    if (!UsePemCertificateChain(context, tls.cert)) FailInline("cert");
  } else if (SSL_CTX_use_certificate_chain_file(context, tls.cert_file.c_str()) != 1) {
    fail("cert_file", tls.cert_file);
  }
  UsePrivateKey(context, tls);

  // Go's tls.ClientAuthType, in OpenSSL's terms. Request/RequireAny accept any certificate.
  // client_allowed_sans (with the Require types only) adds the toolkit's VerifyPeerCertificate:
  // the client's own certificate must have one of them, or the handshake fails.
  const auto accept_any = [](int /*preverified*/, X509_STORE_CTX* /*store*/) { return 1; };
  const auto any_with_allowed_san = [](int /*preverified*/, X509_STORE_CTX* store) {
    return HasAllowedSan(store) ? 1 : 0;
  };
  const auto verified_with_allowed_san = [](int preverified, X509_STORE_CTX* store) {
    return preverified != 0 && HasAllowedSan(store) ? 1 : 0;
  };
  const bool sans = !tls.client_allowed_sans.empty();
  if (sans) {
    // The context's once set: freed with it.
    auto* const allowed = new std::vector<std::string>(tls.client_allowed_sans);
    if (SSL_CTX_set_ex_data(context, AllowedSansIndex(), allowed) != 1) {
      delete allowed;
      throw ConfigError("tls_server_config.client_allowed_sans: " + OpenSslError());
    }
  }
  const std::string& type = tls.client_auth_type;
  if (type == "RequestClientCert") {
    SSL_CTX_set_verify(context, SSL_VERIFY_PEER, accept_any);
  } else if (type == "RequireAnyClientCert") {
    SSL_CTX_set_verify(context, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
                       sans ? +any_with_allowed_san : +accept_any);
  } else if (type == "VerifyClientCertIfGiven" || type == "RequireAndVerifyClientCert") {
    if (!tls.client_ca.empty()) {
      if (!AddPemCertificates(SSL_CTX_get_cert_store(context), tls.client_ca)) {
        FailInline("client_ca");
      }
    } else if (SSL_CTX_load_verify_locations(context, tls.client_ca_file.c_str(), nullptr) != 1) {
      fail("client_ca_file", tls.client_ca_file);
    }
    const int mode = type == "RequireAndVerifyClientCert"
                         ? SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT
                         : SSL_VERIFY_PEER;
    SSL_CTX_set_verify(context, mode, sans ? +verified_with_allowed_san : nullptr);
  }
}

void WebSecurity::FreeContext::operator()(SSL_CTX* context) const { SSL_CTX_free(context); }

WebSecurity::Access WebSecurity::Check(std::string_view target,
                                       std::string_view authorization) const {
  if (config_.basic_auth_users.empty() || IsUnauthenticated(target)) return Access::kGranted;
  const std::optional<Credentials> credentials = ParseBasicAuth(authorization);
  if (!credentials) return Access::kDenied;
  const std::string key = Sha256(credentials->user, credentials->password);
  std::scoped_lock lock(cache_mutex_);
  if (granted_.contains(key)) return Access::kGranted;
  if (denied_.contains(key)) return Access::kDenied;
  return Access::kVerify;
}

bool WebSecurity::Verify(std::string_view authorization) const {
  const std::optional<Credentials> credentials = ParseBasicAuth(authorization);
  if (!credentials || config_.basic_auth_users.empty()) return false;
  const std::string key = Sha256(credentials->user, credentials->password);
  std::scoped_lock bcrypt_lock(bcrypt_mutex_);
  {
    std::scoped_lock lock(cache_mutex_);  // decided while this one waited for its turn?
    if (granted_.contains(key)) return true;
    if (denied_.contains(key)) return false;
  }

  // An unknown user is checked against a known user's hash, so that it takes as long.
  const auto found = config_.basic_auth_users.find(credentials->user);
  const std::string& hash = found != config_.basic_auth_users.end()
                                ? found->second
                                : config_.basic_auth_users.begin()->second;
  auto data = std::make_unique<crypt_data>();  // 32 KiB: not on the stack
  const char* result =
      crypt_rn(credentials->password.c_str(), hash.c_str(), data.get(), sizeof(crypt_data));
  const bool ok = found != config_.basic_auth_users.end() && result != nullptr &&
                  std::strlen(result) == hash.size() &&
                  CRYPTO_memcmp(result, hash.data(), hash.size()) == 0;

  std::scoped_lock lock(cache_mutex_);
  auto& verdicts = ok ? granted_ : denied_;
  if (verdicts.size() >= kMaxCachedVerdicts) verdicts.clear();
  verdicts.insert(key);
  return ok;
}

std::string WebSecurity::Describe() const {
  std::string text;
  if (config_.tls) {
    text = "TLS (" + config_.tls->min_version + ".." + config_.tls->max_version +
           ", client certificates: " + config_.tls->client_auth_type;
    if (const std::size_t sans = config_.tls->client_allowed_sans.size(); sans > 0) {
      text += " with " + std::to_string(sans) + (sans == 1 ? " allowed SAN" : " allowed SANs");
    }
    if (const std::size_t suites = config_.tls->cipher_suites.size(); suites > 0) {
      text += ", " + std::to_string(suites) + (suites == 1 ? " cipher suite" : " cipher suites");
    }
    if (!config_.tls->prefer_server_cipher_suites) text += " in the client's order";
    for (const std::string& curve : config_.tls->curve_preferences) {
      text += (&curve == &config_.tls->curve_preferences.front() ? ", curves " : " ") + curve;
    }
    text += ")";
  } else {
    text = "plain HTTP";
  }
  if (!config_.basic_auth_users.empty()) {
    text += ", basic auth for " + std::to_string(config_.basic_auth_users.size()) +
            (config_.basic_auth_users.size() == 1 ? " user" : " users");
  }
  std::string headers;
  for (const auto& [name, value] : config_.headers) {
    if (!headers.empty()) headers += ", ";
    headers += name;
  }
  if (!headers.empty()) text += ", headers: " + headers;
  if (config_.rate_limit) {
    text += ", rate limit: bursts of " + std::to_string(config_.rate_limit->burst) +
            ", one request per " + FormatInterval(config_.rate_limit->interval);
  }
  return text;
}

std::string Describe(const WebSecurity* web) { return web ? web->Describe() : "plain HTTP"; }

bool ServesTls(const WebSecurity* web) { return web && web->tls_context() != nullptr; }

std::shared_ptr<const WebSecurity> LoadWebSecurity(const std::filesystem::path& path) {
  const std::string name = path.string();
  WebConfig config = ParseWebConfig(ReadConfigFile(name), name, path.parent_path());
  try {
    return std::make_shared<const WebSecurity>(std::move(config));
  } catch (const ConfigError& e) {
    throw ConfigError(name + ": " + e.what());
  }
}

}  // namespace poolwatch::exporter
