// CPU vs CUDA parity of a registry model: the same weights and input give the
// same ResNet-18 logits on a GPU, within float32 and bf16-autocast tolerances.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "gpulab/core/compat.h"
#include "gpulab/models/registry.h"
#include "tests/support/cuda_test.h"

namespace gpulab {
namespace {

// ||a - ref|| / ||ref|| in float64.
double relative_error(const at::Tensor& a, const at::Tensor& ref) {
  const at::Tensor r = ref.to(torch::kFloat64);
  return ((a.to(torch::kFloat64) - r).norm() / r.norm()).item<double>();
}

std::shared_ptr<models::Network> resnet18() {
  torch::manual_seed(0);
  models::ModelConfig config;
  config.arch = "resnet18";
  config.num_classes = 1000;
  config.in_channels = 3;
  config.height = config.width = 224;
  auto model = models::create_model(config);
  model->eval();
  return model;
}

// Turns cuDNN's TF32 convolutions off for its lifetime: a float32 comparison
// must not see TF32's 10-bit mantissa rounding.
class NoTf32 {
 public:
  NoTf32() : saved_(at::globalContext().allowTF32CuDNN()) {
    at::globalContext().setAllowTF32CuDNN(false);
  }
  ~NoTf32() { at::globalContext().setAllowTF32CuDNN(saved_); }

 private:
  bool saved_;
};

class ResNetCudaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    GPULAB_SKIP_WITHOUT_CUDA();
    model_ = resnet18();
    torch::manual_seed(1);
    x_ = torch::randn({4, 3, 224, 224});
    torch::NoGradGuard no_grad;
    reference_ = model_->forward(x_);  // on the CPU, float32
    model_->to(torch::kCUDA);
  }

  std::shared_ptr<models::Network> model_;
  at::Tensor x_, reference_;
};

// Tolerance: float32 with TF32 off differs from the CPU only by summation
// order (cuDNN vs oneDNN): ~1e-6 measured elsewhere; 1e-4 leaves room.
TEST_F(ResNetCudaTest, ForwardMatchesCpuInFloat32_CUDA) {
  const NoTf32 no_tf32;
  torch::NoGradGuard no_grad;
  const at::Tensor y = model_->forward(x_.to(torch::kCUDA)).cpu();
  ASSERT_EQ(y.sizes(), reference_.sizes());
  EXPECT_LT(relative_error(y, reference_), 1e-4);
}

TEST_F(ResNetCudaTest, ChannelsLastForwardMatchesCpu_CUDA) {
  const NoTf32 no_tf32;
  torch::NoGradGuard no_grad;
  for (auto& p : model_->parameters()) {
    if (p.dim() == 4) p.set_data(p.data().contiguous(at::MemoryFormat::ChannelsLast));
  }
  const at::Tensor x = x_.to(torch::kCUDA).contiguous(at::MemoryFormat::ChannelsLast);
  const at::Tensor y = model_->forward(x).cpu();
  EXPECT_LT(relative_error(y, reference_), 1e-4);
}

// bf16 keeps 8 mantissa bits: one operation is off by ~4e-3; through the 18
// layers of the network the logits stay within 5e-2 (relative, L2).
TEST_F(ResNetCudaTest, Bf16AutocastForwardIsCloseToCpu_CUDA) {
  torch::NoGradGuard no_grad;
  compat::set_cuda_autocast(true, at::kBFloat16);
  const at::Tensor y = model_->forward(x_.to(torch::kCUDA));
  compat::set_cuda_autocast(false, at::kBFloat16);
  EXPECT_EQ(y.scalar_type(), at::kBFloat16);  // autocast really ran the convolutions in bf16
  EXPECT_TRUE(torch::isfinite(y).all().item<bool>());
  EXPECT_LT(relative_error(y.cpu(), reference_), 5e-2);
}

}  // namespace
}  // namespace gpulab
