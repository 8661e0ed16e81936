// The one place that knows LibTorch version differences (Debian's 1.13 CPU
// build vs CUDA LibTorch 2.x). Include only from .cpp files.
#pragma once

#include <torch/version.h>

#include <sstream>
#include <string>
#include <type_traits>
#include <variant>

#define GPULAB_TORCH_AT_LEAST(major, minor) \
  (TORCH_VERSION_MAJOR > (major) ||         \
   (TORCH_VERSION_MAJOR == (major) && TORCH_VERSION_MINOR >= (minor)))

namespace gpulab::compat {

// "1.13.1" etc.
inline const char* torch_version() {
  return TORCH_VERSION;
}

}  // namespace gpulab::compat

#if !GPULAB_TORCH_AT_LEAST(2, 1)
#include <c10/util/variant.h>
#endif

namespace gpulab::compat {

// get_if on LibTorch's option variants (e.g. a conv's padding): c10::variant
// up to 2.0, std::variant from 2.1. Null when `v` holds another alternative.
template <class T, class Variant>
const T* variant_get_if(const Variant* v) {
#if GPULAB_TORCH_AT_LEAST(2, 1)
  return std::get_if<T>(v);
#else
  return c10::get_if<T>(v);
#endif
}

}  // namespace gpulab::compat

#include <ATen/autocast_mode.h>

namespace c10d {
class ProcessGroup;
class Backend;
}  // namespace c10d

namespace gpulab::compat {

// Turns CUDA autocast on with `dtype` (bf16/fp16) or off. LibTorch 2.4 moved
// to device-type-keyed setters; older versions have the GPU-specific ones.
inline void set_cuda_autocast(bool enabled, c10::ScalarType dtype) {
#if GPULAB_TORCH_AT_LEAST(2, 4)
  at::autocast::set_autocast_enabled(c10::DeviceType::CUDA, enabled);
  if (enabled) at::autocast::set_autocast_dtype(c10::DeviceType::CUDA, dtype);
#else
  at::autocast::set_enabled(enabled);
  if (enabled) at::autocast::set_autocast_gpu_dtype(dtype);
#endif
  if (!enabled) at::autocast::clear_cache();
}

}  // namespace gpulab::compat

namespace gpulab::compat {

// The type c10d's Gloo and NCCL groups derive from: LibTorch 2.0 split the
// per-device Backend out of ProcessGroup; the collectives' signatures match.
#if GPULAB_TORCH_AT_LEAST(2, 0)
using C10dBackend = c10d::Backend;
#else
using C10dBackend = c10d::ProcessGroup;
#endif

}  // namespace gpulab::compat

namespace gpulab::compat {

// c10::Allocator::allocate lost its const in LibTorch 2.3, which also made
// copy_data pure virtual. Use as: c10::DataPtr allocate(size_t n)
// GPULAB_ALLOCATE_CONST override.
#if GPULAB_TORCH_AT_LEAST(2, 3)
#define GPULAB_ALLOCATE_CONST
#else
#define GPULAB_ALLOCATE_CONST const
#endif

}  // namespace gpulab::compat

namespace gpulab::compat {

// CUDAGraph::capture_begin takes a capture mode from LibTorch 2.1. Thread-
// local capture lets loader threads allocate pinned memory and copy on their
// own streams while the training thread captures; before 2.1 capture is
// global. Use as: GPULAB_CAPTURE_BEGIN(graph) on an at::cuda::CUDAGraph.
#if GPULAB_TORCH_AT_LEAST(2, 1)
#define GPULAB_CAPTURE_BEGIN(graph) (graph).capture_begin({0, 0}, cudaStreamCaptureModeThreadLocal)
#else
#define GPULAB_CAPTURE_BEGIN(graph) (graph).capture_begin()
#endif

}  // namespace gpulab::compat

namespace gpulab::compat {

// torch::optim::Optimizer keys each parameter's state by its TensorImpl's
// address: as text (c10::guts::to_string, an ostream's "0x...") before
// LibTorch 2.x, as void* since. `StateMap` is the optimizer's state_ type.
template <typename StateMap>
typename StateMap::key_type optimizer_state_key(const StateMap&, const at::Tensor& parameter) {
  if constexpr (std::is_same_v<typename StateMap::key_type, std::string>) {
    std::ostringstream text;
    text << parameter.unsafeGetTensorImpl();
    return text.str();
  } else {
    return static_cast<void*>(parameter.unsafeGetTensorImpl());
  }
}

}  // namespace gpulab::compat
