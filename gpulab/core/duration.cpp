// Duration formatting.
#include "gpulab/core/duration.h"

#include <fmt/format.h>

#include <cmath>

namespace gpulab::core {

std::string format_hms(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "--:--:--";
  long total = static_cast<long>(seconds);
  return fmt::format("{:02d}:{:02d}:{:02d}", total / 3600, (total / 60) % 60, total % 60);
}

}  // namespace gpulab::core
