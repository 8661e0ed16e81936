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

// The plan's crop box in an image decoded at 1/`reduction` of the size the
// box refers to (`cols` x `rows` pixels, libjpeg's rounded-up size), kept
// inside it.
cv::Rect scaled_crop_box(const CropBox& box, int reduction, int cols, int rows);

// apply_plan with the crop already placed: `box` is the plan's crop in
// `image`'s pixels (a decoded region may hold more than the crop).
cv::Mat apply_plan_in_box(const cv::Mat& image, const cv::Rect& box, const SamplePlan& plan,
                          bool bgr);

// The geometry of `plan` (crop, resize, reflection, scale, translation)
// applied to a label-id map (8-bit, one channel, at the size the plan's crop
// box refers to): nearest-neighbour, 255 (no label) outside the image and no
// colour change, so it stays aligned with apply_plan's image pixel for pixel.
// Returns a continuous out_h x out_w map.
cv::Mat apply_plan_to_label_ids(const cv::Mat& ids, const SamplePlan& plan);

}  // namespace gpulab::data::detail
