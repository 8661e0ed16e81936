// Pixel-label data sets: the three layouts, colour grouping, Cityscapes id
// mapping, the ignore label, and bad pairs named.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include <filesystem>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

#include "gpulab/core/error.h"
#include "gpulab/data/pixel_label_decode.h"
#include "gpulab/data/pixel_label_layout.h"
#include "tests/support/test_util.h"

namespace gpulab::data {
namespace {
namespace fs = std::filesystem;

void write_label_png(const std::string& path, const cv::Mat& m) {
  fs::create_directories(fs::path(path).parent_path());
  ASSERT_TRUE(cv::imwrite(path, m)) << path;
}

// An 8x6 RGB image whose red channel is 10 * its index.
cv::Mat pair_image(int index, int width = 8, int height = 6) {
  return cv::Mat(height, width, CV_8UC3, cv::Scalar(0, 50, 10 * index));  // BGR
}

// Grey ids: left half `left`, right half `right`, top-left pixel `corner`.
cv::Mat grey_id_map(uint8_t left, uint8_t right, uint8_t corner, int width = 8, int height = 6) {
  cv::Mat m(height, width, CV_8UC1, cv::Scalar(left));
  m(cv::Rect(width / 2, 0, width - width / 2, height)).setTo(right);
  m.at<uint8_t>(0, 0) = corner;
  return m;
}

void make_generic_set(const testing::TempDir& dir, int count) {
  testing::write_bytes(dir / "classes.txt", "background\n# a comment\nobject\nother\n");
  for (int i = 0; i < count; ++i) {
    const std::string stem = "s" + std::to_string(i);
    write_label_png(dir / ("images/" + stem + ".png"), pair_image(i));
    write_label_png(dir / ("masks/" + stem + ".png"), grey_id_map(0, 1, 255));
  }
}

}  // namespace

TEST(PixelLabelTest, GenericLayoutPairsByStemAndKeepsTheIgnoreLabel) {
  testing::TempDir dir;
  make_generic_set(dir, 3);
  const PixelLabelIndex index = index_pixel_labels(PixelLabelOptions(dir.path()));
  EXPECT_EQ(index.layout, PixelLabelLayout::kGeneric);
  EXPECT_EQ(index.labels.names, (std::vector<std::string>{"background", "object", "other"}));
  EXPECT_EQ(index.labels.ignore_value, 255);
  ASSERT_EQ(index.size(), 3);
  EXPECT_EQ(index.pairs[1].stem, "s1");
  EXPECT_EQ(fs::path(index.pairs[1].label).filename(), "s1.png");

  const Dataset ds = decode_pixel_label_set(index, PixelLabelDecodeOptions());
  EXPECT_EQ(ds.images.sizes(), (std::vector<int64_t>{3, 3, 6, 8}));
  EXPECT_EQ(ds.targets.sizes(), (std::vector<int64_t>{3, 6, 8}));
  EXPECT_EQ(ds.images[2][0][3][3].item<int>(), 20);  // red = 10 * index: RGB order, stem order
  EXPECT_EQ(ds.targets[0][0][0].item<int>(), 255);
  EXPECT_EQ(ds.targets[0][5][0].item<int>(), 0);
  EXPECT_EQ(ds.targets[0][5][7].item<int>(), 1);

  const PixelLabelCounts counts = count_each_pixel_label(ds);
  // Per image: 23 background (24 minus the ignored corner), 24 object, 0 other.
  EXPECT_EQ(counts.pixels, (std::vector<int64_t>{69, 72, 0}));
  EXPECT_EQ(counts.image_pixels, (std::vector<int64_t>{144, 144, 0}));
}

TEST(PixelLabelTest, SplitFilesChooseTheStemsInTheirOrder) {
  testing::TempDir dir;
  make_generic_set(dir, 4);
  testing::write_bytes(dir / "splits/train.txt", "s3\ns0\n");
  const PixelLabelIndex index = index_pixel_labels(PixelLabelOptions(dir.path()).split("train"));
  ASSERT_EQ(index.size(), 2);
  EXPECT_EQ(index.pairs[0].stem, "s3");
  EXPECT_EQ(index.pairs[1].stem, "s0");
  testing::write_bytes(dir / "splits/val.txt", "s9\n");
  const std::string message =
      testing::error_of([&] { index_pixel_labels(PixelLabelOptions(dir.path()).split("val")); });
  EXPECT_NE(message.find("s9"), std::string::npos) << message;
  EXPECT_NE(message.find("val.txt"), std::string::npos) << message;
}

TEST(PixelLabelTest, AnImageWithoutItsMaskIsNamed) {
  testing::TempDir dir;
  make_generic_set(dir, 2);
  write_label_png(dir / "images/lonely.png", pair_image(0));
  const std::string message =
      testing::error_of([&] { index_pixel_labels(PixelLabelOptions(dir.path())); });
  EXPECT_NE(message.find("lonely.png"), std::string::npos) << message;
  EXPECT_NE(message.find("masks/lonely.png"), std::string::npos) << message;
}

TEST(PixelLabelTest, AMaskWithoutItsImageIsNamed) {
  testing::TempDir dir;
  make_generic_set(dir, 2);
  write_label_png(dir / "masks/orphan.png", grey_id_map(0, 0, 0));
  const std::string message =
      testing::error_of([&] { index_pixel_labels(PixelLabelOptions(dir.path())); });
  EXPECT_NE(message.find("orphan.png"), std::string::npos) << message;
}

TEST(PixelLabelTest, AMaskOfAnotherSizeThanItsImageIsNamed) {
  testing::TempDir dir;
  make_generic_set(dir, 2);
  write_label_png(dir / "masks/s1.png", grey_id_map(0, 1, 0, 10, 6));
  const PixelLabelIndex index = index_pixel_labels(PixelLabelOptions(dir.path()));
  const std::string message =
      testing::error_of([&] { decode_pixel_label_set(index, PixelLabelDecodeOptions()); });
  EXPECT_NE(message.find("masks/s1.png"), std::string::npos) << message;
  EXPECT_NE(message.find("images/s1.png"), std::string::npos) << message;
  EXPECT_NE(message.find("10x6"), std::string::npos) << message;
}

TEST(PixelLabelTest, ALabelIdOutOfRangeIsNamed) {
  testing::TempDir dir;
  make_generic_set(dir, 2);
  write_label_png(dir / "masks/s0.png", grey_id_map(0, 7, 0));
  const PixelLabelIndex index = index_pixel_labels(PixelLabelOptions(dir.path()));
  const std::string message =
      testing::error_of([&] { decode_pixel_label_set(index, PixelLabelDecodeOptions()); });
  EXPECT_NE(message.find("masks/s0.png"), std::string::npos) << message;
  EXPECT_NE(message.find("label id 7"), std::string::npos) << message;
  EXPECT_NE(message.find("0..2"), std::string::npos) << message;
}

TEST(PixelLabelTest, ResizingKeepsLabelIdsNearestNeighbour) {
  testing::TempDir dir;
  make_generic_set(dir, 1);
  const PixelLabelIndex index = index_pixel_labels(PixelLabelOptions(dir.path()));
  const Dataset ds = decode_pixel_label_set(index, PixelLabelDecodeOptions().size(12, 16));
  EXPECT_EQ(ds.targets.sizes(), (std::vector<int64_t>{1, 12, 16}));
  // Only values that were in the mask: no blend of 0, 1 and 255.
  const at::Tensor values = std::get<0>(at::_unique(ds.targets.flatten()));
  EXPECT_EQ(values.numel(), 3);
  EXPECT_EQ(ds.targets[0][11][0].item<int>(), 0);
  EXPECT_EQ(ds.targets[0][11][15].item<int>(), 1);
}

TEST(PixelLabelTest, CamVidColoursGroupIntoClassesAndUnknownColoursAreIgnored) {
  testing::TempDir dir;
  // MATLAB's 11-class table: Bridge (0,128,64) and Building (128,0,0) are both
  // class "Building"; Void (0,0,0) and an unmapped colour carry no label.
  cv::Mat label(6, 8, CV_8UC3, cv::Scalar(128, 128, 128));    // Sky (BGR = RGB here)
  label(cv::Rect(0, 0, 4, 3)).setTo(cv::Scalar(64, 128, 0));  // Bridge, BGR
  label(cv::Rect(4, 0, 4, 3)).setTo(cv::Scalar(0, 0, 128));   // Building, BGR
  label.at<cv::Vec3b>(5, 7) = cv::Vec3b(0, 0, 0);             // Void
  label.at<cv::Vec3b>(5, 6) = cv::Vec3b(1, 2, 3);             // not in the table
  write_label_png(dir / "images/0001TP_006690.png", pair_image(1));
  write_label_png(dir / "labels/0001TP_006690_L.png", label);
  const PixelLabelIndex index = index_pixel_labels(PixelLabelOptions(dir.path()));
  EXPECT_EQ(index.layout, PixelLabelLayout::kCamVid);
  EXPECT_EQ(index.labels.size(), 11);
  EXPECT_EQ(index.labels.names[1], "Building");
  const Dataset ds = decode_pixel_label_set(index, PixelLabelDecodeOptions());
  EXPECT_EQ(ds.targets[0][0][0].item<int>(), 1);  // Bridge -> Building
  EXPECT_EQ(ds.targets[0][0][7].item<int>(), 1);  // Building
  EXPECT_EQ(ds.targets[0][4][0].item<int>(), 0);  // Sky
  EXPECT_EQ(ds.targets[0][5][7].item<int>(), 255);
  EXPECT_EQ(ds.targets[0][5][6].item<int>(), 255);

  const std::string message = testing::error_of([&] {
    decode_pixel_label_set(
        index_pixel_labels(PixelLabelOptions(dir.path()).unknown_colors_are_errors(true)),
        PixelLabelDecodeOptions());
  });
  EXPECT_NE(message.find("0001TP_006690_L.png"), std::string::npos) << message;
  EXPECT_NE(message.find("(3, 2, 1)"), std::string::npos) << message;
  // Void stays "no label" when unknown colours are errors.
  label.at<cv::Vec3b>(5, 6) = cv::Vec3b(0, 0, 0);
  write_label_png(dir / "labels/0001TP_006690_L.png", label);
  const Dataset strict = decode_pixel_label_set(
      index_pixel_labels(PixelLabelOptions(dir.path()).unknown_colors_are_errors(true)),
      PixelLabelDecodeOptions());
  EXPECT_EQ(strict.targets[0][5][6].item<int>(), 255);
}

TEST(PixelLabelTest, CamVidClassTableFileGroupsColours) {
  testing::TempDir dir;
  testing::write_bytes(dir / "classes.json", R"([
    {"name": "ground", "colors": [[10, 20, 30], [40, 50, 60]], "display": [1, 2, 3]},
    {"name": "thing", "colors": [[200, 0, 0]]}])");
  cv::Mat label(6, 8, CV_8UC3, cv::Scalar(30, 20, 10));
  label(cv::Rect(0, 0, 8, 2)).setTo(cv::Scalar(60, 50, 40));
  label(cv::Rect(0, 5, 8, 1)).setTo(cv::Scalar(0, 0, 200));
  write_label_png(dir / "images/a.png", pair_image(0));
  write_label_png(dir / "labels/a.png", label);  // the same stem, no _L suffix
  const PixelLabelIndex index = index_pixel_labels(PixelLabelOptions(dir.path()));
  EXPECT_EQ(index.labels.names, (std::vector<std::string>{"ground", "thing"}));
  EXPECT_EQ(index.labels.palette[0], (Rgb{1, 2, 3}));
  const Dataset ds = decode_pixel_label_set(index, PixelLabelDecodeOptions());
  EXPECT_EQ(ds.targets[0].eq(0).sum().item<int64_t>(), 40);
  EXPECT_EQ(ds.targets[0].eq(1).sum().item<int64_t>(), 8);
}

