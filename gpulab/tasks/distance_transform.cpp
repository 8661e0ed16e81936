// Squared distance transform: nearest feature per column by two scans, then
// the Felzenszwalb-Huttenlocher lower envelope of parabolas per row.
#include "gpulab/tasks/distance_transform.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "gpulab/core/error.h"

namespace gpulab::tasks {
namespace detail {

void squared_distance_1d(const double* f, int64_t n, int64_t stride, double* d, int64_t* v,
                         double* z) {
  constexpr double kInf = std::numeric_limits<double>::infinity();
  // v[0..k]: the parabolas of the lower envelope; z[k], z[k+1]: the range of
  // q where parabola v[k] is the lowest.
  int64_t k = -1;
  for (int64_t q = 0; q < n; ++q) {
    const double fq = f[q * stride];
    if (std::isinf(fq)) continue;  // no feature: skipping it keeps the arithmetic finite
    if (k < 0) {
      k = 0;
      v[0] = q;
      z[0] = -kInf;
      z[1] = kInf;
      continue;
    }
    double s = 0;
    while (true) {
      const int64_t p = v[k];
      s = ((fq + static_cast<double>(q * q)) - (f[p * stride] + static_cast<double>(p * p))) /
          static_cast<double>(2 * q - 2 * p);
      if (s > z[k]) break;
      --k;  // z[0] = -inf, so k stays >= 0
    }
    ++k;
    v[k] = q;
    z[k] = s;
    z[k + 1] = kInf;
  }
  if (k < 0) {
    for (int64_t q = 0; q < n; ++q) d[q * stride] = kInf;
    return;
  }
  k = 0;
  for (int64_t q = 0; q < n; ++q) {
    while (z[k + 1] < static_cast<double>(q)) ++k;
    const int64_t p = v[k];
    d[q * stride] = static_cast<double>((q - p) * (q - p)) + f[p * stride];
  }
}

}  // namespace detail

std::vector<double> squared_distance_transform(const std::vector<uint8_t>& features, int64_t height,
                                               int64_t width) {
  GPULAB_CHECK(height >= 0 && width >= 0 && static_cast<int64_t>(features.size()) == height * width,
               ErrorKind::kInternal, "distance transform: {} features for a {}x{} grid",
               features.size(), height, width);
  constexpr double kInf = std::numeric_limits<double>::infinity();
  // Columns first: for a binary grid the 1-D transform is the distance to the
  // nearest feature above or below, two scans that walk whole rows (cache
  // friendly, unlike a strided column pass).
  std::vector<double> columns(features.size(), kInf);
  for (int64_t y = 0; y < height; ++y) {
    const uint8_t* f = features.data() + y * width;
    double* d = columns.data() + y * width;
    const double* above = y > 0 ? d - width : nullptr;
    for (int64_t x = 0; x < width; ++x) d[x] = f[x] ? 0.0 : (above ? above[x] + 1 : kInf);
  }
  for (int64_t y = height - 2; y >= 0; --y) {
    double* d = columns.data() + y * width;
    const double* below = d + width;
    for (int64_t x = 0; x < width; ++x) d[x] = std::min(d[x], below[x] + 1);
  }
  for (double& d : columns) d *= d;  // inf stays inf
  // Then the exact lower envelope of parabolas along each row.
  std::vector<double> out(features.size());
  std::vector<int64_t> v(static_cast<size_t>(width));
  std::vector<double> z(static_cast<size_t>(width + 1));
  for (int64_t y = 0; y < height; ++y) {
    detail::squared_distance_1d(columns.data() + y * width, width, 1, out.data() + y * width,
                                v.data(), z.data());
  }
  return out;
}

}  // namespace gpulab::tasks
