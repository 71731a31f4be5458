#include "poolwatch/names.h"

#include <stdexcept>

namespace poolwatch {

std::optional<std::string> NameProblem(std::string_view name) {
  if (name.empty()) return "must not be empty";
  if (name.size() > kMaxNameLength) {
    return "must be at most " + std::to_string(kMaxNameLength) + " characters, got " +
           std::to_string(name.size());
  }
  for (const char c : name) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte == 0x7f) return "must not contain control characters";
  }
  return std::nullopt;
}

void CheckName(std::string_view what, std::string_view name) {
  // The name is not repeated: every problem is one that makes it unfit to print.
  if (const auto problem = NameProblem(name)) {
    throw std::invalid_argument(std::string(what) + " name " + *problem);
  }
}

}  // namespace poolwatch
