#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace poolwatch {

// The element formats a pool hands out. A small fixed set, so that a `format` label on a metric
// stays bounded.
enum class BufferFormat : std::uint8_t {
  kF32,
  kF64,
  kI32,
  kU32,
  kU16,
  kU8,
  kVec2f,
  kVec3f,
  kVec4f,
  kRgba8,
};

inline constexpr std::size_t kBufferFormatCount = 10;

inline constexpr std::array<BufferFormat, kBufferFormatCount> kAllBufferFormats = {
    BufferFormat::kF32,   BufferFormat::kF64,   BufferFormat::kI32,   BufferFormat::kU32,
    BufferFormat::kU16,   BufferFormat::kU8,    BufferFormat::kVec2f, BufferFormat::kVec3f,
    BufferFormat::kVec4f, BufferFormat::kRgba8,
};

// Bytes per element.
constexpr std::size_t ElementSize(BufferFormat format) {
  switch (format) {
    case BufferFormat::kF32:
    case BufferFormat::kI32:
    case BufferFormat::kU32:
    case BufferFormat::kRgba8:
      return 4;
    case BufferFormat::kF64:
    case BufferFormat::kVec2f:
      return 8;
    case BufferFormat::kU16:
      return 2;
    case BufferFormat::kU8:
      return 1;
    case BufferFormat::kVec3f:
      return 12;
    case BufferFormat::kVec4f:
      return 16;
  }
  return 0;
}

// Lower-case name as used in labels and JSON ("f32", "vec3f", ...).
constexpr std::string_view FormatName(BufferFormat format) {
  switch (format) {
    case BufferFormat::kF32:
      return "f32";
    case BufferFormat::kF64:
      return "f64";
    case BufferFormat::kI32:
      return "i32";
    case BufferFormat::kU32:
      return "u32";
    case BufferFormat::kU16:
      return "u16";
    case BufferFormat::kU8:
      return "u8";
    case BufferFormat::kVec2f:
      return "vec2f";
    case BufferFormat::kVec3f:
      return "vec3f";
    case BufferFormat::kVec4f:
      return "vec4f";
    case BufferFormat::kRgba8:
      return "rgba8";
  }
  return "unknown";
}

constexpr std::optional<BufferFormat> ParseFormat(std::string_view name) {
  for (BufferFormat format : kAllBufferFormats) {
    if (FormatName(format) == name) return format;
  }
  return std::nullopt;
}

}  // namespace poolwatch
