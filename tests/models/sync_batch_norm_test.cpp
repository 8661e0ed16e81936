// SyncBatchNorm2d: without an all-reduce it is torch::nn::BatchNorm2d; with
// one over a single rank it gives the same outputs, running statistics and
// gradients; with two simulated ranks (an all-reduce that adds the other
// half's statistics) it normalises with the statistics of the whole batch.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include "gpulab/models/sync_batch_norm.h"

namespace gpulab::models {
namespace {

struct Outcome {
  at::Tensor output, input_grad, weight_grad, bias_grad, running_mean, running_var;
};

// Forward in training mode and backward of sum(output * probe).
template <typename Bn>
Outcome run(Bn& bn, const at::Tensor& input, const at::Tensor& probe) {
  bn->train();
  at::Tensor x = input.clone().requires_grad_(true);
  at::Tensor y = bn->forward(x);
  (y * probe).sum().backward();
  return {y.detach(),
          x.grad(),
          bn->weight.grad().clone(),
          bn->bias.grad().clone(),
          bn->running_mean.clone(),
          bn->running_var.clone()};
}

void expect_close(const Outcome& a, const Outcome& b) {
  EXPECT_TRUE(torch::allclose(a.output, b.output, 1e-4, 1e-5));
  EXPECT_TRUE(torch::allclose(a.input_grad, b.input_grad, 1e-4, 1e-5));
  EXPECT_TRUE(torch::allclose(a.weight_grad, b.weight_grad, 1e-4, 1e-5));
  EXPECT_TRUE(torch::allclose(a.bias_grad, b.bias_grad, 1e-4, 1e-5));
  EXPECT_TRUE(torch::allclose(a.running_mean, b.running_mean, 1e-5, 1e-6));
  EXPECT_TRUE(torch::allclose(a.running_var, b.running_var, 1e-5, 1e-6));
}

TEST(SyncBatchNormTest, KeepsBatchNorm2dNamesAndBehaviourWithoutAnAllReduce) {
  torch::manual_seed(0);
  const at::Tensor x = torch::randn({6, 3, 5, 5}) * 2 + 1, probe = torch::randn({6, 3, 5, 5});
  SyncBatchNorm2d ours(3);
  torch::nn::BatchNorm2d theirs(3);
  std::vector<std::string> names, expected;
  for (const auto& p : ours->named_parameters()) names.push_back(p.key());
  for (const auto& b : ours->named_buffers()) names.push_back(b.key());
  for (const auto& p : theirs->named_parameters()) expected.push_back(p.key());
  for (const auto& b : theirs->named_buffers()) expected.push_back(b.key());
  EXPECT_EQ(names, expected);
  expect_close(run(ours, x, probe), run(theirs, x, probe));
  ours->eval();
  theirs->eval();
  EXPECT_TRUE(torch::allclose(ours->forward(x), theirs->forward(x), 1e-5, 1e-6));
}

TEST(SyncBatchNormTest, OneRankAllReduceMatchesBatchNorm2d) {
  torch::manual_seed(1);
  const at::Tensor x = torch::randn({4, 2, 3, 3}) * 3 - 2, probe = torch::randn({4, 2, 3, 3});
  SyncBatchNorm2d ours(2);
  int calls = 0;
  EXPECT_EQ(set_batch_norm_all_reduce(*ours, [&calls](at::Tensor&) { ++calls; }), 1);
  torch::nn::BatchNorm2d theirs(2);
  expect_close(run(ours, x, probe), run(theirs, x, probe));
  EXPECT_EQ(calls, 2);  // the statistics forward, their gradient backward
}

// Regression: the synchronised forward read the count and, without a
// momentum, num_batches_tracked back to the host at every layer (a GPU sync);
// the device-side update must keep BatchNorm2d's cumulative average.
TEST(SyncBatchNormTest, CumulativeAverageWithoutMomentumMatchesBatchNorm2d) {
  torch::manual_seed(3);
  const auto options = torch::nn::BatchNormOptions(3).momentum(c10::nullopt);
  SyncBatchNorm2d ours(options);
  set_batch_norm_all_reduce(*ours, [](at::Tensor&) {});
  torch::nn::BatchNorm2d theirs(options);
  for (int step = 0; step < 3; ++step) {
    const at::Tensor x = torch::randn({5, 3, 4, 4}) * (step + 1) + step;
    const at::Tensor probe = torch::randn({5, 3, 4, 4});
    expect_close(run(ours, x, probe), run(theirs, x, probe));
    ours->weight.mutable_grad() = at::Tensor();
    ours->bias.mutable_grad() = at::Tensor();
    theirs->weight.mutable_grad() = at::Tensor();
    theirs->bias.mutable_grad() = at::Tensor();
  }
  EXPECT_EQ(ours->num_batches_tracked.item<int64_t>(), 3);
}

// Rank 0 holds the first half of the batch; the all-reduce adds what rank 1
// (the second half) contributes, computed beforehand from a SyncBatchNorm2d
// of its own that records its statistics and their gradient.
TEST(SyncBatchNormTest, TwoRanksNormaliseWithTheWholeBatch) {
  torch::manual_seed(2);
  const at::Tensor x = torch::randn({8, 3, 4, 4}) * 1.5 + 0.5, probe = torch::randn({8, 3, 4, 4});
  torch::nn::BatchNorm2d whole(3);
  const Outcome reference = run(whole, x, probe);

  // Rank 1 alone, its statistics and their gradient captured by its all-reduce
  // (which then adds rank 0's, known from a first pass of rank 0).
  std::vector<at::Tensor> sent0, sent1;
  auto record = [](std::vector<at::Tensor>& sent) {
    return [&sent](at::Tensor& t) { sent.push_back(t.clone()); };
  };
  {
    SyncBatchNorm2d r0(3), r1(3);
    set_batch_norm_all_reduce(*r0, record(sent0));
    set_batch_norm_all_reduce(*r1, record(sent1));
    run(r0, x.narrow(0, 0, 4), probe.narrow(0, 0, 4));
    run(r1, x.narrow(0, 4, 4), probe.narrow(0, 4, 4));
  }
  ASSERT_EQ(sent0.size(), 2u);
  ASSERT_EQ(sent1.size(), 2u);
  // The statistics are exact sums; the backward pass depends on the global
  // statistics, so it is replayed: rank 0's gradient contribution comes from
  // a second pass with the right forward, whose sent tensors are kept.
  std::vector<at::Tensor> grads1;
  {
    SyncBatchNorm2d r1(3);
    int step = 0;
    set_batch_norm_all_reduce(*r1, [&](at::Tensor& t) {
      if (step++ == 0) {
        t.add_(sent0[0]);
      } else {
        grads1.push_back(t.clone());
      }
    });
    run(r1, x.narrow(0, 4, 4), probe.narrow(0, 4, 4));
  }
  SyncBatchNorm2d r0(3);
  int step = 0;
  set_batch_norm_all_reduce(*r0,
                            [&](at::Tensor& t) { t.add_(step++ == 0 ? sent1[0] : grads1[0]); });
  const Outcome half = run(r0, x.narrow(0, 0, 4), probe.narrow(0, 0, 4));

  EXPECT_TRUE(torch::allclose(half.output, reference.output.narrow(0, 0, 4), 1e-4, 1e-5));
  EXPECT_TRUE(torch::allclose(half.input_grad, reference.input_grad.narrow(0, 0, 4), 1e-4, 1e-5));
  EXPECT_TRUE(torch::allclose(half.running_mean, reference.running_mean, 1e-5, 1e-6));
  EXPECT_TRUE(torch::allclose(half.running_var, reference.running_var, 1e-5, 1e-6));
}

// Regression: a rank whose slice of the global mini-batch is empty must still
// take part in both all-reduces (forward and backward), contributing zeros,
// and end with the running statistics of the whole batch.
TEST(SyncBatchNormTest, AnEmptySliceJoinsBothAllReducesWithZeros) {
  torch::manual_seed(4);
  const at::Tensor x = torch::randn({6, 3, 4, 4}) * 2 - 1, probe = torch::randn({6, 3, 4, 4});
  torch::nn::BatchNorm2d whole(3);
  const Outcome reference = run(whole, x, probe);
  std::vector<at::Tensor> sent1;
  SyncBatchNorm2d r1(3);
  set_batch_norm_all_reduce(*r1, [&sent1](at::Tensor& t) { sent1.push_back(t.clone()); });
  run(r1, x, probe);
  ASSERT_EQ(sent1.size(), 2u);

  SyncBatchNorm2d r0(3);
  std::vector<at::Tensor> sent0;
  set_batch_norm_all_reduce(*r0, [&](at::Tensor& t) {
    sent0.push_back(t.clone());
    t.add_(sent1[sent0.size() - 1]);
  });
  const Outcome empty = run(r0, torch::empty({0, 3, 4, 4}), torch::empty({0, 3, 4, 4}));
  ASSERT_EQ(sent0.size(), 2u) << "the empty rank must join the forward and backward all-reduce";
  EXPECT_EQ(sent0[0].abs().max().item<double>(), 0.0);
  EXPECT_EQ(sent0[1].abs().max().item<double>(), 0.0);
  EXPECT_EQ(empty.output.size(0), 0);
  EXPECT_EQ(empty.weight_grad.abs().max().item<double>(), 0.0);
  EXPECT_TRUE(torch::allclose(empty.running_mean, reference.running_mean, 1e-5, 1e-6));
  EXPECT_TRUE(torch::allclose(empty.running_var, reference.running_var, 1e-5, 1e-6));
}

}  // namespace
}  // namespace gpulab::models
