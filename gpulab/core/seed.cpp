// Seeding: LibTorch generators plus a splitmix64 stream mixer.
#include "gpulab/core/seed.h"

#include <torch/torch.h>

namespace gpulab::core {

void seed_everything(uint64_t seed) {
  torch::manual_seed(seed);
  if (torch::cuda::is_available()) torch::cuda::manual_seed_all(seed);
}

uint64_t mix_seed(uint64_t seed, uint64_t stream) {
  // splitmix64 over the pair.
  uint64_t z = seed + 0x9E3779B97F4A7C15ULL * (stream + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

}  // namespace gpulab::core
