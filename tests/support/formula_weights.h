// The parity fixtures' fixed weights and output digests, shared by the
// parity tests of torchvision's families, ERFNet and transformer_net: the
// reference scripts (tests/models/fixtures/*_parity.py) fill a network's
// state dict with the same formula and record digests of its outputs.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

namespace gpulab::testing {

// The scripts' hash: 2 frac(43758.5453 sin(0.1 i + 0.7 k)) - 1, i < n, float64.
torch::Tensor formula_hash_values(int64_t n, int64_t k);

// The scripts' formula weights for every state-dict entry of `net`, by
// sorted name (k = the entry's place): running variances and means,
// fan-in-scaled kernels, norm weights near 1, small biases; counters 0.
// Returns the sum of the float32 values written.
double fill_formula_weights(torch::nn::Module& net);

// Expects `out` ([N, C, H, W]) to match a script's digest: its shape, the
// sampled values within 1e-4 of the output's scale, and each channel's sum
// within 1e-4 of its absolute sum. `per` names the digest's keys
// ("class": sum_by_class, abs_sum_by_class; "channel": ..._by_channel).
void expect_matches_digest(const torch::Tensor& out, const nlohmann::json& digest,
                           const std::string& per, const std::string& what);

}  // namespace gpulab::testing
