#include "credentials.h"

#include <sstream>
#include <stdexcept>

#include "daemon_process.h"

namespace poolwatch::testing {
namespace {

std::string MustRun(const std::string& command) {
  const RunResult run = RunCommand(command);
  if (run.exit_code != 0) {
    throw std::runtime_error(command + " exited with " + std::to_string(run.exit_code) + ":\n" +
                             run.output);
  }
  return run.output;
}

}  // namespace

void SelfSignedCertificate(const std::filesystem::path& dir, const std::string& name,
                           const std::string& common_name) {
  const std::string base = (dir / name).string();
  MustRun("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout '" +
          base + ".key' -out '" + base + ".crt' -days 2 -subj '/CN=" + common_name + "'");
}

std::string BcryptHash(const std::string& password, int cost) {
  // htpasswd prints "user:hash"; the user is only for its format.
  const std::string line =
      MustRun("htpasswd -nbBC " + std::to_string(cost) + " user '" + password + "'");
  return line.substr(line.find(':') + 1, line.find('\n') - line.find(':') - 1);
}

std::string PemBlock(const std::string& pem) {
  std::string block = "|\n";
  std::istringstream lines(pem);
  for (std::string line; std::getline(lines, line);) block += "    " + line + "\n";
  return block;
}

}  // namespace poolwatch::testing
