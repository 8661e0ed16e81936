// The image extensions.
#include "gpulab/data/image_files.h"

#include <algorithm>
#include <filesystem>

#include "gpulab/core/text.h"

namespace gpulab::data {

const std::vector<std::string>& image_extensions() {
  static const std::vector<std::string> kExtensions = {".png",  ".jpg", ".jpeg", ".bmp", ".tif",
                                                       ".tiff", ".pgm", ".ppm",  ".webp"};
  return kExtensions;
}

bool has_image_extension(const std::string& path) {
  const std::string ext = core::to_lower(std::filesystem::path(path).extension().string());
  const auto& exts = image_extensions();
  return std::find(exts.begin(), exts.end(), ext) != exts.end();
}

}  // namespace gpulab::data
