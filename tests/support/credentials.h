#pragma once

#include <filesystem>
#include <string>

namespace poolwatch::testing {

// Credentials for a web config, made with the tools an operator uses: certificates and keys with
// the openssl command, bcrypt hashes with htpasswd (Apache's bcrypt, not the libxcrypt that
// verifies them). Each throws std::runtime_error with the command's output if it fails.

// A self-signed P-256 certificate for /CN=`common_name`, valid for two days: `dir`/`name`.crt,
// its key in `dir`/`name`.key.
void SelfSignedCertificate(const std::filesystem::path& dir, const std::string& name,
                           const std::string& common_name);

// The bcrypt hash of `password` at `cost`, as a web config's basic_auth_users holds it
// ("$2y$05$...").
std::string BcryptHash(const std::string& password, int cost);

// PEM text (a certificate, a key) as the value of a tls_server_config key, inline: a YAML
// literal block ("|" and the lines indented under a key at two spaces), newline-terminated.
std::string PemBlock(const std::string& pem);

}  // namespace poolwatch::testing
