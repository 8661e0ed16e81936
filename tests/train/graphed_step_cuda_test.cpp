// A training step replayed as a CUDA graph takes the same steps as the eager
// loop: through warm-up, a partial batch and a new learn rate.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "gpulab/core/cuda_graph.h"
#include "gpulab/train/graphed_step.h"
#include "tests/support/cuda_test.h"

namespace gpulab::train {
namespace {

struct Step {
  int64_t batch;
  double learn_rate;
};

// SGD momentum on a linear layer with cross-entropy, as the trainer's step.
struct Learner {
  explicit Learner(const c10::Device& device) : layer(torch::nn::LinearOptions(6, 3)) {
    torch::manual_seed(7);
    layer = torch::nn::Linear(torch::nn::LinearOptions(6, 3));
    layer->to(device);
    optimizer = std::make_unique<torch::optim::SGD>(
        layer->parameters(), torch::optim::SGDOptions(0.1).momentum(0.9).weight_decay(1e-3));
  }
  StepTensors step(const data::Batch& batch) {
    StepTensors out;
    out.output = layer->forward(batch.input);
    out.loss.total = torch::nn::functional::cross_entropy(out.output, batch.target);
    out.loss.total.backward();
    optimizer->step();
    return out;
  }
  void set_learn_rate(double lr) {
    for (auto& g : optimizer->param_groups()) g.options().set_lr(lr);
  }
  torch::nn::Linear layer;
  std::unique_ptr<torch::optim::SGD> optimizer;
};

TEST(GraphedStepCudaTest, ReplaysTakeTheSameStepsAsTheEagerLoop_CUDA) {
  GPULAB_SKIP_WITHOUT_CUDA();
  if (!core::cuda_graphs_available()) GTEST_SKIP() << "this build has no CUDA graphs";
  const c10::Device device(c10::kCUDA, 0);
  // Warm-up (3 eager), capture at the 4th, a partial batch, a learn-rate drop
  // (eager until it repeats, then a second capture).
  const std::vector<Step> steps = {{8, 0.1},  {8, 0.1},  {8, 0.1}, {8, 0.1},  {8, 0.1},
                                   {5, 0.1},  {8, 0.1},  {8, 0.1}, {8, 0.05}, {8, 0.05},
                                   {8, 0.05}, {5, 0.05}, {8, 0.05}};
  Learner eager(device), graphed(device);
  GraphedStep runner(device, graphed.layer->parameters(),
                     [&](const data::Batch& batch) { return graphed.step(batch); });
  torch::manual_seed(11);
  for (size_t i = 0; i < steps.size(); ++i) {
    const auto x = torch::randn({steps[i].batch, 6}, torch::TensorOptions().device(device));
    const auto y = torch::randint(0, 3, {steps[i].batch},
                                  torch::TensorOptions().dtype(torch::kLong).device(device));
    eager.set_learn_rate(steps[i].learn_rate);
    for (auto& p : eager.layer->parameters()) p.mutable_grad() = at::Tensor();
    const double eager_loss = eager.step({x, y}).loss.total.item<double>();
    graphed.set_learn_rate(steps[i].learn_rate);
    const double graphed_loss = runner.run({x, y}, steps[i].learn_rate).loss.total.item<double>();
    EXPECT_NEAR(graphed_loss, eager_loss, 1e-5) << "step " << i;
  }
  const auto a = eager.layer->parameters(), b = graphed.layer->parameters();
  for (size_t k = 0; k < a.size(); ++k) {
    EXPECT_TRUE(torch::allclose(a[k], b[k], 1e-5, 1e-6)) << "parameter " << k;
  }
  EXPECT_EQ(runner.capture_error(), "");
  EXPECT_EQ(runner.captures(), 2);
  // Steps 4, 5, 7, 8 by the first graph; 10, 11, 13 by the second; 1-3
  // (warm-up), 6 and 12 (partial batches) and 9 (new learn rate) eagerly.
  EXPECT_EQ(runner.replays(), 7);
  EXPECT_EQ(runner.eager_steps(), 6);
}

TEST(GraphedStepCudaTest, AStepThatSyncsWithTheHostRunsEagerly_CUDA) {
  GPULAB_SKIP_WITHOUT_CUDA();
  if (!core::cuda_graphs_available()) GTEST_SKIP() << "this build has no CUDA graphs";
  const c10::Device device(c10::kCUDA, 0);
  Learner learner(device);
  // .item() cannot be captured: the capture fails and every step stays eager.
  GraphedStep runner(device, learner.layer->parameters(), [&](const data::Batch& batch) {
    StepTensors out = learner.step(batch);
    (void)out.loss.total.item<double>();
    return out;
  });
  const auto x = torch::randn({8, 6}, torch::TensorOptions().device(device));
  const auto y = torch::zeros({8}, torch::TensorOptions().dtype(torch::kLong).device(device));
  double first = 0, last = 0;
  for (int i = 0; i < 8; ++i) {
    last = runner.run({x, y}, 0.1).loss.total.item<double>();
    if (i == 0) first = last;
  }
  EXPECT_NE(runner.capture_error(), "");
  EXPECT_EQ(runner.captures(), 0);
  EXPECT_EQ(runner.eager_steps(), 8);
  EXPECT_LT(last, first);
}

}  // namespace
}  // namespace gpulab::train
