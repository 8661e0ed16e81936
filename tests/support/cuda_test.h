// For GPU tests (names end in _CUDA, label gpu): skip with a reason when
// LibTorch sees no GPU, so the CPU suite passes and says what it skipped.
#pragma once

#include <gtest/gtest.h>
#include <torch/cuda.h>

#define GPULAB_SKIP_WITHOUT_CUDA()                                                     \
  do {                                                                                 \
    if (!torch::cuda::is_available()) {                                                \
      GTEST_SKIP() << "no CUDA device: this LibTorch sees no GPU (a CPU build, or no " \
                      "driver); run on a GPU machine (scripts/device-check.sh)";       \
    }                                                                                  \
  } while (false)
