// Decoding one image file into a tensor the models take.
#pragma once

#include <ATen/core/Tensor.h>

#include <string>

namespace gpulab::data {

// Decodes `path` (any format OpenCV reads) to [channels, height, width] uint8,
// RGB order for 3 channels (as torchvision feeds models). Converts grey <-> RGB
// to match `channels` (1 or 3). Resizes (bilinear, area when shrinking) only
// when the size differs; height/width 0 keep the file's size. Throws
// Error(kCorruptData) naming the file when it cannot be decoded, and
// Error(kNotFound) when it does not exist.
at::Tensor decode_image_file(const std::string& path, int channels, int height, int width);

}  // namespace gpulab::data