TEST(PixelLabelTest, CityscapesLabelIdsMapToTrainIds) {
  testing::TempDir dir;
  // labelIds: 7 road -> 0, 26 car -> 13, 33 bicycle -> 18, 0 unlabeled and
  // 14 guard rail -> ignore.
  cv::Mat ids(6, 8, CV_8UC1, cv::Scalar(7));
  ids.at<uint8_t>(0, 0) = 26;
  ids.at<uint8_t>(0, 1) = 33;
  ids.at<uint8_t>(0, 2) = 0;
  ids.at<uint8_t>(0, 3) = 14;
  for (const std::string city : {"aachen", "bremen"}) {
    const std::string stem = city + "_000000_000019";
    write_label_png(dir / ("leftImg8bit/val/" + city + "/" + stem + "_leftImg8bit.png"),
                    pair_image(2));
    write_label_png(dir / ("gtFine/val/" + city + "/" + stem + "_gtFine_labelIds.png"), ids);
  }
  const PixelLabelIndex index = index_pixel_labels(PixelLabelOptions(dir.path()).split("val"));
  EXPECT_EQ(index.layout, PixelLabelLayout::kCityscapes);
  EXPECT_EQ(index.labels.size(), 19);
  ASSERT_EQ(index.size(), 2);
  EXPECT_EQ(index.pairs[1].stem, "bremen_000000_000019");
  const Dataset ds = decode_pixel_label_set(index, PixelLabelDecodeOptions());
  EXPECT_EQ(ds.targets[0][0][0].item<int>(), 13);
  EXPECT_EQ(ds.targets[0][0][1].item<int>(), 18);
  EXPECT_EQ(ds.targets[0][0][2].item<int>(), 255);
  EXPECT_EQ(ds.targets[0][0][3].item<int>(), 255);
  EXPECT_EQ(ds.targets[0][3][3].item<int>(), 0);
  // The train split does not exist: named.
  const std::string message =
      testing::error_of([&] { index_pixel_labels(PixelLabelOptions(dir.path())); });
  EXPECT_NE(message.find("leftImg8bit/train"), std::string::npos) << message;
}

