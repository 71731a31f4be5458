#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace poolwatch::testing {

// Decompresses a gzip member; nothing if `data` is not valid gzip.
std::optional<std::string> Gunzip(std::string_view data);

}  // namespace poolwatch::testing
