// Decoding (image_codec.h), colour conversion and resizing.
#include "gpulab/data/image_decode.h"

#include <torch/torch.h>

#include <filesystem>
#include <opencv2/imgproc.hpp>

#include "gpulab/core/atomic_file.h"
#include "gpulab/core/error.h"
#include "gpulab/data/image_codec.h"

namespace gpulab::data {

at::Tensor decode_image_file(const std::string& path, int channels, int height, int width,
                             int64_t max_pixels) {
  GPULAB_CHECK(channels == 1 || channels == 3, ErrorKind::kInvalidArgument,
               "images must have 1 or 3 channels, asked for {}", channels);
  GPULAB_CHECK(std::filesystem::exists(path), ErrorKind::kNotFound, "image '{}' does not exist",
               path);
  return decode_image_bytes(path, core::read_file(path), channels, height, width, max_pixels);
}

at::Tensor decode_image_bytes(const std::string& name, const std::string& bytes, int channels,
                              int height, int width, int64_t max_pixels) {
  GPULAB_CHECK(channels == 1 || channels == 3, ErrorKind::kInvalidArgument,
               "images must have 1 or 3 channels, asked for {}", channels);
  detail::check_encoded_image(name, bytes, max_pixels);
  // EXIF orientation is ignored, as in the loader (PIL and MATLAB do the same).
  detail::DecodedImage decoded = detail::decode_image(name, bytes, channels);
  cv::Mat image = decoded.pixels;
  detail::check_decoded_size(name, image, max_pixels);
  if (channels == 3 && decoded.bgr) cv::cvtColor(image, image, cv::COLOR_BGR2RGB);
  int h = height > 0 ? height : image.rows;
  int w = width > 0 ? width : image.cols;
  image = detail::resize_pixels(image, h, w);
  if (!image.isContinuous()) image = image.clone();
  auto hwc = torch::from_blob(image.data, {h, w, channels}, torch::kUInt8);
  // clone: the tensor must own its memory once `image` is gone (a 1-channel
  // permute is already "contiguous" and would still point into it).
  return hwc.permute({2, 0, 1}).clone(at::MemoryFormat::Contiguous);
}

at::Tensor prepare_decoded_image(const at::Tensor& rgb, int channels, int height, int width) {
  GPULAB_CHECK(channels == 1 || channels == 3, ErrorKind::kInvalidArgument,
               "images must have 1 or 3 channels, asked for {}", channels);
  GPULAB_CHECK(rgb.dim() == 3 && rgb.size(2) == 3 && rgb.scalar_type() == torch::kUInt8,
               ErrorKind::kInvalidArgument, "expected an [H, W, 3] uint8 RGB image, got [{}] {}",
               fmt::join(rgb.sizes(), ", "), c10::toString(rgb.scalar_type()));
  const at::Tensor pixels = rgb.cpu().contiguous();
  cv::Mat image(static_cast<int>(pixels.size(0)), static_cast<int>(pixels.size(1)), CV_8UC3,
                pixels.data_ptr<uint8_t>());
  if (channels == 1) cv::cvtColor(image, image, cv::COLOR_RGB2GRAY);
  const int h = height > 0 ? height : image.rows;
  const int w = width > 0 ? width : image.cols;
  image = detail::resize_pixels(image, h, w);
  if (!image.isContinuous()) image = image.clone();
  auto hwc = torch::from_blob(image.data, {h, w, channels}, torch::kUInt8);
  return hwc.permute({2, 0, 1}).clone(at::MemoryFormat::Contiguous);
}

bool decodes_jpeg_only() {
  return detail::build_decoder() == detail::ImageDecoder::kJpegOnly;
}

}  // namespace gpulab::data
