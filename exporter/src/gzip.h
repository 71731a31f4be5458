#pragma once

#include <string>
#include <string_view>

namespace poolwatch::exporter {

// Compresses `data` as a gzip member (RFC 1952) with zlib.
std::string GzipCompress(std::string_view data);

}  // namespace poolwatch::exporter
