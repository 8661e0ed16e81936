// ERFNet (Romera et al., T-ITS 2018) for semantic segmentation, block for block
// and name for name as Eromera/erfnet_pytorch train/erfnet.py (d4a46fa), so its
// state dicts (after models::strip_module_prefix) load one to one.
#pragma once

#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/dropout.h>

#include "gpulab/models/network.h"
#include "gpulab/models/sync_batch_norm.h"

namespace gpulab::models {

// Batch-norm epsilon of every ERFNet block (the reference's eps=1e-3).
constexpr double kErfNetBatchNormEps = 1e-3;

// DownsamplerBlock(in, out), in < out: [N, in, H, W] -> [N, out, H/2, W/2] as
// relu(bn(cat(conv3x3/2(x) [out - in channels], maxpool2x2(x)))). H and W even.
// Names: conv, bn.
class DownsamplerBlockImpl : public torch::nn::Module {
 public:
  DownsamplerBlockImpl(int64_t in_channels, int64_t out_channels);
  torch::Tensor forward(torch::Tensor x);

 private:
  torch::nn::Conv2d conv_{nullptr};
  SyncBatchNorm2d bn_{nullptr};
};
TORCH_MODULE(DownsamplerBlock);

// non_bottleneck_1d(channels, dropout, dilation): the factorised residual
// block, [N, C, H, W] -> same shape: 3x1 -> relu -> 1x3 -> bn -> relu ->
// 3x1 (dilation d) -> relu -> 1x3 (dilation d) -> bn -> Dropout2d(p) when
// p > 0 -> relu(out + x). Every conv has a bias. Names: conv3x1_1, conv1x3_1,
// bn1, conv3x1_2, conv1x3_2, bn2 (and dropout, without tensors).
class NonBottleneck1dImpl : public torch::nn::Module {
 public:
  NonBottleneck1dImpl(int64_t channels, double dropout, int64_t dilation);
  torch::Tensor forward(torch::Tensor x);

 private:
  torch::nn::Conv2d conv3x1_1_{nullptr}, conv1x3_1_{nullptr}, conv3x1_2_{nullptr},
      conv1x3_2_{nullptr};
  SyncBatchNorm2d bn1_{nullptr}, bn2_{nullptr};
  torch::nn::Dropout2d dropout_{nullptr};
  double dropout_p_ = 0.0;
};
TORCH_MODULE(NonBottleneck1d);

// UpsamplerBlock(in, out): [N, in, H, W] -> [N, out, 2H, 2W] as relu(bn(
// ConvTranspose2d(3, stride 2, pad 1, output_padding 1))). Names: conv, bn.
class UpsamplerBlockImpl : public torch::nn::Module {
 public:
  UpsamplerBlockImpl(int64_t in_channels, int64_t out_channels);
  torch::Tensor forward(torch::Tensor x);

 private:
  torch::nn::ConvTranspose2d conv_{nullptr};
  SyncBatchNorm2d bn_{nullptr};
};
TORCH_MODULE(UpsamplerBlock);

// The encoder: initial_block Downsampler(in, 16); layers.0 Downsampler(16, 64);
// layers.1-5 non_bottleneck_1d(64, 0.03, 1); layers.6 Downsampler(64, 128);
// layers.7-14 non_bottleneck_1d(128, 0.3, d), d = 2, 4, 8, 16 twice;
// output_conv Conv2d(128, classes, 1). [N, in, H, W] -> [N, 128, H/8, W/8]
// features, or [N, classes, H/8, W/8] logits with `predict`.
class ErfNetEncoderImpl : public torch::nn::Module {
 public:
  ErfNetEncoderImpl(int64_t in_channels, int64_t num_classes);
  torch::Tensor forward(torch::Tensor x, bool predict = false);

 private:
  DownsamplerBlock initial_block_{nullptr};
  torch::nn::Sequential layers_{nullptr};
  torch::nn::Conv2d output_conv_{nullptr};
};
TORCH_MODULE(ErfNetEncoder);

// The decoder: layers.0 Upsampler(128, 64); layers.1-2 non_bottleneck_1d(64,
// 0, 1); layers.3 Upsampler(64, 16); layers.4-5 non_bottleneck_1d(16, 0, 1);
// output_conv ConvTranspose2d(16, classes, 2, stride 2). [N, 128, h, w] ->
// [N, classes, 8h, 8w] logits.
class ErfNetDecoderImpl : public torch::nn::Module {
 public:
  explicit ErfNetDecoderImpl(int64_t num_classes);
  torch::Tensor forward(torch::Tensor x);

 private:
  torch::nn::Sequential layers_{nullptr};
  torch::nn::ConvTranspose2d output_conv_{nullptr};
};
TORCH_MODULE(ErfNetDecoder);

// ERFNet ("erfnet" in the registry). Input [N, in_channels, H, W] float32 with
// H and W multiples of 8 (the downsampler concatenates a strided conv and a
// max-pool, whose sizes agree only then); output [N, num_classes, H, W]
// logits, or with {"encoder_only": true} [N, num_classes, H/8, W/8] logits
// from encoder.output_conv (the reference's first training stage).
// config.options: {"encoder_only": bool, default false}. in_channels 1..15
// (the first downsampler's conv has 16 - in_channels filters; the reference
// uses 3). Both encoder.output_conv and decoder.output_conv always exist, as in
// the reference state dict: 2,066,836 parameters for 20 classes and 3 input
// channels. Weights: PyTorch's default initialisation (the reference's own
// weights_init never runs). Throws Error(kInvalidArgument) for
// config.height/width (when nonzero) or an input that are not multiples of 8.
class ErfNet : public Network {
 public:
  explicit ErfNet(const ModelConfig& config);
  torch::Tensor forward(torch::Tensor x) override;

  bool encoder_only() const { return encoder_only_; }
  ErfNetEncoder encoder() const { return encoder_; }
  ErfNetDecoder decoder() const { return decoder_; }

 private:
  bool encoder_only_ = false;
  ErfNetEncoder encoder_{nullptr};
  ErfNetDecoder decoder_{nullptr};
};

}  // namespace gpulab::models
