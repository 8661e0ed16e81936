// Crop + one resize, reflection/scale/translation about the centre, colour
// jitter: each on the small output image where possible.
#include "gpulab/data/transform_ops.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <opencv2/imgproc.hpp>

#include "gpulab/core/error.h"

namespace gpulab::data {
namespace detail {
namespace {

void color_jitter(cv::Mat& image, const SamplePlan& p, bool bgr) {
  if (p.brightness == 1 && p.contrast == 1 && p.saturation == 1) return;
  cv::Mat f;
  image.convertTo(f, CV_32F, p.brightness);  // brightness: scale
  // torchvision clamps after every step.
  cv::min(cv::max(f, 0.0), 255.0, f);
  auto grey_of = [&](const cv::Mat& m) {
    if (m.channels() == 1) return m.clone();
    cv::Mat g;
    cv::cvtColor(m, g, bgr ? cv::COLOR_BGR2GRAY : cv::COLOR_RGB2GRAY);
    return g;
  };
  if (p.contrast != 1) {
    const double mean = cv::mean(grey_of(f))[0];
    // Every channel: a Mat + scalar expression would add `mean` to the first
    // channel only (and OpenCV warns about it).
    f.convertTo(f, CV_32F, p.contrast, (1 - p.contrast) * mean);
    cv::min(cv::max(f, 0.0), 255.0, f);
  }
  if (p.saturation != 1 && f.channels() == 3) {
    cv::Mat g3;
    cv::cvtColor(grey_of(f), g3, cv::COLOR_GRAY2BGR);
    cv::addWeighted(f, p.saturation, g3, 1 - p.saturation, 0, f);
  }
  f.convertTo(image, CV_8U);  // rounds and saturates
}

}  // namespace

cv::Rect scaled_crop_box(const CropBox& box, int reduction, int cols, int rows) {
  if (reduction == 1) return {box.x, box.y, box.width, box.height};
  // The decoder rounds sizes up; keep the box inside the reduced image.
  const int x = std::min(box.x / reduction, cols - 1);
  const int y = std::min(box.y / reduction, rows - 1);
  const int w =
      std::clamp(static_cast<int>(std::lround(double(box.width) / reduction)), 1, cols - x);
  const int h =
      std::clamp(static_cast<int>(std::lround(double(box.height) / reduction)), 1, rows - y);
  return {x, y, w, h};
}

cv::Mat apply_plan(const cv::Mat& image, const SamplePlan& p, int reduction, bool bgr) {
  return apply_plan_in_box(image, scaled_crop_box(p.crop, reduction, image.cols, image.rows), p,
                           bgr);
}

namespace {

// How pixels are resampled: images smoothly, label ids nearest-neighbour
// (a label id is a name, not a quantity to interpolate).
struct Resampling {
  int shrink;   // resize to less than half the size
  int resize;   // other resizes
  int warp;     // reflection/scale/translation
  double fill;  // outside the image
};
constexpr Resampling kImagePixels{cv::INTER_AREA, cv::INTER_LINEAR, cv::INTER_LINEAR, 0};
// NEAREST_EXACT samples at pixel centres as INTER_LINEAR does (plain NEAREST
// is shifted by half a source pixel).
constexpr Resampling kLabelIds{cv::INTER_NEAREST_EXACT, cv::INTER_NEAREST_EXACT, cv::INTER_NEAREST,
                               255};

cv::Mat apply_geometry(const cv::Mat& image, const cv::Rect& box, const SamplePlan& p,
                       const Resampling& r) {
  GPULAB_CHECK(box.x >= 0 && box.y >= 0 && box.x + box.width <= image.cols &&
                   box.y + box.height <= image.rows && box.width > 0 && box.height > 0,
               ErrorKind::kInternal, "crop box {}x{}+{}+{} outside a {}x{} image", box.width,
               box.height, box.x, box.y, image.cols, image.rows);
  cv::Mat out;
  const cv::Mat region = image(box);
  if (box.width == p.out_width && box.height == p.out_height) {
    out = region.clone();
  } else {
    // Area averaging only when shrinking a lot (it is slower).
    const bool shrink = box.width >= 2 * p.out_width && box.height >= 2 * p.out_height;
    cv::resize(region, out, cv::Size(p.out_width, p.out_height), 0, 0,
               shrink ? r.shrink : r.resize);
  }
  const bool affine = p.scale_x != 1 || p.scale_y != 1 || p.translate_x != 0 || p.translate_y != 0;
  if (affine) {
    // x' = cx + a (x - cx) + tx about the centre of the pixel grid, a = ±s.
    const double ax = (p.flip_x ? -1 : 1) * p.scale_x, ay = (p.flip_y ? -1 : 1) * p.scale_y;
    const double cx = (out.cols - 1) / 2.0, cy = (out.rows - 1) / 2.0;
    cv::Matx23d m(ax, 0, cx - ax * cx + p.translate_x, 0, ay, cy - ay * cy + p.translate_y);
    cv::Mat warped;
    cv::warpAffine(out, warped, m, out.size(), r.warp, cv::BORDER_CONSTANT,
                   cv::Scalar::all(r.fill));
    out = warped;
  } else if (p.flip_x || p.flip_y) {
    cv::flip(out, out, p.flip_x && p.flip_y ? -1 : (p.flip_x ? 1 : 0));
  }
  return out;
}

}  // namespace

cv::Mat apply_plan_in_box(const cv::Mat& image, const cv::Rect& box, const SamplePlan& p,
                          bool bgr) {
  cv::Mat out = apply_geometry(image, box, p, kImagePixels);
  color_jitter(out, p, bgr);
  if (!out.isContinuous()) out = out.clone();
  return out;
}

cv::Mat apply_plan_to_label_ids(const cv::Mat& ids, const SamplePlan& p) {
  GPULAB_CHECK(ids.type() == CV_8UC1, ErrorKind::kInternal,
               "label ids must be one 8-bit channel, got OpenCV type {}", ids.type());
  cv::Mat out = apply_geometry(ids, scaled_crop_box(p.crop, 1, ids.cols, ids.rows), p, kLabelIds);
  if (!out.isContinuous()) out = out.clone();
  return out;
}

}  // namespace detail

at::Tensor apply_sample_plan(const at::Tensor& image, const SamplePlan& plan) {
  GPULAB_CHECK(image.dim() == 3 && image.scalar_type() == at::kByte &&
                   (image.size(2) == 1 || image.size(2) == 3),
               ErrorKind::kInvalidArgument, "expected [H, W, 1|3] uint8, got {} {}",
               c10::str(image.sizes()), c10::toString(image.scalar_type()));
  auto src = image.contiguous();
  const int c = static_cast<int>(src.size(2));
  cv::Mat m(static_cast<int>(src.size(0)), static_cast<int>(src.size(1)), CV_8UC(c),
            src.data_ptr<uint8_t>());
  cv::Mat out = detail::apply_plan(m, plan, 1, /*bgr=*/false);
  return torch::from_blob(out.data, {out.rows, out.cols, c}, torch::kUInt8).clone();
}

}  // namespace gpulab::data
