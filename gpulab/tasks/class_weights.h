// Class weights for pixel cross-entropy, from the training set's pixel
// counts: MATLAB's median-frequency balancing (its CamVid example) and
// ENet/ERFNet's 1 / ln(c + p).
#pragma once

#include <string>
#include <vector>

#include "gpulab/data/dataset.h"

namespace gpulab::tasks {

// MATLAB: freq_c = PixelCount_c / ImagePixelCount_c; w_c = median(freq) / freq_c,
// the median over the classes present. Absent classes get 0.
std::vector<double> median_frequency_weights(const data::PixelLabelCounts& counts);

// ENet (c = 1.02) and ERFNet (c = 1.10 for its decoder, 1.2 for its encoder):
// w_c = 1 / ln(c + p_c), p_c = PixelCount_c / all labelled pixels. Absent
// classes get 0.
std::vector<double> enet_weights(const data::PixelLabelCounts& counts, double c = 1.10);

// `method`: "none" (empty: no weights), "median-frequency", "enet", or a file
// of one weight per class (one number per line, or a JSON array), in class
// order. Throws Error(kInvalidArgument) for an unknown method and
// Error(kCorruptData) naming the file for a malformed one or one whose count
// differs from `num_classes`.
std::vector<double> class_weights(const std::string& method, const data::PixelLabelCounts& counts,
                                  int64_t num_classes);

}  // namespace gpulab::tasks
