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

// A JPEG whose APP1 (EXIF) segment carries a complete thumbnail JPEG, with
// its own end-of-image marker, then the main image.
std::string with_exif_thumbnail(const std::string& jpeg, const std::string& thumbnail) {
  const std::string payload = std::string("Exif\0\0", 6) + thumbnail;
  const size_t length = payload.size() + 2;
  std::string app1 = "\xff\xe1";
  app1 += static_cast<char>(length >> 8);
  app1 += static_cast<char>(length & 0xff);
  return jpeg.substr(0, 2) + app1 + payload + jpeg.substr(2);
}

std::string jpeg_bytes(int height, int width, int seed) {
  cv::Mat img(height, width, CV_8UC3);
  cv::RNG rng(seed);
  rng.fill(img, cv::RNG::UNIFORM, 0, 255);
  std::vector<uchar> out;
  cv::imencode(".jpg", img, out);
  return std::string(out.begin(), out.end());
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

TEST(LoaderTest, ATruncatedJpegWithACompleteExifThumbnailFailsNamingIt) {
  testing::TempDir dir;
  make_jpeg_folder(dir);
  const std::string whole = with_exif_thumbnail(jpeg_bytes(30, 40, 1), jpeg_bytes(8, 8, 2));
  EXPECT_TRUE(jpeg_is_complete(whole));
  EXPECT_TRUE(jpeg_is_complete(whole + std::string(100, '\0')));  // trailing padding
  // Cut inside the main image's scan: the thumbnail's EOI is still there.
  const std::string cut = whole.substr(0, whole.size() - 200);
  ASSERT_NE(cut.rfind("\xff\xd9"), std::string::npos);
  EXPECT_FALSE(jpeg_is_complete(cut));
  testing::write_bytes(dir / "a/cut_exif.jpg", cut);
  const Error e = load_error(dir.path());
  expect_names(e, "cut_exif.jpg", ErrorKind::kCorruptData);
  EXPECT_NE(std::string(e.what()).find("truncated"), std::string::npos) << e.what();
  int64_t batch = 0;
  EXPECT_EQ(skipped_after_one_pass(dir.path(), &batch), 1);
  EXPECT_EQ(batch, 12);
}

TEST(LoaderTest, ProbeRefusesAnImageAboveThePixelLimitBeforeDecodingIt) {
  const std::string jpeg = jpeg_bytes(30, 40, 1);
  EXPECT_EQ(SampleDecoder::probe("x.jpg", jpeg)[1], 40);
  try {
    SampleDecoder::probe("x.jpg", jpeg, /*max_pixels=*/1000);
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    expect_names(e, "x.jpg", ErrorKind::kCorruptData);
    EXPECT_NE(std::string(e.what()).find("1200 pixels"), std::string::npos) << e.what();
  }
}

TEST(LoaderTest, AnOversizedFirstImageDoesNotSetTheOutputSize) {
  // The first file (by name) is above the limit: the output size comes from
  // the next one, and the big one fails in its place instead of making every
  // step's buffer its size.
  testing::TempDir dir;
  make_jpeg_folder(dir);
  cv::imwrite(dir / "a/aaa_big.png", cv::Mat(100, 100, CV_8UC3, cv::Scalar(1, 2, 3)));
  ImageFolderIndex index = index_image_folder(ImageFolderOptions(dir.path()));
  ASSERT_NE(index.files[0].find("aaa_big.png"), std::string::npos);
  const TransformOptions t = with_output_size(TransformOptions(), index, nullptr, 5000);
  EXPECT_EQ(t.height(), 30);
  EXPECT_EQ(t.width(), 40);
}

TEST(LoaderTest, AStepThatCannotBeAllocatedFailsInNextNotInTheWorker) {
  testing::TempDir dir;
  make_jpeg_folder(dir);
  ImageFolderIndex index = index_image_folder(ImageFolderOptions(dir.path()));
  // 12 x 10^7 x 10^6 x 3 bytes: more than any address space.
  StreamingLoader loader(index, TransformOptions().height(10000000).width(1000000), half(),
                         LoaderOptions().threads(2).max_pixels(int64_t{1} << 62));
  std::vector<int64_t> all(12);
  for (size_t i = 0; i < all.size(); ++i) all[i] = static_cast<int64_t>(i);
  loader.start_epoch(1, steps({all}));
  try {
    loader.next();
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cannot allocate step 1"), std::string::npos) << e.what();
  }
}

TEST(LoaderTest, AStepOfOnlyBadFilesIsEmptyAndCountedUnderSkipBadFiles) {
  testing::TempDir dir;
  make_jpeg_folder(dir);
  testing::write_bytes(dir / "a/aa_bad1.jpg", "");
  testing::write_bytes(dir / "a/aa_bad2.jpg", "not a JPEG");
  ImageFolderIndex index = index_image_folder(ImageFolderOptions(dir.path()));
  ASSERT_NE(index.files[1].find("aa_bad2.jpg"), std::string::npos);
  StreamingLoader loader(index, TransformOptions().height(8).width(8), half(),
                         LoaderOptions().threads(2).skip_bad_files(true));
  loader.start_epoch(1, steps({{0, 1}, {2, 3}}));
  Batch empty = loader.next();
  EXPECT_EQ(empty.target.size(0), 0);
  EXPECT_EQ(empty.input.sizes(), (std::vector<int64_t>{0, 3, 8, 8}));
  EXPECT_EQ(loader.next().target.size(0), 2);
  EXPECT_EQ(loader.skipped_files(), 2);
}

// Regression: 2 ranks on a set whose last global mini-batch holds 1 image give
// rank 0 an empty slice, which start_epoch refused ("a step with no samples").
TEST(LoaderTest, AnEmptyStepGivesAnEmptyBatchInItsTurn) {
  testing::TempDir dir;
  make_jpeg_folder(dir);
  ImageFolderIndex index = index_image_folder(ImageFolderOptions(dir.path()));
  StreamingLoader loader(index, TransformOptions().height(8).width(8), half(),
                         LoaderOptions().threads(2).prefetch(1));
  std::vector<at::Tensor> epoch = steps({{0, 1}});
  epoch.push_back(torch::empty({0}, torch::kInt64));
  epoch.push_back(steps({{2}})[0]);
  loader.start_epoch(1, std::move(epoch));
  EXPECT_EQ(loader.next().target.size(0), 2);
  Batch empty = loader.next();
  EXPECT_EQ(empty.target.size(0), 0);
  EXPECT_EQ(empty.input.sizes(), (std::vector<int64_t>{0, 3, 8, 8}));
  EXPECT_EQ(loader.next().target.size(0), 1);
}

TEST(LoaderTest, ColourWinsWhenTheFirstImageIsGrey) {
  testing::TempDir dir;
  make_jpeg_folder(dir);
  cv::imwrite(dir / "a/aaa_grey.png", cv::Mat(30, 40, CV_8UC1, cv::Scalar(9)));
  ImageFolderIndex index = index_image_folder(ImageFolderOptions(dir.path()));
  ASSERT_NE(index.files[0].find("aaa_grey.png"), std::string::npos);
  EXPECT_EQ(with_output_size(TransformOptions().channels(0), index).channels(), 3);
  EXPECT_TRUE(any_colour_image(index.files));
  EXPECT_FALSE(any_colour_image({index.files[0]}));
}

TEST(LoaderTest, TiffHeadersGiveTheSizeSoBombsAreRefusedUndecoded) {
  testing::TempDir dir;
  cv::imwrite(dir / "x.tif", cv::Mat(30, 40, CV_8UC3, cv::Scalar(1, 2, 3)));
  auto tiff = read_image_header(testing::read_bytes(dir / "x.tif"));
  ASSERT_TRUE(tiff);
  EXPECT_EQ(tiff->format, "tiff");
  EXPECT_EQ(tiff->width, 40);
  EXPECT_EQ(tiff->height, 30);
  EXPECT_EQ(tiff->channels, 3);
  try {
    SampleDecoder::probe("x.tif", testing::read_bytes(dir / "x.tif"), 1000);
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("(tiff) is 40x30"), std::string::npos) << e.what();
  }
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
  EXPECT_EQ(ds.targets[6].item<int64_t>(), 1);
}

}  // namespace gpulab::data
