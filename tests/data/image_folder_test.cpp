// Image folders labelled by sub-folder name.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include <filesystem>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

#include "gpulab/core/error.h"
#include "gpulab/data/image_decode.h"
#include "gpulab/data/image_folder.h"
#include "tests/support/test_util.h"

namespace gpulab::data {
namespace {

// Two classes of 3 RGB 8x6 images; pixel value encodes (class, index).
void make_folder(const testing::TempDir& dir) {
  for (int c = 0; c < 2; ++c) {
    for (int i = 0; i < 3; ++i) {
      auto img = torch::full({3, 6, 8}, 40 * c + 10 * i, torch::kUInt8);
      img[0].fill_(200);  // red channel marks RGB order
      testing::write_pnm(
          dir / (std::string(c ? "dog" : "cat") + "/img" + std::to_string(i) + ".ppm"), img);
    }
  }
  testing::write_bytes(dir / "cat/notes.txt", "not an image");
}

}  // namespace

TEST(ImageFolderTest, LabelsComeFromSubFolderNames) {
  testing::TempDir dir;
  make_folder(dir);
  Dataset ds = load_image_folder(ImageFolderOptions(dir.path()));
  EXPECT_EQ(ds.label_spec.names, (std::vector<std::string>{"cat", "dog"}));
  EXPECT_EQ(ds.images.sizes(), (std::vector<int64_t>{6, 3, 6, 8}));
  EXPECT_EQ(ds.targets.sum().item<int64_t>(), 3);
  // Channel 0 is red (RGB order, as torchvision feeds models).
  EXPECT_EQ(ds.images[0][0][0][0].item<int>(), 200);
  EXPECT_EQ(ds.images[4][1][0][0].item<int>(), 50);
}

TEST(ImageFolderTest, AFlatFolderIsAnUnlabelledDatastore) {
  testing::TempDir dir;
  testing::write_pnm(dir / "b.ppm", torch::full({3, 6, 8}, 7, torch::kUInt8));
  testing::write_pnm(dir / "a.ppm", torch::full({3, 6, 8}, 9, torch::kUInt8));
  testing::write_pnm(dir / "more/c.ppm", torch::full({3, 6, 8}, 5, torch::kUInt8));
  testing::write_bytes(dir / "notes.txt", "not an image");
  // Labelled, it has a sub-folder ("more") but the root's own images would
  // be lost: it is read as one class. Unlabelled, every image is kept.
  const ImageFolderIndex index = index_image_folder(ImageFolderOptions(dir.path()).labelled(false));
  EXPECT_EQ(index.files.size(), 3u);
  EXPECT_TRUE(index.labels.empty());
  EXPECT_TRUE(index.label_spec.names.empty());
  Dataset ds = load_image_folder(ImageFolderOptions(dir.path()).labelled(false));
  EXPECT_EQ(ds.images.size(0), 3);
  EXPECT_FALSE(ds.targets.defined() && ds.targets.numel() > 0);
  EXPECT_EQ(ds.images[0][0][0][0].item<int>(), 9);  // sorted: a.ppm first
}

TEST(ImageFolderTest, SkipsFilesWithOtherExtensions) {
  testing::TempDir dir;
  make_folder(dir);
  EXPECT_EQ(index_image_folder(ImageFolderOptions(dir.path())).files.size(), 6u);
}

TEST(ImageFolderTest, ResizesAndConvertsToGrey) {
  testing::TempDir dir;
  make_folder(dir);
  Dataset ds = load_image_folder(ImageFolderOptions(dir.path()).channels(1).height(4).width(4));
  EXPECT_EQ(ds.images.sizes(), (std::vector<int64_t>{6, 1, 4, 4}));
}

TEST(ImageFolderTest, AnEmptyClassFolderIsNamed) {
  testing::TempDir dir;
  make_folder(dir);
  std::filesystem::create_directories(dir / "empty_class");
  try {
    index_image_folder(ImageFolderOptions(dir.path()));
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kCorruptData);
    EXPECT_NE(std::string(e.what()).find("empty_class"), std::string::npos) << e.what();
  }
}

TEST(ImageFolderTest, AnUndecodableImageFailsNamingItOrIsSkipped) {
  testing::TempDir dir;
  make_folder(dir);
  testing::write_bytes(dir / "dog/broken.jpg", "\xff\xd8\xff garbage, not a JPEG");
  try {
    load_image_folder(ImageFolderOptions(dir.path()));
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kCorruptData);
    EXPECT_NE(std::string(e.what()).find("broken.jpg"), std::string::npos) << e.what();
  }
  int64_t skipped = 0;
  Dataset ds = load_image_folder(ImageFolderOptions(dir.path()).skip_bad_files(true), &skipped);
  EXPECT_EQ(skipped, 1);
  EXPECT_EQ(ds.size(), 6);
}

