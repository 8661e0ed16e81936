// Decoding pixel-label pairs: an image and its label file to a uint8 image
// and a uint8 class-id map of the same size, checked against each other.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

#include "gpulab/data/dataset.h"
#include "gpulab/data/image_header.h"
#include "gpulab/data/pixel_label_layout.h"

namespace gpulab::data {

struct PixelLabelDecodeOptions {
  PixelLabelDecodeOptions& channels(int v) {
    channels_ = v;
    return *this;
  }
  PixelLabelDecodeOptions& size(int height, int width) {
    height_ = height;
    width_ = width;
    return *this;
  }
  PixelLabelDecodeOptions& threads(int v) {
    threads_ = v;
    return *this;
  }
  PixelLabelDecodeOptions& max_pixels(int64_t v) {
    max_pixels_ = v;
    return *this;
  }
  int channels() const { return channels_; }
  int height() const { return height_; }
  int width() const { return width_; }
  int threads() const { return threads_; }
  int64_t max_pixels() const { return max_pixels_; }

 private:
  int channels_ = 3;            // 1 or 3 (RGB)
  int height_ = 0, width_ = 0;  // 0 = the file's size (a whole set: the first image's)
  int threads_ = 0;             // decode threads; 0 = one per core
  int64_t max_pixels_ = kDefaultMaxPixels;
};

// A label file's class ids: [H, W] uint8, 255 = no label, at the file's size.
// Throws Error(kCorruptData) naming the file for an undecodable file, a grey
// file that is not 8-bit single-channel, a label id the mapping rejects (out
// of range), or a colour in no class when the mapping says so.
at::Tensor decode_label_file(const std::string& path, const LabelMapping& mapping);

// As decode_label_file, for the contents `bytes` of the label file `path`.
at::Tensor decode_label_bytes(const std::string& path, const std::string& bytes,
                              const LabelMapping& mapping);

// MATLAB's countEachLabel over the label files of `index` at their own size
// (no image decoded), on `threads` threads (0 = one per core). Throws as
// decode_label_file.
PixelLabelCounts count_each_pixel_label(const PixelLabelIndex& index, int threads = 0);

struct DecodedPair {
  at::Tensor image;  // [C, H, W] uint8
  at::Tensor label;  // [H, W] uint8 class ids, 255 = no label
};

// One pair at the options' size: the image resized bilinear (area when
// shrinking), the label nearest-neighbour. Throws Error(kCorruptData) naming
// both files when the label's size differs from the image's.
DecodedPair decode_pixel_label_pair(const PixelLabelPair& pair, const LabelMapping& mapping,
                                    const PixelLabelDecodeOptions& options);

// Every pair of `index`, on decode threads: images [N, C, H, W] uint8,
// targets [N, H, W] uint8, label_spec = index.labels.
Dataset decode_pixel_label_set(const PixelLabelIndex& index,
                               const PixelLabelDecodeOptions& options);

}  // namespace gpulab::data
