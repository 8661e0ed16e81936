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

// LibTorch's CPU threads for one process: `requested` when > 0; else
// (--threads 0) `cores` shared by the `local_ranks` processes of this machine
// (a data-parallel job's ranks on this node; 1 otherwise), at least 1, so
// ranks do not oversubscribe the cores.
int resolve_threads(int requested, int local_ranks, unsigned cores);

// Sets LibTorch's CPU threads to resolve_threads(threads, local_ranks, the
// machine's cores) and returns that count. LibTorch's default can be one
// thread: 0 uses every core (shared among `local_ranks`).
int configure_threads(int threads, int local_ranks = 1);

}  // namespace gpulab::core
