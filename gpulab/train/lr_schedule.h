// Learn-rate schedules as pure functions of training progress, so a resumed run
// gets the same rates.
#pragma once

#include "gpulab/train/train_options.h"

namespace gpulab::train {

// Learn rate at fractional epoch `progress` (0 at the start; e.g. 1.5 = half
// way through the second epoch). piecewise drops at whole epochs
// (MATLAB: LearnRateDropPeriod), poly is ERFNet's (1 - e/max_epochs)^0.9 for
// whole epoch e (0-based), cosine decays to 0 at max_epochs, warm-up
// ramps linearly from lr/steps to lr over warmup_epochs.
double learn_rate_at(const TrainOptions& options, double progress);

}  // namespace gpulab::train
