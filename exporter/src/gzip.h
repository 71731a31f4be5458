#pragma once

#include <string>
#include <string_view>

namespace poolwatch::exporter {

// Compresses `data` as a gzip member (RFC 1952) with zlib.
std::string GzipCompress(std::string_view data);

// True if an Accept-Encoding header value accepts gzip (by name or "*", with q > 0).
bool AcceptsGzip(std::string_view accept_encoding);

}  // namespace poolwatch::exporter
