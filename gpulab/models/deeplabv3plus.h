// DeepLab v3+ on a dilated ResNet-18 as MATLAB's deeplabv3plusLayers(...,
// "resnet18") builds it, with the backbone under torchvision's resnet18 names
// so torchvision (or gpulab ResNet-18) weights load into it by name.
#pragma once

#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>

#include <map>
#include <string>
#include <vector>

#include "gpulab/models/network.h"
#include "gpulab/models/sync_batch_norm.h"

namespace gpulab::models {

// ResNet-18 without avgpool and fc: conv1 7x7/2, bn1, max-pool 3x3/2, layer1-4,
// torchvision's names and padding (MATLAB's res4a pads "same", i.e. 0 top/left
// and 1 bottom/right on even sizes; that shifts by a pixel, it does not change
// the sizes or what the network can learn). Output stride 16: layer4 has
// stride 1, its first block conv1 dilation 1, conv2 dilation 2 and a stride-1
// projection, its second block dilation 2 in both convs (MATLAB's res5a/res5b).
// Output stride 8 (gpulab's own spec; MATLAB exports none): layer3 likewise
// with dilation 2, and layer4 (2, 4) then (4, 4).
class ResNet18BackboneImpl : public torch::nn::Module {
 public:
  ResNet18BackboneImpl(int64_t in_channels, int64_t output_stride);

  struct Features {
    torch::Tensor low_level;   // layer1: [N, 64, ceil(H/4), ceil(W/4)]
    torch::Tensor high_level;  // layer4: [N, 512, ceil(H/os), ceil(W/os)]
  };
  Features forward(torch::Tensor x);

 private:
  torch::nn::Conv2d conv1_{nullptr};
  SyncBatchNorm2d bn1_{nullptr};
  torch::nn::Sequential layer1_{nullptr}, layer2_{nullptr}, layer3_{nullptr}, layer4_{nullptr};
};
TORCH_MODULE(ResNet18Backbone);

// ASPP without image pooling and without dropout (MATLAB's): convs.0 a 1x1,
// convs.1-3 3x3 convs at `rates` (6, 12, 18 at output stride 16), 256 filters
// each with BN + ReLU, concatenated (1024) and projected by project.0/.1 (1x1
// 256 + BN + ReLU). [N, in, h, w] -> [N, 256, h, w]. torchvision's names.
class AsppImpl : public torch::nn::Module {
 public:
  AsppImpl(int64_t in_channels, const std::vector<int64_t>& rates);
  torch::Tensor forward(torch::Tensor x);

 private:
  std::vector<torch::nn::Sequential> convs_;
  torch::nn::Sequential project_{nullptr};
};
TORCH_MODULE(Aspp);

// DeepLab v3+ ("deeplabv3plus" in the registry). Input [N, in_channels, H, W]
// float32, H and W >= 16, any parity; output [N, num_classes, H, W] logits.
// config.options: {"output_stride": 16 (default, MATLAB's DownsamplingFactor)
// or 8 (gpulab's own spec: layer3 dilated 2, layer4 4, ASPP rates 12/24/36)}.
//
// Modules (MATLAB layer names in brackets):
//   backbone        ResNet18Backbone   [conv1 ... res5b_relu]
//   aspp.convs.0-3  1x1, 3x3 @ 6/12/18 [aspp_Conv_1-4, aspp_BatchNorm_1-4]
//   aspp.project    1x1 1024 -> 256    [dec_c1, dec_bn1]
//   (upsample)      bilinear x os/4 (align_corners false), centre crop to the
//                   low-level size     [dec_upsample1, dec_crop1]
//   low_level       1x1 64 -> 48       [dec_c2, dec_bn2] on layer1 [res2b_relu]
//   decoder.0-5     3x3 304 -> 256, BN, ReLU, 3x3 256 -> 256, BN, ReLU
//                                      [dec_c3, dec_bn3, dec_c4, dec_bn4]
//   scorer          1x1 256 -> classes [scorer]
//   (upsample)      bilinear x4, centre crop to H x W [dec_upsample2, dec_crop2]
// No conv has a bias, the scorer included: MATLAB sets BiasLearnRateFactor 0
// on every conv, so its biases stay at their zero initialisation, and the
// function is the same without them. MATLAB's two upsamplers are transposed
// convs with frozen bilinear kernels; bilinear interpolation equals them away
// from the borders and has no weights. Parameters: 16,408,480 for 11 classes
// and 3 input channels (MATLAB's ~16.41 M without the frozen upsamplers).
// Initialisation as torchvision's: its ResNet scheme in the backbone
// (kaiming-normal fan_out convs, BN weight 1, bias 0), PyTorch's defaults in
// ASPP, decoder and scorer. Throws Error(kInvalidArgument) for another output
// stride, or a configured (nonzero) or input size under 16.
class DeepLabV3Plus : public Network {
 public:
  explicit DeepLabV3Plus(const ModelConfig& config);
  torch::Tensor forward(torch::Tensor x) override;

  int64_t output_stride() const { return output_stride_; }
  ResNet18Backbone backbone() const { return backbone_; }

 private:
  int64_t output_stride_ = 16;
  ResNet18Backbone backbone_{nullptr};
  Aspp aspp_{nullptr};
  torch::nn::Sequential low_level_{nullptr}, decoder_{nullptr};
  torch::nn::Conv2d scorer_{nullptr};
};

// Copies a torchvision resnet18 state dict (conv1.weight, ...,
// layer4.1.bn2.num_batches_tracked; its fc.* are ignored) into
// network.backbone(): ImageNet initialisation for the backbone. Throws
// Error(kCorruptData) naming `source` and listing missing, unexpected and
// wrong-shape tensors (e.g. a 7x7 stem for other than 3 input channels).
void load_resnet18_backbone(DeepLabV3Plus& network,
                            const std::map<std::string, torch::Tensor>& torchvision_state,
                            const std::string& source);

}  // namespace gpulab::models
