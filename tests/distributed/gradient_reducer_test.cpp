// GradientReducer between two real Gloo ranks (two threads of this process):
// one all-reduce per bucket, started before backward ends, gradients averaged.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include <future>
#include <mutex>
#include <thread>

#include "gpulab/distributed/communicator.h"
#include "gpulab/distributed/gradient_reducer.h"
#include "gpulab/distributed/local_launcher.h"

namespace gpulab::distributed {
namespace {

torch::nn::Sequential make_net() {
  torch::manual_seed(7);
  torch::nn::Sequential net;
  for (int i = 0; i < 6; ++i) {
    net->push_back(torch::nn::Linear(128, 128));
    net->push_back(torch::nn::Tanh());
  }
  net->push_back(torch::nn::Linear(128, 4));
  return net;
}

at::Tensor input_of(int rank) {
  return torch::randn({16, 128}, torch::TensorOptions().dtype(torch::kFloat32))
      .mul(0.5)
      .add(rank);  // different data per rank
}

// The gradients one rank computes alone on its own input, flattened.
std::vector<at::Tensor> local_gradients(int rank) {
  auto net = make_net();
  torch::manual_seed(100 + rank);
  net->forward(input_of(rank)).square().mean().backward();
  std::vector<at::Tensor> grads;
  for (auto& p : net->parameters()) grads.push_back(p.grad().clone());
  return grads;
}

struct RankOutcome {
  size_t buckets = 0;
  ReduceTrace trace;
  std::vector<at::Tensor> grads;
};

RankOutcome run_rank(int rank, int port) {
  World world;
  world.rank = rank;
  world.size = 2;
  world.local_rank = rank;
  world.local_size = 2;
  world.master_port = port;
  auto comm = connect(world, c10::Device(c10::kCPU), CommunicatorOptions().timeout_seconds(30));
  // The ranks are threads sharing the global generator: draw under a lock.
  static std::mutex rng_mutex;
  torch::nn::Sequential net;
  at::Tensor input;
  {
    std::lock_guard<std::mutex> lock(rng_mutex);
    net = make_net();
    torch::manual_seed(100 + rank);
    input = input_of(rank);
  }
  // ~64 KiB per 128x128 weight: small caps give several buckets.
  GradientReducer reducer(net->parameters(), *comm,
                          ReducerOptions().bucket_cap_mb(0.1).first_bucket_cap_mb(0.05));
  reducer.prepare_for_backward();
  net->forward(input).square().mean().backward();
  reducer.finish();
  RankOutcome out;
  out.buckets = reducer.buckets().size();
  out.trace = reducer.last_trace();
  for (auto& p : net->parameters()) out.grads.push_back(p.grad().clone());
  comm->barrier();
  return out;
}

TEST(GradientReducerTest, OneAllReducePerBucketStartedBeforeBackwardEndsAndAveraged) {
  const int port = free_tcp_port();
  auto rank1 = std::async(std::launch::async, [port] { return run_rank(1, port); });
  const RankOutcome rank0 = run_rank(0, port);
  const RankOutcome other = rank1.get();

  ASSERT_GT(rank0.buckets, 2u);
  EXPECT_EQ(rank0.trace.launch_seconds.size(), rank0.buckets);
  EXPECT_EQ(other.trace.launch_seconds.size(), other.buckets);
  // Every bucket went out from a gradient hook while backward was running,
  // none from finish().
  for (double t : rank0.trace.launch_seconds) EXPECT_LT(t, rank0.trace.backward_end_seconds);

  const auto g0 = local_gradients(0);
  const auto g1 = local_gradients(1);
  for (size_t k = 0; k < g0.size(); ++k) {
    const at::Tensor expected = (g0[k] + g1[k]) / 2;
    EXPECT_TRUE(torch::allclose(rank0.grads[k], expected, 1e-5, 1e-7)) << "parameter " << k;
    EXPECT_TRUE(torch::equal(rank0.grads[k], other.grads[k])) << "parameter " << k;
  }
}

TEST(GradientReducerTest, BucketsFollowTheCapsInReverseParameterOrder) {
  auto comm = single_process_communicator();
  auto net = make_net();
  GradientReducer reducer(net->parameters(), *comm,
                          ReducerOptions().bucket_cap_mb(25).first_bucket_cap_mb(0.05));
  // The first bucket closes at 50 KiB: the 4x128 head (2 KiB + bias) plus the
  // last 128x128 weight (64 KiB); the rest fits in the 25 MiB bucket.
  ASSERT_EQ(reducer.buckets().size(), 2u);
  const size_t n = net->parameters().size();
  EXPECT_EQ(reducer.buckets()[0].front(), n - 1);
  EXPECT_EQ(reducer.buckets()[1].back(), 0u);
}

// gradient_as_bucket_view: after finish() each gradient lives in its bucket
// (no copy back), stale gradients from a previous step are dropped first, and
// a parameter backward never reached gets zeros.
TEST(GradientReducerTest, GradientsAreBucketViewsAndUnusedParametersGetZeros) {
  auto comm = single_process_communicator();
  auto net = make_net();
  torch::nn::Linear unused(128, 128);
  std::vector<at::Tensor> params = net->parameters();
  for (const auto& p : unused->parameters()) params.push_back(p);
  GradientReducer reducer(params, *comm,
                          ReducerOptions().bucket_cap_mb(25).first_bucket_cap_mb(0.05));
  for (auto& p : params) p.mutable_grad() = torch::full_like(p, 5.0);  // stale
  torch::manual_seed(100);
  const at::Tensor input = input_of(0);
  reducer.prepare_for_backward();
  net->forward(input).square().mean().backward();
  reducer.finish();

  const auto expected = local_gradients(0);
  const auto net_params = net->parameters();
  for (size_t k = 0; k < net_params.size(); ++k) {
    EXPECT_TRUE(torch::allclose(net_params[k].grad(), expected[k], 1e-6, 1e-8))
        << "parameter " << k;
  }
  for (const auto& p : unused->parameters()) {
    ASSERT_TRUE(p.grad().defined());
    EXPECT_EQ(p.grad().abs().sum().item<float>(), 0.0f);
  }
  for (const auto& bucket : reducer.buckets()) {
    const auto& first = params[bucket.front()].grad();
    for (size_t k : bucket) {
      EXPECT_TRUE(params[k].grad().storage().is_alias_of(first.storage())) << "parameter " << k;
    }
  }
}

}  // namespace
}  // namespace gpulab::distributed
