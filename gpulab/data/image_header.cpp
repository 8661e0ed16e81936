// Header parsers for the common formats: JPEG SOFn markers, PNG IHDR, BMP
// info header, binary/ASCII PNM, GIF screen descriptor, WebP VP8/VP8L/VP8X.
#include "gpulab/data/image_header.h"

#include <cctype>
#include <cstdlib>

namespace gpulab::data {
namespace {

uint32_t be16(const std::string& b, size_t i) {
  return (uint32_t(uint8_t(b[i])) << 8) | uint8_t(b[i + 1]);
}
uint32_t be32(const std::string& b, size_t i) {
  return (be16(b, i) << 16) | be16(b, i + 2);
}
uint32_t le16(const std::string& b, size_t i) {
  return uint8_t(b[i]) | (uint32_t(uint8_t(b[i + 1])) << 8);
}
uint32_t le24(const std::string& b, size_t i) {
  return le16(b, i) | (uint32_t(uint8_t(b[i + 2])) << 16);
}
uint32_t le32(const std::string& b, size_t i) {
  return le16(b, i) | (le16(b, i + 2) << 16);
}

std::optional<ImageHeader> jpeg(const std::string& b) {
  // Walk the marker segments up to the first start-of-frame.
  size_t i = 2;
  while (i + 4 <= b.size()) {
    if (uint8_t(b[i]) != 0xFF) return std::nullopt;
    const uint8_t marker = uint8_t(b[i + 1]);
    if (marker == 0xFF) {  // fill byte
      ++i;
      continue;
    }
    if (marker == 0xD8 || marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7)) {
      i += 2;  // markers without a length
      continue;
    }
    const uint32_t length = be16(b, i + 2);
    const bool sof =
        marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC;
    if (sof) {
      if (i + 9 > b.size()) return std::nullopt;
      return ImageHeader{"jpeg", be16(b, i + 7), be16(b, i + 5)};
    }
    if (length < 2) return std::nullopt;
    i += 2 + length;
  }
  return std::nullopt;
}

std::optional<ImageHeader> pnm(const std::string& b) {
  // "P5 <w> <h> ..." with '#' comments between the fields.
  size_t i = 2;
  int64_t v[2] = {0, 0};
  for (int k = 0; k < 2; ++k) {
    while (i < b.size() && (std::isspace(uint8_t(b[i])) || b[i] == '#')) {
      if (b[i] == '#') {
        while (i < b.size() && b[i] != '\n') ++i;
      } else {
        ++i;
      }
    }
    size_t start = i;
    while (i < b.size() && std::isdigit(uint8_t(b[i])) && i - start < 12) {
      v[k] = v[k] * 10 + (b[i] - '0');
      ++i;
    }
    if (i == start || i >= b.size()) return std::nullopt;
  }
  return ImageHeader{"pnm", v[0], v[1]};
}

std::optional<ImageHeader> webp(const std::string& b) {
  if (b.size() < 30) return std::nullopt;
  const std::string chunk = b.substr(12, 4);
  if (chunk == "VP8X") return ImageHeader{"webp", le24(b, 24) + 1, le24(b, 27) + 1};
  if (chunk == "VP8L") {
    const uint32_t bits = le32(b, 21);
    return ImageHeader{"webp", (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1};
  }
  if (chunk == "VP8 ") return ImageHeader{"webp", le16(b, 26) & 0x3FFF, le16(b, 28) & 0x3FFF};
  return std::nullopt;
}

}  // namespace

std::optional<ImageHeader> read_image_header(const std::string& b) {
  if (b.size() >= 4 && uint8_t(b[0]) == 0xFF && uint8_t(b[1]) == 0xD8) return jpeg(b);
  if (b.size() >= 24 && b.compare(0, 8, "\x89PNG\r\n\x1a\n") == 0 && b.compare(12, 4, "IHDR") == 0)
    return ImageHeader{"png", be32(b, 16), be32(b, 20)};
  if (b.size() >= 26 && b[0] == 'B' && b[1] == 'M') {
    const int64_t h = static_cast<int32_t>(le32(b, 22));  // negative: top-down rows
    return ImageHeader{"bmp", static_cast<int32_t>(le32(b, 18)), std::llabs(h)};
  }
  if (b.size() >= 3 && b[0] == 'P' && b[1] >= '1' && b[1] <= '6') return pnm(b);
  if (b.size() >= 10 && (b.compare(0, 6, "GIF87a") == 0 || b.compare(0, 6, "GIF89a") == 0))
    return ImageHeader{"gif", le16(b, 6), le16(b, 8)};
  if (b.size() >= 16 && b.compare(0, 4, "RIFF") == 0 && b.compare(8, 4, "WEBP") == 0)
    return webp(b);
  return std::nullopt;
}

}  // namespace gpulab::data
