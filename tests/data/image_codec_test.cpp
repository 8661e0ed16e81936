// The JPEG-only decoder (what a build without OpenCV's imgcodecs reads
// with) against OpenCV's: the same pixels at every scale and colour space,
// other formats refused with a message naming the file, and the transforms
// giving the same output from its RGB pixels as from OpenCV's BGR ones.
#include <gtest/gtest.h>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <cstdlib>
#include <string>
#include <vector>

#include "gpulab/core/error.h"
#include "gpulab/data/image_codec.h"
#include "gpulab/data/transform_ops.h"
#include "gpulab/data/transforms.h"

#if defined(GPULAB_WITH_LIBJPEG)
#include <cstdio>

#include <jpeglib.h>
#endif

namespace gpulab::data {
namespace {

using detail::decode_image;
using detail::ImageDecoder;

// A colour gradient plus noise (chroma subsampling matters at every pixel);
// odd sizes leave partial iMCUs and odd reduced sizes.
cv::Mat test_photo(int rows, int cols, int seed = 3) {
  cv::Mat img(rows, cols, CV_8UC3);
  cv::RNG rng(seed);
  for (int y = 0; y < rows; ++y) {
    for (int x = 0; x < cols; ++x) {
      img.at<cv::Vec3b>(y, x) =
          cv::Vec3b(cv::saturate_cast<uchar>(x * 255 / cols + rng.uniform(-25, 25)),
                    cv::saturate_cast<uchar>(y * 255 / rows + rng.uniform(-25, 25)),
                    cv::saturate_cast<uchar>((3 * x + y) % 256));
    }
  }
  return img;
}

std::string encode(const cv::Mat& img, const std::string& ext, std::vector<int> params = {}) {
  std::vector<uchar> buf;
  EXPECT_TRUE(cv::imencode(ext, img, buf, params));
  return std::string(buf.begin(), buf.end());
}

// `a` and `b` have the same size, type and pixels.
::testing::AssertionResult same_pixels(const cv::Mat& a, const cv::Mat& b) {
  if (a.size() != b.size() || a.type() != b.type()) {
    return ::testing::AssertionFailure() << "sizes " << a.size() << " / " << b.size() << ", types "
                                         << a.type() << " / " << b.type();
  }
  cv::Mat diff;
  cv::absdiff(a, b, diff);
  const int differing = cv::countNonZero(diff.reshape(1));
  if (differing == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << differing << " values differ";
}

// OpenCV's pixels in RGB order, as the JPEG-only decoder returns them.
cv::Mat opencv_rgb(const std::string& bytes, int channels, int reduction) {
  const auto decoded = decode_image("t.jpg", bytes, channels, reduction, ImageDecoder::kOpenCv);
  EXPECT_TRUE(decoded.bgr);
  cv::Mat out = decoded.pixels;
  if (out.channels() == 3) cv::cvtColor(out, out, cv::COLOR_BGR2RGB);
  return out;
}

void expect_jpeg_only_equals_opencv(const std::string& bytes, std::vector<int> channel_counts) {
  if (!detail::decoder_available(ImageDecoder::kJpegOnly)) {
    GTEST_SKIP() << "built without libjpeg-turbo";
  }
  for (int channels : channel_counts) {
    for (int reduction : {1, 2, 4, 8}) {
      SCOPED_TRACE(testing::Message() << "channels " << channels << " reduction " << reduction);
      const auto ours = decode_image("t.jpg", bytes, channels, reduction, ImageDecoder::kJpegOnly);
      EXPECT_FALSE(ours.bgr);
      EXPECT_TRUE(same_pixels(ours.pixels, opencv_rgb(bytes, channels, reduction)));
    }
  }
}

std::string expect_corrupt_data(const std::string& name, const std::string& bytes) {
  try {
    decode_image(name, bytes, 3, 1, ImageDecoder::kJpegOnly);
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kCorruptData) << e.what();
    EXPECT_NE(std::string(e.what()).find(name), std::string::npos) << e.what();
    return e.what();
  }
  ADD_FAILURE() << "no error for " << name;
  return "";
}

#if defined(GPULAB_WITH_LIBJPEG)
// A JPEG stored as CMYK or YCCK (with Adobe's marker, as Photoshop writes
// them); OpenCV's encoder cannot write one.
std::string encode_cmyk_jpeg(const cv::Mat& cmyk, J_COLOR_SPACE stored) {
  jpeg_compress_struct c{};
  jpeg_error_mgr err{};
  c.err = jpeg_std_error(&err);
  jpeg_create_compress(&c);
  unsigned char* buf = nullptr;
  unsigned long size = 0;
  jpeg_mem_dest(&c, &buf, &size);
  c.image_width = static_cast<JDIMENSION>(cmyk.cols);
  c.image_height = static_cast<JDIMENSION>(cmyk.rows);
  c.input_components = 4;
  c.in_color_space = JCS_CMYK;
  jpeg_set_defaults(&c);
  jpeg_set_colorspace(&c, stored);
  jpeg_set_quality(&c, 90, TRUE);
  jpeg_start_compress(&c, TRUE);
  while (c.next_scanline < c.image_height) {
    JSAMPROW row = const_cast<uchar*>(cmyk.ptr<uchar>(static_cast<int>(c.next_scanline)));
    jpeg_write_scanlines(&c, &row, 1);
  }
  jpeg_finish_compress(&c);
  std::string out(reinterpret_cast<char*>(buf), size);
  jpeg_destroy_compress(&c);
  std::free(buf);
  return out;
}
#endif

}  // namespace

TEST(ImageCodecTest, JpegOnlyDecodeEqualsOpenCvAtEveryScale) {
  expect_jpeg_only_equals_opencv(encode(test_photo(157, 203), ".jpg"), {1, 3});
}

TEST(ImageCodecTest, JpegOnlyProgressiveAndRestartIntervalsEqualOpenCv) {
  expect_jpeg_only_equals_opencv(
      encode(test_photo(121, 250), ".jpg", {cv::IMWRITE_JPEG_PROGRESSIVE, 1}), {1, 3});
  expect_jpeg_only_equals_opencv(
      encode(test_photo(64, 47), ".jpg",
             {cv::IMWRITE_JPEG_RST_INTERVAL, 3, cv::IMWRITE_JPEG_OPTIMIZE, 1}),
      {1, 3});
}

TEST(ImageCodecTest, JpegOnlyGreyJpegExpandsToRgbAndProbesAsOneChannel) {
  cv::Mat grey;
  cv::cvtColor(test_photo(66, 91), grey, cv::COLOR_BGR2GRAY);
  const std::string bytes = encode(grey, ".jpg");
  expect_jpeg_only_equals_opencv(bytes, {1, 3});
  // Channels "as stored" (how image folders probe their first image).
  const auto probe = decode_image("g.jpg", bytes, 0, 1, ImageDecoder::kJpegOnly);
  EXPECT_EQ(probe.pixels.channels(), 1);
  EXPECT_TRUE(same_pixels(probe.pixels, opencv_rgb(bytes, 0, 1)));
  const std::string colour = encode(test_photo(30, 40), ".jpg");
  EXPECT_EQ(decode_image("c.jpg", colour, 0, 1, ImageDecoder::kJpegOnly).pixels.channels(), 3);
}

TEST(ImageCodecTest, JpegOnlyCmykAndYcckEqualOpenCv) {
#if defined(GPULAB_WITH_LIBJPEG)
  const cv::Mat photo = test_photo(75, 98);
  cv::Mat cmyk(photo.rows, photo.cols, CV_8UC4);
  for (int y = 0; y < photo.rows; ++y) {
    for (int x = 0; x < photo.cols; ++x) {
      const cv::Vec3b p = photo.at<cv::Vec3b>(y, x);
      cmyk.at<cv::Vec4b>(y, x) = cv::Vec4b(p[0], p[1], p[2], static_cast<uchar>((x * 7 + y) % 256));
    }
  }
  expect_jpeg_only_equals_opencv(encode_cmyk_jpeg(cmyk, JCS_CMYK), {1, 3});
  expect_jpeg_only_equals_opencv(encode_cmyk_jpeg(cmyk, JCS_YCCK), {1, 3});
#else
  GTEST_SKIP() << "built without libjpeg-turbo";
#endif
}

TEST(ImageCodecTest, JpegOnlyRefusesOtherFormatsSayingWhy) {
  if (!detail::decoder_available(ImageDecoder::kJpegOnly)) {
    GTEST_SKIP() << "built without libjpeg-turbo";
  }
  const std::string png = expect_corrupt_data("photos/cat/1.png", encode(test_photo(8, 8), ".png"));
  EXPECT_NE(png.find("PNG"), std::string::npos) << png;
  EXPECT_NE(png.find("JPEG only"), std::string::npos) << png;
  EXPECT_NE(png.find("imgcodecs"), std::string::npos) << png;
  EXPECT_NE(png.find("`skip_bad_files`"), std::string::npos) << png;
  const std::string text = expect_corrupt_data("photos/cat/notes.jpg", "hello, world");
  EXPECT_NE(text.find("not a JPEG"), std::string::npos) << text;
  const std::string empty = expect_corrupt_data("photos/cat/empty.jpg", "");
  EXPECT_NE(empty.find("zero-byte"), std::string::npos) << empty;
}

TEST(ImageCodecTest, JpegOnlyCorruptJpegNamesTheFile) {
  if (!detail::decoder_available(ImageDecoder::kJpegOnly)) {
    GTEST_SKIP() << "built without libjpeg-turbo";
  }
  // A start-of-image marker, then garbage: libjpeg fails on the header.
  expect_corrupt_data("photos/dog/broken.jpg", std::string("\xff\xd8\xff\x01garbage", 11));
}

// The JPEG-only build hands the transforms RGB pixels (bgr = false) where
// OpenCV hands them BGR: every op, saturation included, must give the same
// output up to the channel order.
TEST(ImageCodecTest, TransformsOfRgbPixelsEqualThoseOfBgrPixels) {
  const cv::Mat bgr = test_photo(90, 120);
  cv::Mat rgb;
  cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
  const auto options = TransformOptions()
                           .random_resized_crop(48)
                           .x_reflection(true)
                           .brightness(0.3)
                           .contrast(0.3)
                           .saturation(0.5);
  for (uint64_t seed = 1; seed <= 10; ++seed) {
    SamplePlan plan = plan_sample(options, bgr.rows, bgr.cols, seed);
    plan.out_height = plan.out_width = 48;
    cv::Mat from_bgr = detail::apply_plan(bgr, plan, 1, /*bgr=*/true);
    cv::cvtColor(from_bgr, from_bgr, cv::COLOR_BGR2RGB);
    EXPECT_TRUE(same_pixels(detail::apply_plan(rgb, plan, 1, /*bgr=*/false), from_bgr))
        << "seed " << seed;
  }
}

}  // namespace gpulab::data
