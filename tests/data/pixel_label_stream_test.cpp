// The streaming loader on image/label-map pairs: label maps decoded beside
// their images in the decode threads, transformed with the image's plan, and
// still aligned with it pixel for pixel.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include <filesystem>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

#include "gpulab/core/error.h"
#include "gpulab/data/loader.h"
#include "gpulab/data/pixel_label_decode.h"
#include "gpulab/data/pixel_label_layout.h"
#include "tests/support/test_util.h"

namespace gpulab::data {
namespace {
namespace fs = std::filesystem;

// Class k's red value in the drawn images; 0 is the fill outside an image.
int red_of_class(int k) {
  return 40 + 60 * k;
}

// A 48x64 image of 8x8 blocks of three classes (a different arrangement per
// index), and its label map drawn from the image itself.
void write_block_pair(const testing::TempDir& dir, int index) {
  cv::Mat image(48, 64, CV_8UC3), ids(48, 64, CV_8UC1);
  for (int by = 0; by < 6; ++by) {
    for (int bx = 0; bx < 8; ++bx) {
      const int k = (bx * 7 + by * 3 + index) % 3;
      const cv::Rect block(bx * 8, by * 8, 8, 8);
      image(block).setTo(cv::Scalar(20, 30, red_of_class(k)));  // BGR
      ids(block).setTo(k);
    }
  }
  const std::string stem = "p" + std::to_string(index);
  fs::create_directories(dir / "images");
  fs::create_directories(dir / "masks");
  ASSERT_TRUE(cv::imwrite(dir / ("images/" + stem + ".png"), image));
  ASSERT_TRUE(cv::imwrite(dir / ("masks/" + stem + ".png"), ids));
}

PixelLabelIndex block_pairs(const testing::TempDir& dir, int count) {
  testing::write_bytes(dir / "classes.txt", "a\nb\nc\n");
  for (int i = 0; i < count; ++i) write_block_pair(dir, i);
  return index_pixel_labels(PixelLabelOptions(dir.path()));
}

Normalization unit_normalization() {
  return {{0, 0, 0}, {1, 1, 1}};
}

TransformOptions crops_flips_and_shifts() {
  return TransformOptions()
      .random_resized_crop(32)
      .crop_scale({0.4, 1.0})
      .x_reflection(true)
      .y_reflection(true)
      .x_translation({-5, 5})
      .y_translation({-5, 5});
}

std::vector<at::Tensor> one_step_of(int64_t count) {
  return {torch::arange(count, torch::kInt64)};
}

// Pixels whose label differs from the image's class at that pixel, among
// pixels whose 5x5 neighbourhood has one label: away from label edges, where
// the image's two bilinear resamplings (crop resize, then shift) blend two
// classes up to two pixels deep. Label 255 must be the fill, 0.
int64_t misaligned_interior_pixels(const at::Tensor& pixels, const at::Tensor& labels,
                                   int64_t* interior) {
  int64_t bad = 0;
  const auto p = pixels.accessor<uint8_t, 4>();  // [B, H, W, C]
  const auto l = labels.accessor<uint8_t, 3>();  // [B, H, W]
  for (int64_t b = 0; b < labels.size(0); ++b) {
    for (int64_t y = 2; y + 2 < labels.size(1); ++y) {
      for (int64_t x = 2; x + 2 < labels.size(2); ++x) {
        const int id = l[b][y][x];
        bool uniform = true;
        for (int dy = -2; dy <= 2; ++dy) {
          for (int dx = -2; dx <= 2; ++dx) uniform = uniform && l[b][y + dy][x + dx] == id;
        }
        if (!uniform) continue;
        ++*interior;
        const int expected = id == 255 ? 0 : red_of_class(id);
        if (std::abs(int{p[b][y][x][0]} - expected) > 3) ++bad;
      }
    }
  }
  return bad;
}

}  // namespace

TEST(PixelLabelStreamingTest, LabelMapsStayAlignedThroughCropsFlipsAndShifts) {
  testing::TempDir dir;
  const PixelLabelIndex pairs = block_pairs(dir, 6);
  StreamingLoader loader(pairs, crops_flips_and_shifts(), unit_normalization(),
                         LoaderOptions().threads(2).seed(3));
  int64_t interior = 0, bad = 0, outside = 0;
  for (int64_t epoch = 0; epoch < 4; ++epoch) {
    loader.start_epoch(epoch, one_step_of(pairs.size()));
    const auto [pixels, labels] = loader.next_pixels();
    ASSERT_EQ(pixels.sizes(), (std::vector<int64_t>{6, 32, 32, 3}));
    ASSERT_EQ(labels.sizes(), (std::vector<int64_t>{6, 32, 32}));
    ASSERT_EQ(labels.scalar_type(), at::kByte);
    bad += misaligned_interior_pixels(pixels, labels, &interior);
    outside += labels.eq(255).sum().item<int64_t>();
    // Only ids that are in the masks, or "no label" where shifts left the image.
    EXPECT_TRUE(labels.lt(3).logical_or(labels.eq(255)).all().item<bool>());
  }
  EXPECT_EQ(bad, 0) << "of " << interior << " interior pixels";
  EXPECT_GT(interior, 4 * 6 * 32 * 32 / 5);
  EXPECT_GT(outside, 0);  // some shift moved an image off its output
}

TEST(PixelLabelStreamingTest, BatchesAreTheSameWhateverTheThreadCount) {
  testing::TempDir dir;
  const PixelLabelIndex pairs = block_pairs(dir, 5);
  auto run = [&](int threads) {
    StreamingLoader loader(pairs, crops_flips_and_shifts(), unit_normalization(),
                           LoaderOptions().threads(threads).seed(11));
    loader.start_epoch(2, {torch::tensor({4, 0, 2}), torch::tensor({1, 3})});
    auto first = loader.next_pixels();
    auto second = loader.next_pixels();
    return std::vector<at::Tensor>{first.first, first.second, second.first, second.second};
  };
  const auto one = run(1), three = run(3);
  for (size_t i = 0; i < one.size(); ++i) EXPECT_TRUE(one[i].equal(three[i])) << i;
}

TEST(PixelLabelStreamingTest, ColourJitterChangesPixelsButNotLabelIds) {
  testing::TempDir dir;
  const PixelLabelIndex pairs = block_pairs(dir, 4);
  auto run = [&](double brightness) {
    StreamingLoader loader(pairs, crops_flips_and_shifts().brightness(brightness),
                           unit_normalization(), LoaderOptions().threads(2).seed(5));
    loader.start_epoch(0, one_step_of(pairs.size()));
    return loader.next_pixels();
  };
  const auto plain = run(0), jittered = run(0.5);
  EXPECT_TRUE(plain.second.equal(jittered.second));
  EXPECT_FALSE(plain.first.equal(jittered.first));
}

TEST(PixelLabelStreamingTest, NextGivesNormalisedPixelsAndLabelMapsOnTheDevice) {
  testing::TempDir dir;
  const PixelLabelIndex pairs = block_pairs(dir, 3);
  StreamingLoader loader(pairs, TransformOptions().height(24).width(32), unit_normalization(),
                         LoaderOptions().threads(1));
  loader.start_epoch(0, one_step_of(3));
  const Batch batch = loader.next();
  EXPECT_EQ(batch.input.sizes(), (std::vector<int64_t>{3, 3, 24, 32}));
  EXPECT_EQ(batch.target.sizes(), (std::vector<int64_t>{3, 24, 32}));
  // Halving 8x8 blocks: every output pixel lies inside one block.
  EXPECT_NEAR(batch.input[0][0][0][0].item<double>(), red_of_class(0) / 255.0, 1e-6);
  EXPECT_EQ(batch.target[0][0][0].item<int>(), 0);
}

TEST(PixelLabelStreamingTest, ALabelMapOfAnotherSizeIsNamedWhenItsStepComes) {
  testing::TempDir dir;
  const PixelLabelIndex pairs = block_pairs(dir, 3);
  ASSERT_TRUE(cv::imwrite(dir / "masks/p1.png", cv::Mat(40, 64, CV_8UC1, cv::Scalar(0))));
  StreamingLoader loader(pairs, TransformOptions().height(16).width(16), unit_normalization(),
                         LoaderOptions().threads(2));
  loader.start_epoch(0, {torch::tensor({0}), torch::tensor({1})});
  EXPECT_NO_THROW(loader.next_pixels());
  const std::string message = testing::error_of([&] { loader.next_pixels(); });
  EXPECT_NE(message.find("masks/p1.png"), std::string::npos) << message;
  EXPECT_NE(message.find("images/p1.png"), std::string::npos) << message;
  EXPECT_NE(message.find("64x40"), std::string::npos) << message;
}

TEST(PixelLabelStreamingTest, AnUnreadableLabelFileIsSkippedUnderSkipBadFiles) {
  testing::TempDir dir;
  const PixelLabelIndex pairs = block_pairs(dir, 3);
  testing::write_bytes(dir / "masks/p2.png", "not a png");
  StreamingLoader loader(pairs, TransformOptions().height(16).width(16), unit_normalization(),
                         LoaderOptions().threads(2).skip_bad_files(true));
  loader.start_epoch(0, one_step_of(3));
  const auto [pixels, labels] = loader.next_pixels();
  EXPECT_EQ(pixels.size(0), 2);
  EXPECT_EQ(labels.size(0), 2);
  EXPECT_EQ(loader.skipped_samples(), (std::vector<int64_t>{2}));
}

TEST(PixelLabelStreamingTest, CountsEachLabelFromTheLabelFilesAsFromTheDecodedSet) {
  testing::TempDir dir;
  const PixelLabelIndex pairs = block_pairs(dir, 4);
  const PixelLabelCounts from_files = count_each_pixel_label(pairs, 2);
  const PixelLabelCounts from_set =
      count_each_pixel_label(decode_pixel_label_set(pairs, PixelLabelDecodeOptions()));
  EXPECT_EQ(from_files.pixels, from_set.pixels);
  EXPECT_EQ(from_files.image_pixels, from_set.image_pixels);
  int64_t total = 0;
  for (int64_t n : from_files.pixels) total += n;
  EXPECT_EQ(total, 4 * 48 * 64);
}

}  // namespace gpulab::data
