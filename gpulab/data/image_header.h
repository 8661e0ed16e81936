// Image dimensions read from a file's first bytes, without decoding it: lets
// the loader refuse a "decompression bomb" before allocating its pixels, and
// pick a reduced JPEG decode size.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace gpulab::data {

struct ImageHeader {
  std::string format;  // "jpeg", "png", "bmp", "pnm", "gif", "webp"
  int64_t width = 0;
  int64_t height = 0;
};

// The format and size of an encoded image in `bytes`, or nullopt when the
// format is not one of the above or the header is cut short (the decoder then
// decides). Pure parsing: never throws, never allocates pixels.
std::optional<ImageHeader> read_image_header(const std::string& bytes);

}  // namespace gpulab::data
