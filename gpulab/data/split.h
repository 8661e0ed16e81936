// Splitting a labelled set per label, like MATLAB's splitEachLabel(..., 'randomized').
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "gpulab/data/dataset.h"

namespace gpulab::data {

// Takes from every label `amount` of its images for the first part (a fraction
// when 0 < amount < 1, a count when amount >= 1; a count larger than a label's
// images takes them all) and leaves the rest in the second; a fraction
// always leaves at least one image of each label in the second. Chosen at random
// with `seed`, deterministically; each part keeps the original order.
// Throws Error(kInvalidArgument) for amount <= 0.
std::pair<Dataset, Dataset> split_each_label(const Dataset& ds, double amount, uint64_t seed);

// The first `count` images of every label (in dataset order).
Dataset take_each_label(const Dataset& ds, int64_t count);

// Only the images of the `wanted` classes, each given by name or by index,
// relabelled 0..K-1 in the order given; class_names follow. Throws
// Error(kInvalidArgument) naming an unknown or repeated class and listing the
// dataset's classes.
Dataset select_classes(const Dataset& ds, const std::vector<std::string>& wanted);

}  // namespace gpulab::data
