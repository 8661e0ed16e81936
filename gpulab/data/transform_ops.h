// The OpenCV side of transforms.h: applying a SamplePlan to a decoded image.
// Internal to gpulab_data (OpenCV stays out of public headers).
#pragma once

#include <opencv2/core.hpp>

#include "gpulab/data/transforms.h"

namespace gpulab::data::detail {

// `image`: 8-bit, 1 or 3 channels, any channel order (the ops are
// channel-symmetric except saturation, which takes `bgr` to weigh the grey).
// `reduction`: the image was decoded at 1/reduction of the size the plan's
// crop box refers to. Returns a continuous out_h x out_w image.
cv::Mat apply_plan(const cv::Mat& image, const SamplePlan& plan, int reduction, bool bgr);

}  // namespace gpulab::data::detail
