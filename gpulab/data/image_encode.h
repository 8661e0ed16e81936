// Writing images users keep (label maps, overlays, stylised images).
#pragma once

#include <ATen/core/Tensor.h>

#include <string>

namespace gpulab::data {

// Writes `image` ([H, W, C] uint8, C = 1 or 3, RGB order) to `path`
// atomically, in the format its extension names (.png, .jpg/.jpeg, .bmp,
// .tif/.tiff, .webp, .ppm/.pgm). Throws Error(kInvalidArgument) for another
// extension or shape, Error(kIo) naming the file when it cannot be written.
// Needs OpenCV's imgcodecs.
void write_image_file(const std::string& path, const at::Tensor& image);

}  // namespace gpulab::data
