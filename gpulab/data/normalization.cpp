// Normalisation statistics and the fused uint8 -> float affine.
#include "gpulab/data/normalization.h"

#include <torch/torch.h>

#include <cmath>

namespace gpulab::data {

Normalization compute_normalization(const Dataset& ds) {
  Normalization norm;
  // Chunked to bound the float copy for large sets.
  const int64_t channels = ds.channels();
  std::vector<double> sum(channels, 0.0), sum_sq(channels, 0.0);
  const int64_t chunk = 4096;
  for (int64_t b = 0; b < ds.size(); b += chunk) {
    auto x = ds.images.slice(0, b, std::min(ds.size(), b + chunk)).to(torch::kFloat64).div_(255.0);
    auto s = x.sum({0, 2, 3});
    auto s2 = x.pow(2).sum({0, 2, 3});
    for (int64_t c = 0; c < channels; ++c) {
      sum[c] += s[c].item<double>();
      sum_sq[c] += s2[c].item<double>();
    }
  }
  const double count = static_cast<double>(ds.size() * ds.height() * ds.width());
  for (int64_t c = 0; c < channels; ++c) {
    double mean = sum[c] / count;
    double var = std::max(sum_sq[c] / count - mean * mean, 1e-12);
    norm.mean.push_back(mean);
    norm.std.push_back(std::sqrt(var));
  }
  return norm;
}

PixelAffine pixel_affine(const Normalization& norm, c10::Device device) {
  std::vector<float> scale, shift;
  for (size_t c = 0; c < norm.mean.size(); ++c) {
    scale.push_back(static_cast<float>(1.0 / (255.0 * norm.std[c])));
    shift.push_back(static_cast<float>(-norm.mean[c] / norm.std[c]));
  }
  const int64_t channels = static_cast<int64_t>(scale.size());
  return {torch::tensor(scale).view({1, channels, 1, 1}).to(device),
          torch::tensor(shift).view({1, channels, 1, 1}).to(device)};
}

at::Tensor PixelAffine::apply(const at::Tensor& pixels) const {
  return apply(pixels, pixels.suggest_memory_format());
}

at::Tensor PixelAffine::apply(const at::Tensor& pixels, at::MemoryFormat format) const {
  at::Tensor out =
      at::empty(pixels.sizes(), pixels.options().dtype(at::kFloat).memory_format(format));
  out.copy_(pixels);
  return at::addcmul_out(out, shift, out, scale);
}

}  // namespace gpulab::data
