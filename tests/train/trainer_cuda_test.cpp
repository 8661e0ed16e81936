// The training step on a GPU, as the trainer takes it there: data resident on
// the device, bf16 autocast and channels-last (StepPrecision), SGD momentum.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include "gpulab/core/atomic_file.h"
#include "gpulab/core/cuda_graph.h"
#include "gpulab/data/resident_batcher.h"
#include "gpulab/models/registry.h"
#include "gpulab/models/safetensors.h"
#include "gpulab/tasks/classification.h"
#include "gpulab/train/optimizer_factory.h"
#include "gpulab/train/step_precision.h"
#include "gpulab/train/train_options.h"
#include "gpulab/train/trainer.h"
#include "tests/support/cuda_test.h"
#include "tests/support/test_util.h"

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
  ds.targets = labels;
  ds.label_spec.names = {"dark", "light"};
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
  auto model = models::create_model(task.model_config(train::shape_of(ds)));
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
      loss =
          task.loss(model->forward(step_precision.prepare(batch.input)).to(torch::kFloat32), batch)
              .total;
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

// cuDNN's deterministic algorithms for the lifetime of the guard, so two runs
// of the same steps give the same numbers.
class DeterministicCudnn {
 public:
  DeterministicCudnn() : saved_(at::globalContext().deterministicCuDNN()) {
    at::globalContext().setDeterministicCuDNN(true);
  }
  ~DeterministicCudnn() { at::globalContext().setDeterministicCuDNN(saved_); }

 private:
  bool saved_;
};

TEST(TrainerCudaTest, StepsReplayedAsCudaGraphsTrainTheSameNetwork_CUDA) {
  GPULAB_SKIP_WITHOUT_CUDA();
  if (!core::cuda_graphs_available()) GTEST_SKIP() << "this build has no CUDA graphs";
  const DeterministicCudnn deterministic;
  const data::Dataset ds = two_class_images();
  tasks::ClassificationTask task("basic_cnn", {{"nf", 8}});
  // 256 images in batches of 48: five full batches and one of 16 an epoch; the
  // learn rate halves after two epochs (a second capture).
  const train::TrainOptions options = train::TrainOptions()
                                          .execution_environment("gpu")
                                          .precision("fp32")
                                          .batch_size(48)
                                          .max_epochs(4)
                                          .learn_rate(0.02)
                                          .lr_schedule("piecewise")
                                          .lr_drop_period(2)
                                          .lr_drop_factor(0.5)
                                          .shuffle("every-epoch")
                                          .cudnn_benchmark(false)
                                          .verbose(false)
                                          .seed(5);
  testing::TempDir graphed_dir, eager_dir;
  const train::FitResult graphed =
      train::Trainer(task, options, graphed_dir.path()).fit(ds, nullptr, false);
  const train::FitResult eager =
      train::Trainer(task, train::TrainOptions(options).cuda_graphs(false), eager_dir.path())
          .fit(ds, nullptr, false);

  EXPECT_EQ(graphed.cuda_graphs, "on");
  EXPECT_EQ(graphed.cuda_graph_captures, 2);
  // Of the 24 steps, 8 ran eagerly: 3 of warm-up, the 4 partial batches and
  // the first at the new learn rate.
  EXPECT_EQ(graphed.cuda_graph_replays, 16);
  EXPECT_EQ(eager.cuda_graphs, "off: `cuda_graphs` is false");
  EXPECT_EQ(eager.cuda_graph_replays, 0);
  EXPECT_NEAR(graphed.minibatch_value("loss").value(), eager.minibatch_value("loss").value(), 1e-4);

  const auto a = models::load_safetensors(graphed_dir.path() + "/model.safetensors").tensors;
  const auto b = models::load_safetensors(eager_dir.path() + "/model.safetensors").tensors;
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [name, tensor] : a) {
    EXPECT_TRUE(torch::allclose(tensor, b.at(name), 1e-4, 1e-5)) << name;
  }
  const auto summary = nlohmann::json::parse(core::read_file(graphed_dir.path() + "/summary.json"));
  EXPECT_EQ(summary["cuda_graphs"], "on");
}

}  // namespace
}  // namespace gpulab