// Decoding runs on many threads; the set, and the first bad file named, are
// those of one thread.
TEST(ImageFolderTest, ParallelDecodingMatchesOneThread) {
  testing::TempDir dir;
  make_folder(dir);
  for (int i = 0; i < 20; ++i) {
    testing::write_pnm(dir / ("dog/more" + std::to_string(i) + ".ppm"),
                       torch::randint(0, 255, {3, 5 + i % 3, 7}, torch::kUInt8));
  }
  testing::write_bytes(dir / "cat/img1x.ppm", "P6\n8 6\n255\nshort");
  testing::write_bytes(dir / "dog/more3x.ppm", "");
  const auto options = ImageFolderOptions(dir.path()).skip_bad_files(true);
  int64_t skipped_one = 0, skipped_many = 0;
  Dataset one = load_image_folder(ImageFolderOptions(options).decode_threads(1), &skipped_one);
  Dataset many = load_image_folder(ImageFolderOptions(options).decode_threads(4), &skipped_many);
  EXPECT_EQ(skipped_one, 2);
  EXPECT_EQ(skipped_many, 2);
  EXPECT_TRUE(torch::equal(one.images, many.images));
  EXPECT_TRUE(torch::equal(one.targets, many.targets));
  EXPECT_EQ(many.size(), 26);
  for (int threads : {1, 4}) {
    try {
      load_image_folder(ImageFolderOptions(dir.path()).decode_threads(threads));
      FAIL() << "expected an error";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("img1x.ppm"), std::string::npos) << e.what();
    }
  }
}

TEST(ImageFolderTest, ImagesAboveMaxPixelsAreRefusedOrSkipped) {
  testing::TempDir dir;
  make_folder(dir);
  testing::write_pnm(dir / "dog/zz_big.ppm", torch::zeros({3, 40, 40}, torch::kUInt8));
  try {
    load_image_folder(ImageFolderOptions(dir.path()).max_pixels(1000));
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kCorruptData);
    EXPECT_NE(std::string(e.what()).find("zz_big.ppm"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("above the limit of 1000"), std::string::npos) << e.what();
  }
  int64_t skipped = 0;
  load_image_folder(ImageFolderOptions(dir.path()).max_pixels(1000).skip_bad_files(true), &skipped);
  EXPECT_EQ(skipped, 1);
  EXPECT_THROW(decode_image_file(dir / "dog/zz_big.ppm", 3, 0, 0, 1000), Error);
}

TEST(ImageFolderTest, ATruncatedJpegFailsNamingItOrIsSkipped) {
  testing::TempDir dir;
  make_folder(dir);
  std::vector<uchar> jpeg;
  cv::Mat noise(30, 40, CV_8UC3);
  cv::randu(noise, 0, 255);
  cv::imencode(".jpg", noise, jpeg);
  testing::write_bytes(dir / "dog/cut.jpg",
                       std::string(jpeg.begin(), jpeg.begin() + jpeg.size() / 2));
  try {
    load_image_folder(ImageFolderOptions(dir.path()).height(6).width(8));
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kCorruptData);
    EXPECT_NE(std::string(e.what()).find("cut.jpg"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("truncated"), std::string::npos) << e.what();
  }
  int64_t skipped = 0;
  load_image_folder(ImageFolderOptions(dir.path()).height(6).width(8).skip_bad_files(true),
                    &skipped);
  EXPECT_EQ(skipped, 1);
}

TEST(ImageFolderTest, ColourWinsWhenTheFirstImageIsGrey) {
  testing::TempDir dir;
  make_folder(dir);
  testing::write_pnm(dir / "cat/aaa_grey.pgm", torch::full({1, 6, 8}, 7, torch::kUInt8));
  Dataset ds = load_image_folder(ImageFolderOptions(dir.path()));
  EXPECT_EQ(ds.channels(), 3);
}

TEST(ImageFolderTest, AZeroByteImageIsRejected) {
  testing::TempDir dir;
  testing::write_bytes(dir / "empty.png", "");
  EXPECT_THROW(decode_image_file(dir / "empty.png", 3, 0, 0), Error);
}

TEST(ImageFolderTest, AFolderWithoutClassFoldersIsRejected) {
  testing::TempDir dir;
  testing::write_pnm(dir / "lonely.ppm", torch::zeros({3, 2, 2}, torch::kUInt8));
  EXPECT_THROW(index_image_folder(ImageFolderOptions(dir.path())), Error);
}

}  // namespace gpulab::data

namespace gpulab::data {

// Regression: a 1-channel decode returned a view into OpenCV's freed buffer.
TEST(ImageDecodeTest, GreyImageOwnsItsPixels) {
  testing::TempDir dir;
  auto original = torch::arange(64, torch::kUInt8).view({1, 8, 8}) * 3;
  testing::write_pnm(dir / "grey.pgm", original);
  auto a = decode_image_file(dir / "grey.pgm", 1, 0, 0);
  auto b = decode_image_file(dir / "grey.pgm", 1, 8, 8);  // same size: no resize
  EXPECT_TRUE(torch::equal(a, original));
  EXPECT_TRUE(torch::equal(b, original));
}

}  // namespace gpulab::data
