#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace poolwatch {

// Pool and loop names become label values and keys of the debug views.
inline constexpr std::size_t kMaxNameLength = 64;

// Why `name` cannot name a pool or a loop, or nothing when it can: it must be 1 to
// kMaxNameLength bytes without control characters (NUL, newline, DEL...).
std::optional<std::string> NameProblem(std::string_view name);

// Throws std::invalid_argument "<what> name <problem>" when NameProblem() has one, e.g.
// "pool name must not be empty".
void CheckName(std::string_view what, std::string_view name);

}  // namespace poolwatch
