// Partial JPEG decoding: the pixels of a region equal those of a whole-image
// decode at the same scale, the loader's output equals the plan applied to a
// whole decode, EXIF orientation is ignored, and broken files name the file.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "gpulab/core/error.h"
#include "gpulab/data/jpeg_region.h"
#include "gpulab/data/sample_decoder.h"
#include "gpulab/data/transforms.h"

namespace gpulab::data {
namespace {

// A smooth colour gradient plus noise, so that chroma subsampling and
// upsampling matter at every pixel. Odd sizes leave partial iMCUs.
cv::Mat test_photo(int rows, int cols) {
  cv::Mat img(rows, cols, CV_8UC3);
  cv::RNG rng(7);
  for (int y = 0; y < rows; ++y) {
    for (int x = 0; x < cols; ++x) {
      img.at<cv::Vec3b>(y, x) =
          cv::Vec3b(cv::saturate_cast<uchar>(x * 255 / cols + rng.uniform(-20, 20)),
                    cv::saturate_cast<uchar>(y * 255 / rows + rng.uniform(-20, 20)),
                    cv::saturate_cast<uchar>((x + y) % 256));
    }
  }
  return img;
}

std::string encode_jpeg(const cv::Mat& img, std::vector<int> params = {}) {
  params.insert(params.end(), {cv::IMWRITE_JPEG_QUALITY, 90});
  std::vector<uchar> buf;
  EXPECT_TRUE(cv::imencode(".jpg", img, buf, params));
  return std::string(buf.begin(), buf.end());
}

cv::Mat whole_decode(const std::string& bytes, int reduction, int channels) {
  int mode = channels == 1 ? cv::IMREAD_GRAYSCALE : cv::IMREAD_COLOR;
  if (reduction == 2)
    mode = channels == 1 ? cv::IMREAD_REDUCED_GRAYSCALE_2 : cv::IMREAD_REDUCED_COLOR_2;
  if (reduction == 4)
    mode = channels == 1 ? cv::IMREAD_REDUCED_GRAYSCALE_4 : cv::IMREAD_REDUCED_COLOR_4;
  if (reduction == 8)
    mode = channels == 1 ? cv::IMREAD_REDUCED_GRAYSCALE_8 : cv::IMREAD_REDUCED_COLOR_8;
  const cv::Mat raw(1, static_cast<int>(bytes.size()), CV_8U, const_cast<char*>(bytes.data()));
  cv::Mat out = cv::imdecode(raw, mode | cv::IMREAD_IGNORE_ORIENTATION);
  if (channels == 3) cv::cvtColor(out, out, cv::COLOR_BGR2RGB);
  return out;
}

// Number of pixels (all channels) where the region differs from the whole decode.
int64_t differing(const detail::JpegRegion& region, const cv::Mat& whole, const cv::Rect& box) {
  cv::Mat diff;
  cv::absdiff(region.pixels(region.box), whole(box), diff);
  return cv::countNonZero(diff.reshape(1));
}

void expect_regions_match_whole_decode(const std::string& bytes, int channels) {
  if (!detail::jpeg_region_decoding_available()) GTEST_SKIP() << "built without libjpeg-turbo";
  for (int reduction : {1, 2, 4, 8}) {
    const cv::Mat whole = whole_decode(bytes, reduction, channels);
    const int w = whole.cols, h = whole.rows;
    // Interior, each edge, corners, one column, the whole image.
    const std::vector<cv::Rect> boxes = {
        {w / 3, h / 4, w / 3, h / 2},
        {0, 0, w / 2, h / 2},
        {w / 2, h / 2, w - w / 2, h - h / 2},
        {0, h / 3, w, 1},
        {w - 1, 0, 1, h},
        {0, 0, w, h},
        {5 % w, 3 % h, std::max(1, w / 5), std::max(1, h - 3 % h)}};
    for (const cv::Rect& box : boxes) {
      SCOPED_TRACE(testing::Message() << "reduction " << reduction << " box " << box);
      const auto region = detail::decode_jpeg_region("t.jpg", bytes, reduction, channels, box);
      ASSERT_TRUE(region.has_value());
      ASSERT_EQ(region->pixels.channels(), channels);
      ASSERT_EQ(region->box.size(), box.size());
      EXPECT_EQ(differing(*region, whole, box), 0);
    }
  }
}

// The bytes of `jpeg` with an APP1 Exif segment saying "rotate 90° clockwise
// to display" (orientation 6) right after the SOI marker.
std::string with_exif_orientation_6(const std::string& jpeg) {
  const std::string tiff =
      std::string("II*\0\x08\0\0\0", 8) +                      // little-endian, IFD at 8
      std::string("\x01\0", 2) +                               // one entry
      std::string("\x12\x01\x03\0\x01\0\0\0\x06\0\0\0", 12) +  // 0x0112 SHORT 6
      std::string("\0\0\0\0", 4);                              // no next IFD
  const std::string payload = std::string("Exif\0\0", 6) + tiff;
  const size_t length = payload.size() + 2;
  std::string app1 = "\xff\xe1";
  app1 += static_cast<char>(length >> 8);
  app1 += static_cast<char>(length & 0xff);
  return jpeg.substr(0, 2) + app1 + payload + jpeg.substr(2);
}

at::Tensor hwc_tensor(const cv::Mat& rgb) {
  return torch::from_blob(rgb.data, {rgb.rows, rgb.cols, rgb.channels()}, torch::kUInt8).clone();
}

at::Tensor sample_decoder_output(const SampleDecoder& decoder, const std::string& bytes,
                                 uint64_t seed) {
  auto out =
      torch::empty({decoder.out_height(), decoder.out_width(), decoder.channels()}, torch::kUInt8);
  decoder.decode("t.jpg", bytes, seed, out.data_ptr<uint8_t>());
  return out;
}

}  // namespace

TEST(JpegRegionTest, RegionsEqualWholeImageDecodeAtEveryScale) {
  expect_regions_match_whole_decode(encode_jpeg(test_photo(157, 203)), 3);
}

TEST(JpegRegionTest, GreyOutputEqualsWholeImageGreyDecode) {
  expect_regions_match_whole_decode(encode_jpeg(test_photo(157, 203)), 1);
}

TEST(JpegRegionTest, ProgressiveJpegRegionsEqualWholeImageDecode) {
  expect_regions_match_whole_decode(
      encode_jpeg(test_photo(121, 250), {cv::IMWRITE_JPEG_PROGRESSIVE, 1}), 3);
}

TEST(JpegRegionTest, GreyJpegExpandsToRgb) {
  cv::Mat grey;
  cv::cvtColor(test_photo(64, 80), grey, cv::COLOR_BGR2GRAY);
  expect_regions_match_whole_decode(encode_jpeg(grey), 3);
}

TEST(JpegRegionTest, CorruptHeaderNamesTheFile) {
  if (!detail::jpeg_region_decoding_available()) GTEST_SKIP() << "built without libjpeg-turbo";
  std::string bytes = encode_jpeg(test_photo(40, 40));
  // Shorten the first quantisation table's segment to nothing: libjpeg then
  // finds no table for the components, a fatal error.
  const size_t dqt = bytes.find("\xff\xdb");
  ASSERT_NE(dqt, std::string::npos);
  const size_t old_length =
      (static_cast<uint8_t>(bytes[dqt + 2]) << 8) | static_cast<uint8_t>(bytes[dqt + 3]);
  bytes.erase(dqt + 4, old_length - 2);
  bytes[dqt + 2] = 0;
  bytes[dqt + 3] = 2;
  try {
    detail::decode_jpeg_region("photos/cat/broken.jpg", bytes, 1, 3, {0, 0, 10, 10});
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kCorruptData);
    EXPECT_NE(std::string(e.what()).find("photos/cat/broken.jpg"), std::string::npos) << e.what();
  }
}

