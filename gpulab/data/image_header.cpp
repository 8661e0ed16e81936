// Header parsers for the common formats: JPEG SOFn markers, PNG IHDR, BMP
// info header, binary/ASCII PNM, GIF screen descriptor, WebP VP8/VP8L/VP8X,
// TIFF first IFD; and the walk over a JPEG's segments that finds its end.
#include "gpulab/data/image_header.h"

#include <cctype>
#include <cstdlib>
#include <cstring>

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
      if (i + 10 > b.size()) return std::nullopt;
      const int components = uint8_t(b[i + 9]);
      return ImageHeader{"jpeg", be16(b, i + 7), be16(b, i + 5), components == 1 ? 1 : 3};
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
  // P1, P2, P4, P5 are grey (or bilevel); P3, P6 colour.
  return ImageHeader{"pnm", v[0], v[1], b[1] == '3' || b[1] == '6' ? 3 : 1};
}

std::optional<ImageHeader> webp(const std::string& b) {
  if (b.size() < 30) return std::nullopt;
  const std::string chunk = b.substr(12, 4);
  if (chunk == "VP8X") return ImageHeader{"webp", le24(b, 24) + 1, le24(b, 27) + 1, 3};
  if (chunk == "VP8L") {
    const uint32_t bits = le32(b, 21);
    return ImageHeader{"webp", (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1, 3};
  }
  if (chunk == "VP8 ") return ImageHeader{"webp", le16(b, 26) & 0x3FFF, le16(b, 28) & 0x3FFF, 3};
  return std::nullopt;
}

// Classic TIFF ("II*\0" or "MM\0*"): ImageWidth (256), ImageLength (257) and
// SamplesPerPixel (277) from the first IFD. BigTIFF is left to the decoder.
std::optional<ImageHeader> tiff(const std::string& b) {
  const bool le = b[0] == 'I';
  auto u16 = [&](size_t i) { return le ? le16(b, i) : be16(b, i); };
  auto u32 = [&](size_t i) { return le ? le32(b, i) : be32(b, i); };
  const size_t ifd = u32(4);
  if (ifd < 8 || ifd + 2 > b.size()) return std::nullopt;
  const size_t entries = u16(ifd);
  ImageHeader h{"tiff", 0, 0, 0};
  int samples = 1;
  for (size_t e = 0; e < entries; ++e) {
    const size_t at = ifd + 2 + 12 * e;
    if (at + 12 > b.size()) return std::nullopt;
    const uint32_t tag = u16(at), type = u16(at + 2);
    // SHORT (3) or LONG (4), left-justified in the value field.
    const int64_t value = type == 3 ? u16(at + 8) : type == 4 ? u32(at + 8) : -1;
    if (tag == 256) h.width = value;
    if (tag == 257) h.height = value;
    if (tag == 277 && value > 0) samples = static_cast<int>(value);
  }
  if (h.width <= 0 || h.height <= 0) return std::nullopt;
  h.channels = samples >= 3 ? 3 : 1;
  return h;
}

}  // namespace

std::optional<ImageHeader> read_image_header(const std::string& b) {
  if (b.size() >= 4 && uint8_t(b[0]) == 0xFF && uint8_t(b[1]) == 0xD8) return jpeg(b);
  if (b.size() >= 26 && b.compare(0, 8, "\x89PNG\r\n\x1a\n") == 0 &&
      b.compare(12, 4, "IHDR") == 0) {
    // Colour types 0 (grey) and 4 (grey + alpha); 2, 3 and 6 are colour.
    const int type = uint8_t(b[25]);
    return ImageHeader{"png", be32(b, 16), be32(b, 20), type == 0 || type == 4 ? 1 : 3};
  }
  if (b.size() >= 30 && b[0] == 'B' && b[1] == 'M') {
    const int64_t h = static_cast<int32_t>(le32(b, 22));  // negative: top-down rows
    const uint32_t bits = le16(b, 28);
    return ImageHeader{"bmp", static_cast<int32_t>(le32(b, 18)), std::llabs(h), bits >= 24 ? 3 : 0};
  }
  if (b.size() >= 3 && b[0] == 'P' && b[1] >= '1' && b[1] <= '6') return pnm(b);
  if (b.size() >= 10 && (b.compare(0, 6, "GIF87a") == 0 || b.compare(0, 6, "GIF89a") == 0))
    return ImageHeader{"gif", le16(b, 6), le16(b, 8), 3};
  if (b.size() >= 16 && b.compare(0, 4, "RIFF") == 0 && b.compare(8, 4, "WEBP") == 0)
    return webp(b);
  if (b.size() >= 8 &&
      (b.compare(0, 4, std::string("II*\0", 4)) == 0 || b.compare(0, 4, "MM\0*", 4) == 0))
    return tiff(b);
  return std::nullopt;
}

bool jpeg_is_complete(const std::string& b) {
  if (b.size() < 4 || uint8_t(b[0]) != 0xFF || uint8_t(b[1]) != 0xD8) return false;
  size_t i = 2;
  while (i + 1 < b.size()) {
    // Between segments libjpeg skips stray bytes up to the next 0xFF; in a
    // scan, 0xFF is followed by 0x00 (stuffing) or RSTn, or starts a marker.
    const void* ff = std::memchr(b.data() + i, 0xFF, b.size() - i);
    if (ff == nullptr) return false;
    i = static_cast<size_t>(static_cast<const char*>(ff) - b.data());
    if (i + 1 >= b.size()) return false;
    const uint8_t marker = uint8_t(b[i + 1]);
    if (marker == 0xFF) {  // fill byte
      ++i;
      continue;
    }
    if (marker == 0xD9) return true;
    if (marker == 0x00 || marker == 0xD8 || marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7)) {
      i += 2;  // stuffing, restart and other markers without a length
      continue;
    }
    if (i + 4 > b.size()) return false;
    const uint32_t length = be16(b, i + 2);
    if (length < 2) return false;
    i += 2 + length;  // an APPn segment (an EXIF thumbnail with it) is skipped whole
  }
  return false;
}

}  // namespace gpulab::data
