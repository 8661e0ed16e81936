// NCCL through gpulab's communicator with a world of one rank (the most one
// GPU allows: NCCL refuses two ranks on one device), and the bucketed
// gradient reducer on a GPU.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "gpulab/distributed/communicator.h"
#include "gpulab/distributed/gradient_reducer.h"
#include "gpulab/distributed/local_launcher.h"
#include "gpulab/distributed/world.h"
#include "tests/support/cuda_test.h"

namespace gpulab {
namespace {

std::unique_ptr<distributed::Communicator> nccl_group_of_one() {
  distributed::World world;  // rank 0 of 1
  world.master_port = distributed::free_tcp_port();
  return distributed::connect(world, c10::Device(c10::kCUDA, 0),
                       distributed::CommunicatorOptions().backend("nccl").group_for_one_rank(true));
}

TEST(NcclCommunicatorTest, GroupOfOneRankReducesAndBroadcastsInPlace_CUDA) {
  GPULAB_SKIP_WITHOUT_CUDA();
  auto comm = nccl_group_of_one();
  EXPECT_EQ(comm->backend(), "nccl");
  torch::manual_seed(0);
  const at::Tensor original = torch::randn({1 << 20}, torch::kCUDA);
  std::vector<at::Tensor> tensors{original.clone(), original.clone()};
  comm->all_reduce_sum(tensors);
  EXPECT_TRUE(torch::equal(tensors[0], original));
  auto pending = comm->all_reduce_sum_async(tensors[1]);
  pending->wait();
  EXPECT_TRUE(torch::equal(tensors[1], original));
  comm->broadcast(tensors, 0);
  comm->barrier();
  EXPECT_TRUE(torch::equal(tensors[0], original));
}

// With one rank the average is the gradient itself: after finish() every
// parameter's gradient (now a view into its bucket) equals plain backward's.
TEST(NcclCommunicatorTest, GradientReducerOnOneGpuKeepsTheGradients_CUDA) {
  GPULAB_SKIP_WITHOUT_CUDA();
  auto comm = nccl_group_of_one();
  torch::manual_seed(0);
  torch::nn::Sequential net(torch::nn::Conv2d(torch::nn::Conv2dOptions(3, 8, 3)), torch::nn::ReLU(),
                            torch::nn::Flatten(), torch::nn::Linear(8 * 30 * 30, 10));
  net->to(torch::kCUDA);
  const at::Tensor x = torch::randn({4, 3, 32, 32}, torch::kCUDA);
  auto loss = [&] { return net->forward(x).square().mean(); };
  loss().backward();
  std::vector<at::Tensor> expected;
  for (const auto& p : net->parameters()) expected.push_back(p.grad().clone());

  auto parameters = net->parameters();
  for (auto& p : parameters) p.mutable_grad() = at::Tensor();
  // Caps small enough to give several buckets.
  distributed::GradientReducer reducer(
      parameters, *comm, distributed::ReducerOptions().bucket_cap_mb(0.1).first_bucket_cap_mb(0.01));
  EXPECT_GE(reducer.buckets().size(), 2u);
  reducer.prepare_for_backward();
  loss().backward();
  reducer.finish();
  for (size_t k = 0; k < parameters.size(); ++k) {
    ASSERT_TRUE(parameters[k].grad().defined()) << "parameter " << k;
    EXPECT_TRUE(torch::allclose(parameters[k].grad(), expected[k], 1e-5, 1e-6))
        << "parameter " << k;
  }
}

}  // namespace
}  // namespace gpulab
