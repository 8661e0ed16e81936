// Decoding one image file into a tensor the models take.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>

#include "gpulab/data/image_header.h"

namespace gpulab::data {

// Decodes `path` (any format OpenCV reads; JPEG only in a build without
// OpenCV's imgcodecs) to [channels, height, width] uint8,
// RGB order for 3 channels (as torchvision feeds models). Converts grey <-> RGB
// to match `channels` (1 or 3). Resizes (bilinear, area when shrinking) only
// when the size differs; height/width 0 keep the file's size. Throws
// Error(kCorruptData) naming the file when it cannot be decoded, is a
// truncated JPEG or has more than `max_pixels` pixels (by its header, before
// decoding, where the format has one), and Error(kNotFound) when it does not
// exist.
at::Tensor decode_image_file(const std::string& path, int channels, int height, int width,
                             int64_t max_pixels = kDefaultMaxPixels);

// As decode_image_file, for the contents `bytes` of a file named `name` in
// messages.
at::Tensor decode_image_bytes(const std::string& name, const std::string& bytes, int channels,
                              int height, int width, int64_t max_pixels = kDefaultMaxPixels);

// An image decoded elsewhere (a video frame: `rgb` [H, W, 3] uint8 RGB, CPU)
// as decode_image_file returns a file's: [channels, height, width] uint8,
// grey for 1 channel, resized by the same rule (height/width 0 keep its size).
at::Tensor prepare_decoded_image(const at::Tensor& rgb, int channels, int height, int width);

// True when this build decodes JPEG files only (GPULAB_WITH_IMGCODECS=OFF:
// libjpeg-turbo instead of OpenCV's imgcodecs); other formats then fail with
// Error(kCorruptData) saying so.
bool decodes_jpeg_only();

}  // namespace gpulab::data
