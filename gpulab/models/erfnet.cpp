// ERFNet's blocks, encoder, decoder and the input-size check.
#include "gpulab/models/erfnet.h"

#include <torch/torch.h>

#include "gpulab/core/compat.h"
#include "gpulab/core/error.h"

namespace gpulab::models {
namespace nn = torch::nn;
namespace {

SyncBatchNorm2d batch_norm(int64_t channels) {
  return SyncBatchNorm2d(nn::BatchNormOptions(channels).eps(kErfNetBatchNormEps));
}

// The largest multiple of 8 not above `n` (at least 8), for the hint.
int64_t multiple_of_8_below(int64_t n) {
  return std::max<int64_t>(8, n / 8 * 8);
}

// ERFNet's transposed convs (stride 2; kernel 3, padding 1, output padding 1
// in the upsamplers, kernel 2 in decoder.output_conv) on the CPU, as one
// ordinary conv giving the 4 output phases as 4 x out channels, then
// pixel_shuffle(2). LibTorch 1.13 runs a CPU ConvTranspose2d through its im2col
// fallback (slow_conv_transpose2d on the reference BLAS), 10-15x slower than
// the oneDNN conv this becomes; the sums are the same, only their order
// differs (float rounding), and gradients reach the module's own weight and
// bias. Output phase (a, b) of pixel (m, n) is out[2m + a, 2n + b]; for kernel
// 3, row phase 0 takes kernel row 1 from input row m, phase 1 kernel row 2
// from row m and kernel row 0 from row m + 1 (zero past the border): a 2x2
// conv over the input padded by one row and column at the bottom/right.
// Other devices and shapes use the module itself.
torch::Tensor conv_transpose_stride2(nn::ConvTranspose2d& conv, const torch::Tensor& x) {
  const auto& o = conv->options;
  const auto* pad = compat::variant_get_if<torch::ExpandingArray<2>>(&o.padding());
  auto all = [](const torch::ExpandingArray<2>& a, int64_t v) {
    return (*a)[0] == v && (*a)[1] == v;
  };
  const bool stride2 = all(o.stride(), 2) && all(o.dilation(), 1) && o.groups() == 1 && pad;
  const bool k3 = stride2 && all(o.kernel_size(), 3) && all(*pad, 1) && all(o.output_padding(), 1);
  const bool k2 = stride2 && all(o.kernel_size(), 2) && all(*pad, 0) && all(o.output_padding(), 0);
  if (!x.device().is_cpu() || x.dim() != 4 || !(k3 || k2) || !conv->bias.defined()) {
    return conv->forward(x);
  }
  const torch::Tensor& w = conv->weight;  // [in, out, k, k]
  const int64_t in = w.size(0), out = w.size(1);
  const torch::Tensor bias = conv->bias.repeat_interleave(4);
  if (k2) {
    // Each output phase (a, b) is kernel tap (a, b) of one input pixel: a 1x1 conv.
    const auto w2 = w.permute({1, 2, 3, 0}).reshape({out * 4, in, 1, 1});
    return torch::pixel_shuffle(torch::conv2d(x, w2, bias), 2);
  }
  // Kernel row (column) of phase a at window offset d; -1: none (a zero tap).
  constexpr int64_t kTap[2][2] = {{1, -1}, {2, 0}};
  const torch::Tensor wt = w.transpose(0, 1);  // [out, in, 3, 3]
  const torch::Tensor zero = wt.new_zeros({out, in});
  std::vector<torch::Tensor> phases;
  for (int a = 0; a < 2; ++a) {
    for (int b = 0; b < 2; ++b) {
      std::vector<torch::Tensor> rows;
      for (int dy = 0; dy < 2; ++dy) {
        std::vector<torch::Tensor> cols;
        for (int dx = 0; dx < 2; ++dx) {
          const int64_t ky = kTap[a][dy], kx = kTap[b][dx];
          cols.push_back(ky < 0 || kx < 0 ? zero : wt.select(2, ky).select(2, kx));
        }
        rows.push_back(torch::stack(cols, -1));
      }
      phases.push_back(torch::stack(rows, -2));  // [out, in, 2, 2]
    }
  }
  // Channel o * 4 + a * 2 + b, pixel_shuffle's order.
  const auto w2 = torch::stack(phases, 1).reshape({out * 4, in, 2, 2});
  return torch::pixel_shuffle(torch::conv2d(torch::constant_pad_nd(x, {0, 1, 0, 1}), w2, bias), 2);
}

void check_input_size(int64_t height, int64_t width, const char* what) {
  GPULAB_CHECK(height % 8 == 0 && width % 8 == 0, ErrorKind::kInvalidArgument,
               "ERFNet needs {} height and width that are multiples of 8; got {}x{}: resize or "
               "crop to e.g. {}x{}",
               what, height, width, multiple_of_8_below(height), multiple_of_8_below(width));
}

}  // namespace

DownsamplerBlockImpl::DownsamplerBlockImpl(int64_t in_channels, int64_t out_channels) {
  GPULAB_CHECK(in_channels >= 1 && in_channels < out_channels, ErrorKind::kInvalidArgument,
               "ERFNet's downsampler needs 1 <= input channels < {} (its conv makes the other "
               "{} - input channels); got {} input channels",
               out_channels, out_channels, in_channels);
  conv_ = register_module("conv",
                          nn::Conv2d(nn::Conv2dOptions(in_channels, out_channels - in_channels, 3)
                                         .stride(2)
                                         .padding(1)
                                         .bias(true)));
  bn_ = register_module("bn", batch_norm(out_channels));
}

torch::Tensor DownsamplerBlockImpl::forward(torch::Tensor x) {
  auto out = torch::cat({conv_->forward(x), torch::max_pool2d(x, 2, 2)}, 1);
  return bn_->forward(out).relu_();
}

NonBottleneck1dImpl::NonBottleneck1dImpl(int64_t channels, double dropout, int64_t dilation)
    : dropout_p_(dropout) {
  auto conv = [channels](std::vector<int64_t> kernel, std::vector<int64_t> padding,
                         std::vector<int64_t> dilations) {
    return nn::Conv2d(nn::Conv2dOptions(channels, channels, kernel)
                          .padding(padding)
                          .dilation(dilations)
                          .bias(true));
  };
  conv3x1_1_ = register_module("conv3x1_1", conv({3, 1}, {1, 0}, {1, 1}));
  conv1x3_1_ = register_module("conv1x3_1", conv({1, 3}, {0, 1}, {1, 1}));
  bn1_ = register_module("bn1", batch_norm(channels));
  conv3x1_2_ = register_module("conv3x1_2", conv({3, 1}, {dilation, 0}, {dilation, 1}));
  conv1x3_2_ = register_module("conv1x3_2", conv({1, 3}, {0, dilation}, {1, dilation}));
  bn2_ = register_module("bn2", batch_norm(channels));
  dropout_ = register_module("dropout", nn::Dropout2d(dropout));
}

torch::Tensor NonBottleneck1dImpl::forward(torch::Tensor x) {
  auto out = conv3x1_1_->forward(x).relu_();
  out = bn1_->forward(conv1x3_1_->forward(out)).relu_();
  out = conv3x1_2_->forward(out).relu_();
  out = bn2_->forward(conv1x3_2_->forward(out));
  // The reference skips Dropout2d(0) altogether.
  if (dropout_p_ != 0.0) out = dropout_->forward(out);
  return (out + x).relu_();
}

UpsamplerBlockImpl::UpsamplerBlockImpl(int64_t in_channels, int64_t out_channels) {
  conv_ = register_module(
      "conv", nn::ConvTranspose2d(nn::ConvTranspose2dOptions(in_channels, out_channels, 3)
                                      .stride(2)
                                      .padding(1)
                                      .output_padding(1)
                                      .bias(true)));
  bn_ = register_module("bn", batch_norm(out_channels));
}

torch::Tensor UpsamplerBlockImpl::forward(torch::Tensor x) {
  return bn_->forward(conv_transpose_stride2(conv_, x)).relu_();
}

ErfNetEncoderImpl::ErfNetEncoderImpl(int64_t in_channels, int64_t num_classes) {
  initial_block_ = register_module("initial_block", DownsamplerBlock(in_channels, 16));
  nn::Sequential layers;
  layers->push_back(DownsamplerBlock(16, 64));
  for (int i = 0; i < 5; ++i) layers->push_back(NonBottleneck1d(64, 0.03, 1));
  layers->push_back(DownsamplerBlock(64, 128));
  for (int i = 0; i < 2; ++i) {
    for (int64_t dilation : {2, 4, 8, 16}) layers->push_back(NonBottleneck1d(128, 0.3, dilation));
  }
  layers_ = register_module("layers", layers);
  output_conv_ =
      register_module("output_conv", nn::Conv2d(nn::Conv2dOptions(128, num_classes, 1).bias(true)));
}

torch::Tensor ErfNetEncoderImpl::forward(torch::Tensor x, bool predict) {
  x = layers_->forward(initial_block_->forward(x));
  return predict ? output_conv_->forward(x) : x;
}

ErfNetDecoderImpl::ErfNetDecoderImpl(int64_t num_classes) {
  nn::Sequential layers;
  layers->push_back(UpsamplerBlock(128, 64));
  layers->push_back(NonBottleneck1d(64, 0.0, 1));
  layers->push_back(NonBottleneck1d(64, 0.0, 1));
  layers->push_back(UpsamplerBlock(64, 16));
  layers->push_back(NonBottleneck1d(16, 0.0, 1));
  layers->push_back(NonBottleneck1d(16, 0.0, 1));
  layers_ = register_module("layers", layers);
  output_conv_ = register_module(
      "output_conv",
      nn::ConvTranspose2d(nn::ConvTranspose2dOptions(16, num_classes, 2).stride(2).bias(true)));
}

torch::Tensor ErfNetDecoderImpl::forward(torch::Tensor x) {
  return conv_transpose_stride2(output_conv_, layers_->forward(x));
}

ErfNet::ErfNet(const ModelConfig& config) {
  encoder_only_ = config.options.value("encoder_only", false);
  // A zero size means "not known yet" and passes (0 is a multiple of 8).
  check_input_size(config.height, config.width, "a configured input");
  encoder_ = register_module("encoder", ErfNetEncoder(config.in_channels, config.num_classes));
  decoder_ = register_module("decoder", ErfNetDecoder(config.num_classes));
}

torch::Tensor ErfNet::forward(torch::Tensor x) {
  GPULAB_CHECK(x.dim() == 4, ErrorKind::kInvalidArgument,
               "ERFNet takes an [N, C, H, W] batch; got a tensor of shape [{}]",
               fmt::join(x.sizes(), ", "));
  check_input_size(x.size(2), x.size(3), "input");
  if (encoder_only_) return encoder_->forward(x, /*predict=*/true);
  return decoder_->forward(encoder_->forward(x));
}

}  // namespace gpulab::models
