// Partial JPEG decoding is what makes the loader fast: libjpeg-turbo's scaled
// IDCT decodes at 1/2, 1/4 or 1/8 of the size for much less work, and a random
// resized crop of a 500x375 photo to 224 rarely needs every pixel, so only
// the crop's columns and rows are decoded (jpeg_region.h).
#include "gpulab/data/sample_decoder.h"

#include <cstring>
#include <opencv2/imgproc.hpp>

#include "gpulab/core/error.h"
#include "gpulab/data/image_codec.h"
#include "gpulab/data/image_header.h"
#include "gpulab/data/jpeg_region.h"
#include "gpulab/data/transform_ops.h"

namespace gpulab::data {
namespace {

// The largest reduction (8, 4, 2) that keeps the crop at least the output
// size, so the final resize still shrinks or keeps size.
int reduction_for(const SamplePlan& p) {
  for (int r : {8, 4, 2}) {
    if (p.crop.width / r >= p.out_width && p.crop.height / r >= p.out_height) return r;
  }
  return 1;
}

// Decodes only the JPEG region the plan's crop needs and writes the output;
// false when this build or the file's colour space (CMYK) needs a whole-image
// decode instead.
bool decode_jpeg_crop(const std::string& name, const std::string& bytes, const SamplePlan& plan,
                      int reduction, const ImageHeader& header, int channels, uint8_t* out,
                      size_t out_bytes) {
  if (!detail::jpeg_region_decoding_available()) return false;
  // libjpeg's reduced size rounds up.
  const int cols = static_cast<int>((header.width + reduction - 1) / reduction);
  const int rows = static_cast<int>((header.height + reduction - 1) / reduction);
  const cv::Rect box = detail::scaled_crop_box(plan.crop, reduction, cols, rows);
  const auto region = detail::decode_jpeg_region(name, bytes, reduction, channels, box);
  if (!region) return false;
  const cv::Mat result =
      detail::apply_plan_in_box(region->pixels, region->box, plan, /*bgr=*/false);
  std::memcpy(out, result.data, out_bytes);
  return true;
}

}  // namespace

SampleDecoder::SampleDecoder(TransformOptions transforms, int64_t max_pixels,
                             bool jpeg_region_decode)
    : transforms_(std::move(transforms)),
      max_pixels_(max_pixels),
      jpeg_region_decode_(jpeg_region_decode) {
  transforms_.validate();
  const auto size = transforms_.output_size(0, 0);
  out_h_ = size[0];
  out_w_ = size[1];
  GPULAB_CHECK(out_h_ > 0 && out_w_ > 0, ErrorKind::kInvalidArgument,
               "the loader needs a fixed output size (a crop, a resize or an image size)");
  GPULAB_CHECK(transforms_.channels() == 1 || transforms_.channels() == 3,
               ErrorKind::kInvalidArgument, "the loader makes 1- or 3-channel images, asked for {}",
               transforms_.channels());
  GPULAB_CHECK(max_pixels_ > 0, ErrorKind::kInvalidArgument, "max pixels must be > 0, got {}",
               max_pixels_);
}

SamplePlan SampleDecoder::plan_for(int src_h, int src_w, uint64_t seed) const {
  SamplePlan plan = plan_sample(transforms_, src_h, src_w, seed);
  plan.out_height = out_h_;
  plan.out_width = out_w_;
  return plan;
}

std::array<int, 3> SampleDecoder::probe(const std::string& name, const std::string& bytes,
                                        int64_t max_pixels) {
  detail::check_encoded_image(name, bytes, max_pixels);
  const cv::Mat image = detail::decode_image(name, bytes, /*channels=*/0).pixels;
  detail::check_decoded_size(name, image, max_pixels);
  return {image.rows, image.cols, image.channels()};
}

void SampleDecoder::decode(const std::string& name, const std::string& bytes, uint64_t seed,
                           uint8_t* out) const {
  decode_planned(name, bytes, seed, out);
}

void SampleDecoder::decode(const std::string& name, const std::string& bytes, uint64_t seed,
                           uint8_t* out, const at::Tensor& label_ids, const std::string& label_name,
                           uint8_t* label_out) const {
  GPULAB_CHECK(label_ids.dim() == 2 && label_ids.scalar_type() == at::kByte &&
                   label_ids.is_contiguous() && label_ids.device().is_cpu(),
               ErrorKind::kInternal, "label ids of '{}' must be contiguous [H, W] uint8 on the CPU",
               label_name);
  const int label_h = static_cast<int>(label_ids.size(0)),
            label_w = static_cast<int>(label_ids.size(1));
  const Planned planned = decode_planned(name, bytes, seed, out);
  GPULAB_CHECK(planned.src_h == label_h && planned.src_w == label_w, ErrorKind::kCorruptData,
               "label file '{}' is {}x{} (WxH) but its image '{}' is {}x{}; a label map must "
               "have its image's size",
               label_name, label_w, label_h, name, planned.src_w, planned.src_h);
  const cv::Mat ids(label_h, label_w, CV_8UC1, label_ids.data_ptr<uint8_t>());
  const cv::Mat result = detail::apply_plan_to_label_ids(ids, planned.plan);
  std::memcpy(label_out, result.data, static_cast<size_t>(out_h_) * out_w_);
}

SampleDecoder::Planned SampleDecoder::decode_planned(const std::string& name,
                                                     const std::string& bytes, uint64_t seed,
                                                     uint8_t* out) const {
  const auto header = detail::check_encoded_image(name, bytes, max_pixels_);
  const bool jpeg = header && header->format == "jpeg";
  const int channels = transforms_.channels();
  detail::DecodedImage image;
  int reduction = 1;
  Planned planned;
  if (jpeg) {
    // The header gives the size, so the plan (and the reduction) comes first.
    planned.src_h = static_cast<int>(header->height);
    planned.src_w = static_cast<int>(header->width);
    planned.plan = plan_for(planned.src_h, planned.src_w, seed);
    reduction = reduction_for(planned.plan);
    if (jpeg_region_decode_ &&
        decode_jpeg_crop(name, bytes, planned.plan, reduction, *header, channels, out,
                         static_cast<size_t>(sample_bytes()))) {
      return planned;
    }
    image = detail::decode_image(name, bytes, channels, reduction);
  } else {
    image = detail::decode_image(name, bytes, channels);
    const cv::Mat& pixels = image.pixels;
    detail::check_decoded_size(name, pixels, max_pixels_);
    planned.src_h = pixels.rows;
    planned.src_w = pixels.cols;
    planned.plan = plan_for(pixels.rows, pixels.cols, seed);
  }
  cv::Mat result = detail::apply_plan(image.pixels, planned.plan, reduction, image.bgr);
  if (channels == 3 && image.bgr) cv::cvtColor(result, result, cv::COLOR_BGR2RGB);
  std::memcpy(out, result.data, static_cast<size_t>(sample_bytes()));
  return planned;
}

}  // namespace gpulab::data
