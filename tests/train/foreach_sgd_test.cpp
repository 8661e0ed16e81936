// ForeachSGD takes exactly torch::optim::SGD's steps and keeps its state in
// the same form, so checkpoints move between the two.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <sstream>

#include "gpulab/train/foreach_sgd.h"

namespace gpulab::train {
namespace {

// Three parameters in two groups; the last one gets no gradient.
std::vector<torch::Tensor> make_parameters() {
  torch::manual_seed(3);
  return {torch::randn({4, 3}).requires_grad_(), torch::randn({5}).requires_grad_(),
          torch::randn({2, 2}).requires_grad_()};
}

std::vector<torch::optim::OptimizerParamGroup> groups_of(const std::vector<torch::Tensor>& p) {
  auto second = std::make_unique<torch::optim::SGDOptions>(0.05);
  second->momentum(0.8).weight_decay(0.01).nesterov(true);
  return {torch::optim::OptimizerParamGroup({p[0]}),
          torch::optim::OptimizerParamGroup({p[1], p[2]}, std::move(second))};
}

// Gradients that differ step by step, the same for both optimizers.
void set_gradients(const std::vector<torch::Tensor>& p, int step) {
  torch::manual_seed(100 + step);
  p[0].mutable_grad() = torch::randn({4, 3});
  p[1].mutable_grad() = torch::randn({5});
  p[2].mutable_grad() = torch::Tensor();
}

const torch::optim::SGDOptions kDefaults =
    torch::optim::SGDOptions(0.1).momentum(0.9).weight_decay(1e-3).dampening(0.1);

TEST(ForeachSgdTest, TakesTorchSgdsStepsBitForBit) {
  auto a = make_parameters(), b = make_parameters();
  torch::optim::SGD reference(groups_of(a), kDefaults);
  ForeachSGD foreach (groups_of(b), kDefaults);
  for (int step = 0; step < 6; ++step) {
    set_gradients(a, step);
    set_gradients(b, step);
    reference.step();
    foreach
      .step();
    for (size_t i = 0; i < a.size(); ++i) {
      ASSERT_TRUE(torch::equal(a[i], b[i])) << "parameter " << i << " after step " << step;
    }
  }
  EXPECT_FALSE(torch::equal(a[0], make_parameters()[0]));  // it did move
  EXPECT_TRUE(torch::equal(a[2], make_parameters()[2]));   // no gradient: unchanged
}

TEST(ForeachSgdTest, ItsStateLoadsIntoTorchSgdAndBack) {
  auto a = make_parameters(), b = make_parameters();
  ForeachSGD foreach (groups_of(a), kDefaults);
  torch::optim::SGD reference(groups_of(b), kDefaults);
  for (int step = 0; step < 2; ++step) {
    set_gradients(a, step);
    set_gradients(b, step);
    foreach
      .step();
    reference.step();
  }
  // Swap the momentum buffers through serialisation: the next steps agree.
  std::stringstream from_foreach, from_reference;
  torch::save(foreach, from_foreach);
  torch::save(reference, from_reference);
  torch::load(reference, from_foreach);
  torch::load(foreach, from_reference);
  set_gradients(a, 2);
  set_gradients(b, 2);
  foreach
    .step();
  reference.step();
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(torch::equal(a[i], b[i])) << i;
}

}  // namespace
}  // namespace gpulab::train
