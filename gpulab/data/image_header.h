// Image dimensions read from a file's first bytes, without decoding it: lets
// the loader refuse a "decompression bomb" before allocating its pixels, and
// pick a reduced JPEG decode size.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace gpulab::data {

// PIL's default Image.MAX_IMAGE_PIXELS * 2: larger images are refused.
constexpr int64_t kDefaultMaxPixels = 178956970;

struct ImageHeader {
  std::string format;  // "jpeg", "png", "bmp", "pnm", "gif", "webp", "tiff"
  int64_t width = 0;
  int64_t height = 0;
  int channels = 0;  // 1 grey, 3 colour (alpha not counted), 0 not known
};

// The format and size of an encoded image in `bytes`, or nullopt when the
// format is not one of the above or the header is cut short (the decoder then
// decides). Pure parsing: never throws, never allocates pixels.
std::optional<ImageHeader> read_image_header(const std::string& bytes);

// Whether the JPEG in `bytes` ends: its marker segments and entropy-coded
// scans are walked from the start, and the end-of-image marker must follow
// the last scan (padding after it is allowed). An EOI inside an EXIF
// thumbnail does not count, so a file cut short in its main image is caught.
bool jpeg_is_complete(const std::string& bytes);

}  // namespace gpulab::data
