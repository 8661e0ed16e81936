// The full build decodes with OpenCV's imgcodecs; the GPU machine's reduced
// build cannot carry it (Debian's libopencv-imgcodecs pulls in GDAL, OpenEXR
// and more), so there libjpeg-turbo decodes JPEG, the format of ImageNet-like
// training sets, and other formats fail with a message that says why.
#include "gpulab/data/image_codec.h"

#include <fmt/format.h>

#include <cctype>
#include <cstdint>

#include "gpulab/core/error.h"
#include "gpulab/data/image_header.h"
#include "gpulab/data/jpeg_region.h"

#include <opencv2/imgproc.hpp>

#if defined(GPULAB_WITH_IMGCODECS)
#include <opencv2/imgcodecs.hpp>
#endif

namespace gpulab::data::detail {
namespace {

constexpr const char* kSkipHint = "(use `skip_bad_files` to skip such files)";

#if defined(GPULAB_WITH_IMGCODECS)

int imread_mode(int channels, int reduction) {
  if (channels == 0) return cv::IMREAD_UNCHANGED;
  if (channels == 1) {
    switch (reduction) {
      case 2:
        return cv::IMREAD_REDUCED_GRAYSCALE_2;
      case 4:
        return cv::IMREAD_REDUCED_GRAYSCALE_4;
      case 8:
        return cv::IMREAD_REDUCED_GRAYSCALE_8;
      default:
        return cv::IMREAD_GRAYSCALE;
    }
  }
  switch (reduction) {
    case 2:
      return cv::IMREAD_REDUCED_COLOR_2;
    case 4:
      return cv::IMREAD_REDUCED_COLOR_4;
    case 8:
      return cv::IMREAD_REDUCED_COLOR_8;
    default:
      return cv::IMREAD_COLOR;
  }
}

DecodedImage decode_with_opencv(const std::string& name, const std::string& bytes, int channels,
                                int reduction) {
  // IMREAD_UNCHANGED never applies EXIF orientation; the other modes need the flag.
  const int mode = imread_mode(channels, reduction);
  const int flags = channels == 0 ? mode : mode | cv::IMREAD_IGNORE_ORIENTATION;
  DecodedImage image;
  image.bgr = true;
  try {
    const cv::Mat raw(1, static_cast<int>(bytes.size()), CV_8U, const_cast<char*>(bytes.data()));
    image.pixels = cv::imdecode(raw, flags);
  } catch (const cv::Exception& e) {
    GPULAB_FAIL(ErrorKind::kCorruptData, "cannot decode image '{}': {} {}", name, e.what(),
                kSkipHint);
  }
  GPULAB_CHECK(!image.pixels.empty(), ErrorKind::kCorruptData,
               "cannot decode image '{}': not an image OpenCV can read, or a truncated file {}",
               name, kSkipHint);
  return image;
}

#endif

// The start-of-image marker; libjpeg judges the rest.
bool starts_like_jpeg(const std::string& bytes) {
  return bytes.size() >= 2 && static_cast<uint8_t>(bytes[0]) == 0xFF &&
         static_cast<uint8_t>(bytes[1]) == 0xD8;
}

std::string upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

DecodedImage decode_jpeg_only(const std::string& name, const std::string& bytes, int channels,
                              int reduction) {
  if (!starts_like_jpeg(bytes)) {
    const auto header = read_image_header(bytes);
    GPULAB_FAIL(ErrorKind::kCorruptData,
                "cannot decode image '{}': {}, and this build reads JPEG only (built without "
                "OpenCV imgcodecs) {}",
                name,
                header ? fmt::format("it is a {} file", upper(header->format)) : "it is not a JPEG",
                kSkipHint);
  }
  DecodedImage image;
  image.pixels = decode_jpeg_image(name, bytes, reduction, channels);
  image.bgr = false;
  return image;
}

}  // namespace

ImageDecoder build_decoder() {
#if defined(GPULAB_WITH_IMGCODECS)
  return ImageDecoder::kOpenCv;
#else
  return ImageDecoder::kJpegOnly;
#endif
}

bool decoder_available(ImageDecoder decoder) {
  if (decoder == ImageDecoder::kJpegOnly) return jpeg_region_decoding_available();
#if defined(GPULAB_WITH_IMGCODECS)
  return true;
#else
  return false;
#endif
}

DecodedImage decode_image(const std::string& name, const std::string& bytes, int channels,
                          int reduction, ImageDecoder decoder) {
  GPULAB_CHECK(channels == 0 || channels == 1 || channels == 3, ErrorKind::kInternal,
               "images decode to 0 (as stored), 1 or 3 channels, asked for {}", channels);
  GPULAB_CHECK(decoder_available(decoder), ErrorKind::kUnavailable,
               "cannot decode image '{}': this build has no {}", name,
               decoder == ImageDecoder::kOpenCv ? "OpenCV imgcodecs" : "libjpeg-turbo");
  GPULAB_CHECK(!bytes.empty(), ErrorKind::kCorruptData,
               "image '{}' is an empty (zero-byte) file {}", name, kSkipHint);
  if (decoder == ImageDecoder::kJpegOnly) return decode_jpeg_only(name, bytes, channels, reduction);
#if defined(GPULAB_WITH_IMGCODECS)
  return decode_with_opencv(name, bytes, channels, reduction);
#else
  GPULAB_FAIL(ErrorKind::kInternal, "no OpenCV imgcodecs in this build");
#endif
}

std::optional<ImageHeader> check_encoded_image(const std::string& name, const std::string& bytes,
                                               int64_t max_pixels) {
  GPULAB_CHECK(!bytes.empty(), ErrorKind::kCorruptData,
               "image '{}' is an empty (zero-byte) file {}", name, kSkipHint);
  const auto header = read_image_header(bytes);
  if (!header) return header;
  GPULAB_CHECK(header->width > 0 && header->height > 0, ErrorKind::kCorruptData,
               "image '{}' ({}) declares a size of {}x{} {}", name, header->format, header->width,
               header->height, kSkipHint);
  GPULAB_CHECK(header->width * header->height <= max_pixels, ErrorKind::kCorruptData,
               "image '{}' ({}) is {}x{} = {} pixels, above the limit of {} (a decompression "
               "bomb?); raise `max_pixels` if it is genuine {}",
               name, header->format, header->width, header->height, header->width * header->height,
               max_pixels, kSkipHint);
  // libjpeg only warns about a truncated file and returns grey rows.
  GPULAB_CHECK(header->format != "jpeg" || jpeg_is_complete(bytes), ErrorKind::kCorruptData,
               "image '{}' is a truncated JPEG (its last scan has no end-of-image marker) {}", name,
               kSkipHint);
  return header;
}

void check_decoded_size(const std::string& name, const cv::Mat& pixels, int64_t max_pixels) {
  GPULAB_CHECK(int64_t{pixels.rows} * pixels.cols <= max_pixels, ErrorKind::kCorruptData,
               "image '{}' is {}x{} pixels, above the limit of {}; raise `max_pixels` {}", name,
               pixels.cols, pixels.rows, max_pixels, kSkipHint);
}

cv::Mat resize_pixels(const cv::Mat& pixels, int height, int width) {
  if (pixels.rows == height && pixels.cols == width) return pixels;
  const bool shrinking = height < pixels.rows && width < pixels.cols;
  cv::Mat out;
  cv::resize(pixels, out, cv::Size(width, height), 0, 0,
             shrinking ? cv::INTER_AREA : cv::INTER_LINEAR);
  return out;
}

}  // namespace gpulab::data::detail
