// Exact Euclidean distance transform of a binary grid (Felzenszwalb and
// Huttenlocher, "Distance Transforms of Sampled Functions", 2012): the BF
// score's distances from one boundary to the other. LibTorch has none.
#pragma once

#include <cstdint>
#include <vector>

namespace gpulab::tasks {

// For every pixel of a row-major height x width grid, the squared Euclidean
// distance (in pixels², an exact integer held in a double) to the nearest
// pixel whose `features` entry is non-zero; +infinity everywhere when no pixel
// is. O(height * width) time. Thread-safe (no shared state).
// Precondition: features.size() == height * width.
std::vector<double> squared_distance_transform(const std::vector<uint8_t>& features, int64_t height,
                                               int64_t width);

namespace detail {

// The 1-D pass: d[q] = min_p ((q - p)² + f[p]) over the n samples f[0..n) read
// with `stride` (and written to d with the same stride); samples equal to
// +infinity are not parabolas (so a line with none gives +infinity).
// `v` and `z` are scratch of at least n and n + 1 entries.
void squared_distance_1d(const double* f, int64_t n, int64_t stride, double* d, int64_t* v,
                         double* z);

}  // namespace detail
}  // namespace gpulab::tasks
