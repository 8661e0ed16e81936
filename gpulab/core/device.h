// Execution environments (MATLAB's ExecutionEnvironment) and how they resolve
// to LibTorch devices on this machine.
#pragma once

#include <string>
#include <vector>

#include <c10/core/Device.h>

namespace gpulab::core {

enum class ExecutionEnvironment { kAuto, kCpu, kGpu, kMultiGpu, kParallel };

// Case-insensitive "auto|cpu|gpu|multi-gpu|parallel"; throws Error(kInvalidArgument)
// listing the valid names otherwise.
ExecutionEnvironment parse_execution_environment(const std::string& name);
std::string to_string(ExecutionEnvironment env);

// auto: first GPU if one is present, else CPU. gpu: throws Error(kUnavailable)
// when no GPU is present. parallel: the GPU of this rank (local_rank modulo
// the GPUs present) when there are GPUs, else the CPU. multi-gpu: the same,
// but throws Error(kUnavailable) when there is no GPU.
c10::Device resolve_device(ExecutionEnvironment env, int local_rank = 0);

int cuda_device_count();
// "CPU (2 threads)" or "NVIDIA H100 80GB HBM3 (cuda:0)".
std::string describe_device(const c10::Device& device);

// Uses every core (LibTorch's default can be one thread) unless `threads` > 0.
void configure_threads(int threads);

}  // namespace gpulab::core
