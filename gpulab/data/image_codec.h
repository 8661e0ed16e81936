// Encoded image bytes to pixels, the one place that picks the decoder:
// OpenCV's imgcodecs (every format it reads), or libjpeg-turbo alone (JPEG
// only) in a build without imgcodecs (GPULAB_WITH_IMGCODECS=OFF, the GPU
// machine's reduced build). Internal to gpulab_data (OpenCV stays out of
// public headers).
#pragma once

#include <opencv2/core.hpp>

#include <cstdint>
#include <optional>
#include <string>

#include "gpulab/data/image_header.h"

namespace gpulab::data::detail {

enum class ImageDecoder {
  kOpenCv,    // cv::imdecode: JPEG, PNG, BMP, PNM, TIFF, WebP, ...; BGR order
  kJpegOnly,  // libjpeg-turbo: JPEG alone; RGB order
};

// The decoder this build reads images with: kOpenCv, or kJpegOnly when
// built without OpenCV's imgcodecs.
ImageDecoder build_decoder();

// Whether `decoder` is in this build (kOpenCv needs imgcodecs, kJpegOnly
// libjpeg-turbo). Both are in the normal build, so tests compare them.
bool decoder_available(ImageDecoder decoder);

struct DecodedImage {
  cv::Mat pixels;    // 8-bit for channels 1 and 3 (see decode_image)
  bool bgr = false;  // 3-channel pixels in OpenCV's BGR order; else RGB
};

// Decodes `bytes` (the contents of `name`, used in messages) into `channels`
// 1 (grey), 3 (colour) or 0 (as stored, for probing a size: OpenCV may then
// return 2 or 4 channels, or 16 bits), at 1/`reduction` of the size (1, 2, 4
// or 8; other than 1 for JPEG only). Ignores EXIF orientation, as PIL and
// MATLAB's imread do. Throws Error(kCorruptData) naming `name` for a file
// that is not a readable image, a corrupt one, and, with kJpegOnly, any
// format but JPEG (the message says this build reads JPEG only); throws
// Error(kUnavailable) when `decoder` is not in this build. Thread-safe.
DecodedImage decode_image(const std::string& name, const std::string& bytes, int channels,
                          int reduction = 1, ImageDecoder decoder = build_decoder());

// The checks every decode path makes before decoding `bytes` (the contents
// of `name`): not empty; when the header can be read, a size of at most
// `max_pixels` (decompression bombs are refused before any pixel is
// allocated); a JPEG that is complete (jpeg_is_complete). Returns the header
// (nullopt for formats without a header parser). Throws Error(kCorruptData)
// naming `name`.
std::optional<ImageHeader> check_encoded_image(const std::string& name, const std::string& bytes,
                                               int64_t max_pixels);

// The pixel limit once decoded, for formats whose header gives no size.
// Throws Error(kCorruptData) naming `name`.
void check_decoded_size(const std::string& name, const cv::Mat& pixels, int64_t max_pixels);

// `pixels` at `height` x `width` as every image decode path resizes: area
// when shrinking both sides, else bilinear; `pixels` itself at its own size.
// Label maps are resized nearest-neighbour instead (pixel_label_decode.cpp).
cv::Mat resize_pixels(const cv::Mat& pixels, int height, int width);

}  // namespace gpulab::data::detail
