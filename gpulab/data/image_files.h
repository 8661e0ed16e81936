// Which files are images: the one list of extensions every reader of gpulab
// accepts (image folders, remote lists, predict's inputs).
#pragma once

#include <string>
#include <vector>

namespace gpulab::data {

// Lower-case, with the dot: .png .jpg .jpeg .bmp .tif .tiff .pgm .ppm .webp.
const std::vector<std::string>& image_extensions();

// Whether `path` ends in one of image_extensions(), in any case.
bool has_image_extension(const std::string& path);

}  // namespace gpulab::data