// The loader's output (region decode, RGB) equals the plan applied to a whole
// decode: same pixels, whatever the augmentation drew.
TEST(SampleDecoderTest, RegionDecodeEqualsPlanOnWholeImage) {
  const cv::Mat photo = test_photo(90, 120);
  const std::string bytes = encode_jpeg(photo);
  // Crops of a 120x90 image never allow a reduced decode at output 64.
  const auto transforms =
      TransformOptions().random_resized_crop(64).x_reflection(true).brightness(0.3).saturation(0.4);
  const SampleDecoder decoder(transforms, kDefaultMaxPixels);
  const at::Tensor whole = hwc_tensor(whole_decode(bytes, 1, 3));
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    SamplePlan plan = plan_sample(transforms, 90, 120, seed);
    plan.out_height = plan.out_width = 64;
    const at::Tensor expected = apply_sample_plan(whole, plan);
    EXPECT_TRUE(torch::equal(sample_decoder_output(decoder, bytes, seed), expected))
        << "seed " << seed;
  }
}

// Regression: OpenCV applied EXIF orientation, so a plan drawn from the
// header's 60x40 size did not fit the 40x60 pixels it returned.
TEST(SampleDecoderTest, IgnoresExifOrientationLikeTorchvision) {
  const std::string plain = encode_jpeg(test_photo(40, 60));
  const std::string rotated = with_exif_orientation_6(plain);
  {
    const cv::Mat raw(1, static_cast<int>(rotated.size()), CV_8U,
                      const_cast<char*>(rotated.data()));
    const cv::Mat shown = cv::imdecode(raw, cv::IMREAD_COLOR);
    ASSERT_EQ(shown.rows, 60) << "the test file's Exif segment is not read as orientation 6";
  }
  const auto transforms = TransformOptions().random_resized_crop(32);
  const SampleDecoder decoder(transforms, kDefaultMaxPixels);
  for (uint64_t seed = 1; seed <= 10; ++seed) {
    EXPECT_TRUE(torch::equal(sample_decoder_output(decoder, rotated, seed),
                             sample_decoder_output(decoder, plain, seed)))
        << "seed " << seed;
  }
}

}  // namespace gpulab::data
