// The streaming loader: deterministic whatever the thread count, batches in
// step order, and every kind of bad image rejected naming the file, or
// skipped and counted.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include <filesystem>
#include <opencv2/imgcodecs.hpp>

#include "gpulab/core/error.h"
#include "gpulab/data/image_header.h"
#include "gpulab/data/loader.h"
#include "tests/support/test_util.h"

namespace gpulab::data {
namespace {
namespace fs = std::filesystem;

// Two classes of 6 noisy 40x30 JPEGs each.
void make_jpeg_folder(const testing::TempDir& dir) {
  cv::RNG rng(3);
  for (const char* cls : {"a", "b"}) {
    fs::create_directories(dir / cls);
    for (int i = 0; i < 6; ++i) {
      cv::Mat img(30, 40, CV_8UC3);
      rng.fill(img, cv::RNG::UNIFORM, 0, 255);
      cv::imwrite(dir / (std::string(cls) + "/img" + std::to_string(i) + ".jpg"), img);
    }
  }
}

TransformOptions augmenting() {
  return TransformOptions()
      .random_resized_crop(16)
      .x_reflection(true)
      .x_translation({-2, 2})
      .brightness(0.3)
      .saturation(0.3);
}

Normalization half() {
  return {{0.5, 0.5, 0.5}, {0.25, 0.25, 0.25}};
}

std::vector<at::Tensor> steps(std::vector<std::vector<int64_t>> rows) {
  std::vector<at::Tensor> out;
  for (auto& r : rows) out.push_back(torch::tensor(r, torch::kInt64));
  return out;
}

// The error of loading every sample of `dir` in one step.
Error load_error(const std::string& dir, LoaderOptions options = LoaderOptions()) {
  ImageFolderIndex index = index_image_folder(ImageFolderOptions(dir));
  StreamingLoader loader(index, TransformOptions().height(8).width(8), half(), options.threads(2));
  std::vector<int64_t> all(static_cast<size_t>(index.size()));
  for (size_t i = 0; i < all.size(); ++i) all[i] = static_cast<int64_t>(i);
  loader.start_epoch(1, steps({all}));
  try {
    loader.next();
  } catch (const Error& e) {
    return e;
  }
  ADD_FAILURE() << "no error";
  return Error(ErrorKind::kInternal, "");
}

int64_t skipped_after_one_pass(const std::string& dir, int64_t* batch_size) {
  ImageFolderIndex index = index_image_folder(ImageFolderOptions(dir));
  StreamingLoader loader(index, TransformOptions().height(8).width(8), half(),
                         LoaderOptions().threads(2).skip_bad_files(true));
  std::vector<int64_t> all(static_cast<size_t>(index.size()));
  for (size_t i = 0; i < all.size(); ++i) all[i] = static_cast<int64_t>(i);
  loader.start_epoch(1, steps({all}));
  *batch_size = loader.next().target.size(0);
  return loader.skipped_files();
}

void expect_names(const Error& e, const std::string& file, ErrorKind kind) {
  EXPECT_EQ(e.kind(), kind) << e.what();
  EXPECT_NE(std::string(e.what()).find(file), std::string::npos) << e.what();
}

}  // namespace

TEST(LoaderTest, SameBatchesWhateverTheThreadCount) {
  testing::TempDir dir;
  make_jpeg_folder(dir);
  ImageFolderIndex index = index_image_folder(ImageFolderOptions(dir.path()));
  auto plan = [] { return steps({{3, 7, 1, 11}, {0, 5, 9}, {2, 4, 6, 8}, {10}}); };
  std::vector<at::Tensor> batches[2];
  for (int run = 0; run < 2; ++run) {
    StreamingLoader loader(index, augmenting(), half(),
                           LoaderOptions().threads(run == 0 ? 1 : 3).prefetch(2).seed(5));
    for (int epoch = 1; epoch <= 2; ++epoch) {
      loader.start_epoch(epoch, plan());
      for (int s = 0; s < 4; ++s) batches[run].push_back(loader.next().input);
    }
  }
  ASSERT_EQ(batches[0].size(), 8u);
  for (size_t i = 0; i < batches[0].size(); ++i) {
    EXPECT_TRUE(torch::equal(batches[0][i], batches[1][i])) << "batch " << i;
  }
  // Augmentation differs between epochs of the same steps.
  EXPECT_FALSE(torch::equal(batches[0][0], batches[0][4]));
}

TEST(LoaderTest, BatchesFollowTheStepsInOrder) {
  testing::TempDir dir;
  make_jpeg_folder(dir);
  ImageFolderIndex index = index_image_folder(ImageFolderOptions(dir.path()));
  StreamingLoader loader(index, TransformOptions().height(30).width(40), half(),
                         LoaderOptions().threads(3).prefetch(1));
  loader.start_epoch(1, steps({{11, 0}, {6}}));
  Batch first = loader.next();
  EXPECT_EQ(first.input.sizes(), (std::vector<int64_t>{2, 3, 30, 40}));
  EXPECT_EQ(first.target[0].item<int64_t>(), 1);  // sample 11 is in class b
  EXPECT_EQ(first.target[1].item<int64_t>(), 0);
  // No transform: the pixels are the decoded file's, normalised.
  cv::Mat bgr = cv::imread(index.files[11]);
  const cv::Vec3b px = bgr.at<cv::Vec3b>(2, 3);
  EXPECT_NEAR(first.input[0][0][2][3].item<float>(), (px[2] / 255.0 - 0.5) / 0.25, 1e-5);
  EXPECT_EQ(loader.next().target[0].item<int64_t>(), 1);
  EXPECT_THROW(loader.next(), Error);  // past the last step
  EXPECT_GE(loader.wait_seconds(), 0.0);
}

TEST(LoaderTest, GreyImagesBecomeRgbAndBack) {
  testing::TempDir dir;
  fs::create_directories(dir / "g");
  cv::imwrite(dir / "g/x.png", cv::Mat(6, 6, CV_8UC1, cv::Scalar(77)));
  ImageFolderIndex index = index_image_folder(ImageFolderOptions(dir.path()));
  StreamingLoader rgb(index, TransformOptions().height(6).width(6), half(), LoaderOptions());
  rgb.start_epoch(1, steps({{0}}));
  auto px = rgb.next_pixels().first;
  EXPECT_EQ(px.sizes(), (std::vector<int64_t>{1, 6, 6, 3}));
  EXPECT_EQ(px.min().item<int>(), 77);
  EXPECT_EQ(px.max().item<int>(), 77);
  TransformOptions grey = with_output_size(TransformOptions().channels(0), index);
  EXPECT_EQ(grey.channels(), 1);
  EXPECT_EQ(grey.height(), 6);
}

TEST(LoaderTest, AZeroByteFileFailsNamingItOrIsSkipped) {
  testing::TempDir dir;
  make_jpeg_folder(dir);
  testing::write_bytes(dir / "a/empty.jpg", "");
  expect_names(load_error(dir.path()), "empty.jpg", ErrorKind::kCorruptData);
  int64_t batch = 0;
  EXPECT_EQ(skipped_after_one_pass(dir.path(), &batch), 1);
  EXPECT_EQ(batch, 12);
}

TEST(LoaderTest, ANonImageWithAnImageExtensionFailsNamingIt) {
  testing::TempDir dir;
  make_jpeg_folder(dir);
  testing::write_bytes(dir / "b/notes.png", "these are notes, not a PNG");
  expect_names(load_error(dir.path()), "notes.png", ErrorKind::kCorruptData);
  int64_t batch = 0;
  EXPECT_EQ(skipped_after_one_pass(dir.path(), &batch), 1);
}

TEST(LoaderTest, ATruncatedJpegFailsNamingIt) {
  testing::TempDir dir;
  make_jpeg_folder(dir);
  std::string bytes = testing::read_bytes(dir / "a/img0.jpg");
  testing::write_bytes(dir / "a/cut.jpg", bytes.substr(0, bytes.size() / 2));
  const Error e = load_error(dir.path());
  expect_names(e, "cut.jpg", ErrorKind::kCorruptData);
  EXPECT_NE(std::string(e.what()).find("truncated"), std::string::npos) << e.what();
  int64_t batch = 0;
  EXPECT_EQ(skipped_after_one_pass(dir.path(), &batch), 1);
  EXPECT_EQ(batch, 12);
}

TEST(LoaderTest, ADecompressionBombIsRefusedFromItsHeader) {
  testing::TempDir dir;
  make_jpeg_folder(dir);
  // A PNG signature and IHDR claiming 50000 x 50000 (2.5 gigapixels), then junk.
  std::string png("\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR", 16);
  for (uint32_t v : {50000u, 50000u}) {
    for (int s = 24; s >= 0; s -= 8) png.push_back(static_cast<char>((v >> s) & 0xFF));
  }
  png += std::string("\x08\x02\0\0\0", 5) + std::string(64, '\0');
  testing::write_bytes(dir / "b/bomb.png", png);
  auto header = read_image_header(png);
  ASSERT_TRUE(header);
  EXPECT_EQ(header->width, 50000);
  const Error e = load_error(dir.path());
  expect_names(e, "bomb.png", ErrorKind::kCorruptData);
  EXPECT_NE(std::string(e.what()).find("2500000000 pixels"), std::string::npos) << e.what();
  // The limit is configurable: a small one refuses the 40x30 images too.
  expect_names(load_error(dir.path(), LoaderOptions().max_pixels(1000)), "img0.jpg",
               ErrorKind::kCorruptData);
  int64_t batch = 0;
  EXPECT_EQ(skipped_after_one_pass(dir.path(), &batch), 1);
}

TEST(LoaderTest, HeadersGiveJpegAndPngSizes) {
  testing::TempDir dir;
  cv::imwrite(dir / "x.jpg", cv::Mat(30, 40, CV_8UC3, cv::Scalar(1, 2, 3)));
  cv::imwrite(dir / "x.png", cv::Mat(7, 5, CV_8UC1, cv::Scalar(1)));
  auto jpeg = read_image_header(testing::read_bytes(dir / "x.jpg"));
  ASSERT_TRUE(jpeg);
  EXPECT_EQ(jpeg->format, "jpeg");
  EXPECT_EQ(jpeg->width, 40);
  EXPECT_EQ(jpeg->height, 30);
  auto png = read_image_header(testing::read_bytes(dir / "x.png"));
  ASSERT_TRUE(png);
  EXPECT_EQ(png->width, 5);
  EXPECT_EQ(png->height, 7);
  EXPECT_FALSE(read_image_header("hello"));
}

TEST(LoaderTest, DecodeAllKeepsOrderAndEstimatesNormalisation) {
  testing::TempDir dir;
  make_jpeg_folder(dir);
  ImageFolderIndex index = index_image_folder(ImageFolderOptions(dir.path()));
  StreamingLoader loader(index, TransformOptions().height(15).width(20), half(),
                         LoaderOptions().threads(2));
  Normalization norm = estimate_normalization(loader);
  ASSERT_EQ(norm.mean.size(), 3u);
  EXPECT_NEAR(norm.mean[0], 0.5, 0.1);  // uniform noise
  Dataset ds = decode_all(loader, 5);
  EXPECT_EQ(ds.images.sizes(), (std::vector<int64_t>{12, 3, 15, 20}));
  EXPECT_EQ(ds.labels[6].item<int64_t>(), 1);
}

}  // namespace gpulab::data
