// One sample from encoded bytes to output pixels: check the header (empty
// file, unknown format, pixel limit), decode (at reduced size when the crop
// allows), transform, and write [H, W, C] uint8 RGB into the batch buffer.
#pragma once

#include <ATen/core/Tensor.h>

#include <array>
#include <cstdint>
#include <string>

#include "gpulab/data/image_header.h"
#include "gpulab/data/transforms.h"

namespace gpulab::data {

class SampleDecoder {
 public:
  // `transforms` must be validated and have a fixed output size (height and
  // width set, or a crop). `jpeg_region_decode`: decode only the part of a
  // JPEG the crop needs (same pixels, less work); false decodes the whole
  // image, for comparison. Thread-safe: decode() may run on many threads.
  SampleDecoder(TransformOptions transforms, int64_t max_pixels, bool jpeg_region_decode = true);

  // Decodes `bytes` (the contents of `name`, used in messages) with the
  // choices drawn from `seed` and writes out_height x out_width x channels
  // bytes to `out`. Throws Error(kCorruptData) naming `name` for an empty
  // file, a file that is not a readable image, a truncated one, or one above
  // the pixel limit.
  void decode(const std::string& name, const std::string& bytes, uint64_t seed, uint8_t* out) const;

  // As decode, for an image with a label map: `label_ids` is [H, W] uint8
  // class ids (255 = no label) at the image's own size, contiguous on the
  // CPU, named `label_name` in messages. The image's plan is applied to it
  // too (nearest-neighbour, 255 outside, no colour change) and out_height x
  // out_width ids are written to `label_out`. Throws Error(kCorruptData)
  // naming both files when the label map's size is not the image's.
  void decode(const std::string& name, const std::string& bytes, uint64_t seed, uint8_t* out,
              const at::Tensor& label_ids, const std::string& label_name, uint8_t* label_out) const;

  // {height, width, channels} of the image in `bytes` (decodes it, after
  // the checks of decode(): empty, truncated, above `max_pixels` by its
  // header). Throws Error(kCorruptData) naming `name` when it cannot be
  // decoded or is too large.
  static std::array<int, 3> probe(const std::string& name, const std::string& bytes,
                                  int64_t max_pixels = kDefaultMaxPixels);

  int out_height() const { return out_h_; }
  int out_width() const { return out_w_; }
  int channels() const { return transforms_.channels(); }
  int64_t sample_bytes() const { return int64_t{out_h_} * out_w_ * channels(); }

 private:
  // The plan for a src_h x src_w source, at this decoder's output size.
  SamplePlan plan_for(int src_h, int src_w, uint64_t seed) const;

  // decode(), returning the plan it drew and the source's full size.
  struct Planned {
    SamplePlan plan;
    int src_h = 0, src_w = 0;
  };
  Planned decode_planned(const std::string& name, const std::string& bytes, uint64_t seed,
                         uint8_t* out) const;

  TransformOptions transforms_;
  int64_t max_pixels_;
  bool jpeg_region_decode_;
  int out_h_, out_w_;
};

}  // namespace gpulab::data
