// Encoding with OpenCV's imgcodecs, written atomically.
#include "gpulab/data/image_encode.h"

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>
#ifdef GPULAB_WITH_IMGCODECS
#include <opencv2/imgcodecs.hpp>
#endif

#include <filesystem>
#include <string>
#include <vector>

#include "gpulab/core/atomic_file.h"
#include "gpulab/core/error.h"
#include "gpulab/core/text.h"

namespace gpulab::data {

void write_image_file(const std::string& path, const at::Tensor& image) {
  GPULAB_CHECK(image.dim() == 3 && (image.size(2) == 1 || image.size(2) == 3) &&
                   image.scalar_type() == at::kByte,
               ErrorKind::kInvalidArgument,
               "'{}': an image to write is [H, W, 1|3] uint8, got [{}]", path,
               fmt::join(image.sizes(), ", "));
#ifdef GPULAB_WITH_IMGCODECS
  const std::string ext = core::to_lower(std::filesystem::path(path).extension().string());
  const at::Tensor pixels = image.contiguous();
  cv::Mat mat(static_cast<int>(pixels.size(0)), static_cast<int>(pixels.size(1)),
              pixels.size(2) == 3 ? CV_8UC3 : CV_8UC1, pixels.data_ptr<uint8_t>());
  cv::Mat bgr;
  if (pixels.size(2) == 3) {
    cv::cvtColor(mat, bgr, cv::COLOR_RGB2BGR);
  } else {
    bgr = mat;
  }
  std::vector<uchar> bytes;
  bool ok = false;
  try {
    ok = cv::imencode(ext, bgr, bytes);
  } catch (const cv::Exception&) {
    ok = false;
  }
  GPULAB_CHECK(ok, ErrorKind::kInvalidArgument,
               "cannot write '{}': '{}' is not an image format OpenCV writes (use .png or .jpg)",
               path, ext);
  core::write_file_atomic(path, std::string(bytes.begin(), bytes.end()));
#else
  GPULAB_FAIL(ErrorKind::kUnavailable,
              "cannot write '{}': this build decodes JPEG only and writes no images", path);
#endif
}

}  // namespace gpulab::data