TEST(PixelLabelTest, CityscapesTrainIdsAreReadWhenPresent) {
  testing::TempDir dir;
  cv::Mat train_ids(6, 8, CV_8UC1, cv::Scalar(5));
  train_ids.at<uint8_t>(1, 1) = 255;
  const std::string stem = "ulm_000001_000002";
  write_label_png(dir / ("leftImg8bit/train/ulm/" + stem + "_leftImg8bit.png"), pair_image(0));
  write_label_png(dir / ("gtFine/train/ulm/" + stem + "_gtFine_labelIds.png"),
                  grey_id_map(7, 7, 7));
  write_label_png(dir / ("gtFine/train/ulm/" + stem + "_gtFine_labelTrainIds.png"), train_ids);
  const Dataset ds = decode_pixel_label_set(index_pixel_labels(PixelLabelOptions(dir.path())),
                                            PixelLabelDecodeOptions());
  EXPECT_EQ(ds.targets[0][0][0].item<int>(), 5);
  EXPECT_EQ(ds.targets[0][1][1].item<int>(), 255);
}

TEST(PixelLabelTest, AFolderInNoLayoutSaysWhatEachExpects) {
  testing::TempDir dir;
  fs::create_directories(dir / "pictures");
  const std::string message =
      testing::error_of([&] { index_pixel_labels(PixelLabelOptions(dir.path())); });
  EXPECT_NE(message.find("masks/"), std::string::npos) << message;
  EXPECT_NE(message.find("gtFine/"), std::string::npos) << message;
  EXPECT_FALSE(is_pixel_label_folder(dir.path()));
}

}  // namespace gpulab::data
