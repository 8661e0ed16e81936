// The training step on a GPU, as the trainer takes it there: data resident on
// the device, bf16 autocast and channels-last (StepPrecision), SGD momentum.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "gpulab/data/resident_batcher.h"
#include "gpulab/models/registry.h"
#include "gpulab/tasks/classification.h"
#include "gpulab/train/optimizer_factory.h"
#include "gpulab/train/step_precision.h"
#include "gpulab/train/train_options.h"
#include "tests/support/cuda_test.h"

namespace gpulab {
namespace {

// 256 grey 28x28 images of two classes a network separates at once: dark
// (pixels < 100) and light (pixels > 150).
data::Dataset two_class_images() {
  torch::manual_seed(0);
  data::Dataset ds;
  const at::Tensor labels = torch::arange(256, torch::kLong).remainder(2);
  const at::Tensor noise = torch::randint(0, 100, {256, 1, 28, 28}, torch::kLong);
  ds.images = (noise + 150 * labels.view({256, 1, 1, 1})).clamp(0, 255).to(torch::kUInt8);
  ds.labels = labels;
  ds.class_names = {"dark", "light"};
  ds.source = "two_class_images()";
  return ds;
}

// `steps` steps on the whole set as one batch; returns the first and last loss.
std::pair<double, double> train_steps(const c10::Device& device, const std::string& precision,
                                      int steps) {
  const data::Dataset ds = two_class_images();
  const train::TrainOptions options =
      train::TrainOptions().batch_size(256).learn_rate(0.05).precision(precision);
  const train::StepPrecision step_precision(device, options);
  torch::manual_seed(1);
  const tasks::ClassificationTask task("basic_cnn", {{"nf", 8}});
  auto model = models::create_model(task.model_config(ds));
  model->to(device);
  step_precision.prepare_model(*model);
  model->train();
  auto parameters = model->parameters();
  auto optimizer = train::make_optimizer(options, parameters);
  const data::ResidentBatcher batcher(ds, data::compute_normalization(ds), device,
                                      step_precision.channels_last());
  const data::Batch batch = batcher.range(0, ds.size());
  double first = 0, last = 0;
  for (int i = 0; i < steps; ++i) {
    for (auto& p : parameters) p.mutable_grad() = at::Tensor();
    at::Tensor loss;
    {
      const auto autocast = step_precision.autocast();
      loss = task.loss(model->forward(step_precision.prepare(batch.input)).to(torch::kFloat32),
                       batch.target);
    }
    loss.backward();
    optimizer->step();
    const double value = loss.item<double>();
    EXPECT_TRUE(std::isfinite(value)) << "step " << i;
    if (i == 0) first = value;
    last = value;
  }
  return {first, last};
}

// The premise of the GPU tests below, checked where it always runs.
TEST(TrainerCudaTest, StepsOnTheCpuLowerTheLoss) {
  const auto [first, last] = train_steps(c10::Device(c10::kCPU), "fp32", 20);
  EXPECT_LT(last, 0.5 * first) << "loss " << first << " -> " << last;
}

TEST(TrainerCudaTest, Bf16ChannelsLastStepsLowerTheLoss_CUDA) {
  GPULAB_SKIP_WITHOUT_CUDA();
  const auto [first, last] = train_steps(c10::Device(c10::kCUDA, 0), "auto", 20);
  EXPECT_LT(last, 0.5 * first) << "loss " << first << " -> " << last;
}

TEST(TrainerCudaTest, Float32StepsLowerTheLoss_CUDA) {
  GPULAB_SKIP_WITHOUT_CUDA();
  const auto [first, last] = train_steps(c10::Device(c10::kCUDA, 0), "fp32", 20);
  EXPECT_LT(last, 0.5 * first) << "loss " << first << " -> " << last;
}

TEST(TrainerCudaTest, StepPrecisionUsesBf16AndChannelsLastOnGpus_CUDA) {
  GPULAB_SKIP_WITHOUT_CUDA();
  const train::StepPrecision gpu(c10::Device(c10::kCUDA, 0), train::TrainOptions());
  EXPECT_TRUE(gpu.bf16());
  EXPECT_TRUE(gpu.channels_last());
  const train::StepPrecision fp32(c10::Device(c10::kCUDA, 0),
                                  train::TrainOptions().precision("fp32"));
  EXPECT_FALSE(fp32.bf16());
}

}  // namespace
}  // namespace gpulab
