// Seeding every random source gpulab uses, so a run is reproducible.
#pragma once

#include <cstdint>

namespace gpulab::core {

// Seeds LibTorch's CPU (and CUDA, when present) generators.
void seed_everything(uint64_t seed);

// A well-mixed 64-bit value from (seed, stream): independent streams for
// per-epoch shuffles etc. that do not depend on global generator state.
uint64_t mix_seed(uint64_t seed, uint64_t stream);

}  // namespace gpulab::core
