// Schedule formulas.
#include "gpulab/train/lr_schedule.h"

#include <cmath>

namespace gpulab::train {

double learn_rate_at(const TrainOptions& o, double progress) {
  const double base = o.learn_rate();
  if (o.warmup_epochs() > 0 && progress < o.warmup_epochs()) {
    return base * std::max(progress, 1e-3 * o.warmup_epochs()) / o.warmup_epochs();
  }
  if (o.lr_schedule() == "piecewise") {
    const auto drops = static_cast<int64_t>(std::floor(progress)) / o.lr_drop_period();
    return base * std::pow(o.lr_drop_factor(), static_cast<double>(drops));
  }
  if (o.lr_schedule() == "poly") {
    // ERFNet's LambdaLR: (1 - e/E)^0.9 for whole epoch e, set at each epoch's start.
    const double epoch = std::floor(progress);
    const double left = 1.0 - epoch / static_cast<double>(std::max<int64_t>(1, o.max_epochs()));
    return base * std::pow(std::max(0.0, left), 0.9);
  }
  if (o.lr_schedule() == "cosine") {
    const double span = static_cast<double>(o.max_epochs()) - o.warmup_epochs();
    const double t = span > 0 ? (progress - o.warmup_epochs()) / span : 1.0;
    return 0.5 * base * (1.0 + std::cos(M_PI * std::min(1.0, std::max(0.0, t))));
  }
  return base;
}

}  // namespace gpulab::train
