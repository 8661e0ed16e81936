// When the trainer may replay its GPU step as a CUDA graph, checked where the
// suite always runs (the replays themselves: graphed_step_cuda_test.cpp).
#include <gtest/gtest.h>

#include "gpulab/core/cuda_graph.h"
#include "gpulab/core/error.h"
#include "gpulab/train/graphed_step.h"

namespace gpulab::train {
namespace {

const c10::Device kGpu(c10::kCUDA, 0);

TEST(GraphedStepTest, CpuStepsAreNeverCaptured) {
  EXPECT_EQ(cuda_graph_blocker(TrainOptions(), c10::Device(c10::kCPU), false),
            "the step runs on a CPU");
}

TEST(GraphedStepTest, TheFlagTurnsGraphsOff) {
  EXPECT_EQ(cuda_graph_blocker(TrainOptions().cuda_graphs(false), kGpu, false),
            "`cuda_graphs` is false");
}

TEST(GraphedStepTest, GpuStepsAreCapturedWithSgdmInOneProcess) {
  if (!core::cuda_graphs_available()) {
    EXPECT_NE(cuda_graph_blocker(TrainOptions(), kGpu, false).find("GPULAB_WITH_CUDA_GRAPHS"),
              std::string::npos);
    return;
  }
  EXPECT_EQ(cuda_graph_blocker(TrainOptions(), kGpu, false), "");
}

TEST(GraphedStepTest, HostStateOrRanksKeepTheStepEager) {
  EXPECT_EQ(cuda_graph_blocker(TrainOptions().solver("adam"), kGpu, false),
            "the adam solver counts its steps on the host");
  EXPECT_EQ(cuda_graph_blocker(TrainOptions().solver("rmsprop"), kGpu, false),
            "the rmsprop solver counts its steps on the host");
  EXPECT_NE(cuda_graph_blocker(TrainOptions(), kGpu, true).find("all-reduce"), std::string::npos);
}

TEST(GraphedStepTest, ABuildWithoutGraphsRefusesToMakeOne) {
  if (core::cuda_graphs_available()) GTEST_SKIP() << "this build has CUDA graphs";
  try {
    core::CudaGraph graph(kGpu);
    FAIL() << "expected Error(kUnavailable)";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kUnavailable);
    EXPECT_NE(std::string(e.what()).find("GPULAB_WITH_CUDA_GRAPHS"), std::string::npos);
  }
}

}  // namespace
}  // namespace gpulab::train
