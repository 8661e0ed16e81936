// Frame sources: folders and image files in path order without decoding,
// video files and image sequences decoded to the pixels OpenCV gives, the
// synthetic camera deterministic and paced, and every bad spec an error of
// the right kind naming it.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#ifdef GPULAB_WITH_VIDEOIO
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>
#endif

#include "gpulab/core/error.h"
#include "gpulab/infer/frame_source.h"
#include "tests/support/test_util.h"

namespace gpulab::infer {
namespace {
namespace fs = std::filesystem;

constexpr const char* kFsrcVtest = "/usr/share/doc/opencv-doc/examples/data/vtest.avi";

// The kind and message of the gpulab::Error `fn` throws.
std::pair<ErrorKind, std::string> fsrc_error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return {e.kind(), e.what()};
  }
  ADD_FAILURE() << "expected a gpulab::Error";
  return {ErrorKind::kInternal, "no error"};
}

std::vector<Frame> fsrc_read_all(FrameSource& source) {
  std::vector<Frame> frames;
  while (auto frame = source.next()) frames.push_back(std::move(*frame));
  return frames;
}

TEST(FrameSourceTest, FolderGivesEveryImageRecursivelySortedByPathUndecoded) {
  testing::TempDir dir;
  fs::create_directories(dir / "sub/deeper");
  // Empty files: the source lists them, the worker decodes them.
  for (const char* name : {"b.png", "a.JPG", "sub/c.ppm", "sub/deeper/a.webp", "notes.txt"}) {
    testing::write_bytes(dir / name, "");
  }
  auto source = open_frame_source(dir.path());
  EXPECT_FALSE(source->live());
  EXPECT_EQ(source->fps(), 0);
  EXPECT_EQ(source->frame_count(), 4);
  EXPECT_NE(source->describe().find(dir.path()), std::string::npos) << source->describe();
  const auto frames = fsrc_read_all(*source);
  const std::vector<std::string> expected = {dir / "a.JPG", dir / "b.png", dir / "sub/c.ppm",
                                             dir / "sub/deeper/a.webp"};
  ASSERT_EQ(frames.size(), expected.size());
  for (size_t i = 0; i < frames.size(); ++i) {
    EXPECT_EQ(frames[i].index, static_cast<int64_t>(i));
    EXPECT_EQ(frames[i].path, expected[i]);
    EXPECT_EQ(frames[i].name, expected[i]);
    EXPECT_FALSE(frames[i].image.defined());
  }
  EXPECT_FALSE(source->next().has_value()) << "the end stays the end";
}

TEST(FrameSourceTest, ImageFileGivesOneUndecodedFrame) {
  testing::TempDir dir;
  testing::write_bytes(dir / "one.png", "not decoded here");
  auto source = open_frame_source(dir / "one.png");
  EXPECT_EQ(source->frame_count(), 1);
  auto frame = source->next();
  ASSERT_TRUE(frame.has_value());
  EXPECT_EQ(frame->index, 0);
  EXPECT_EQ(frame->path, dir / "one.png");
  EXPECT_FALSE(frame->image.defined());
  EXPECT_FALSE(source->next().has_value());
}

TEST(FrameSourceTest, FolderWithoutImagesIsNotFoundNamingIt) {
  testing::TempDir dir;
  testing::write_bytes(dir / "readme.txt", "no images");
  auto [kind, message] = fsrc_error_of([&] { open_frame_source(dir.path()); });
  EXPECT_EQ(kind, ErrorKind::kNotFound);
  EXPECT_NE(message.find(dir.path()), std::string::npos) << message;
}

TEST(FrameSourceTest, MissingPathIsNotFoundNamingIt) {
  testing::TempDir dir;
  auto [kind, message] = fsrc_error_of([&] { open_frame_source(dir / "nothing.mp4"); });
  EXPECT_EQ(kind, ErrorKind::kNotFound);
  EXPECT_NE(message.find(dir / "nothing.mp4"), std::string::npos) << message;
}

TEST(FrameSourceTest, UnknownExtensionIsInvalidArgumentListingWhatIsAccepted) {
  testing::TempDir dir;
  testing::write_bytes(dir / "clip.gif", "GIF89a");
  auto [kind, message] = fsrc_error_of([&] { open_frame_source(dir / "clip.gif"); });
  EXPECT_EQ(kind, ErrorKind::kInvalidArgument);
  for (const char* part : {"clip.gif", ".png", ".mp4", "camera:N", "synthetic:"}) {
    EXPECT_NE(message.find(part), std::string::npos) << part << " in: " << message;
  }
}

TEST(FrameSourceTest, MalformedSpecsAreInvalidArgument) {
  for (const char* spec : {"synthetic:64x48", "synthetic:64x48@0", "synthetic:0x48@30",
                           "synthetic:64x48@30/x", "camera:", "camera:front", ""}) {
    auto [kind, message] = fsrc_error_of([&] { open_frame_source(spec); });
    EXPECT_EQ(kind, ErrorKind::kInvalidArgument) << spec << ": " << message;
  }
}

#ifdef GPULAB_WITH_VIDEOIO

TEST(FrameSourceTest, VideoFileGivesTheRgbFramesOpenCvDecodes) {
  ASSERT_TRUE(fs::exists(kFsrcVtest)) << kFsrcVtest << " is missing: apt-get install opencv-doc";
  auto source = open_frame_source(kFsrcVtest);
  EXPECT_FALSE(source->live());
  EXPECT_NEAR(source->fps(), 10.0, 0.01);
  EXPECT_EQ(source->frame_count(), 795);
  EXPECT_NE(source->describe().find("768x576"), std::string::npos) << source->describe();

  cv::VideoCapture reference(kFsrcVtest);
  ASSERT_TRUE(reference.isOpened());
  for (int64_t i = 0; i < 3; ++i) {
    auto frame = source->next();
    ASSERT_TRUE(frame.has_value());
    EXPECT_EQ(frame->index, i);
    EXPECT_EQ(frame->name, std::string(kFsrcVtest) + "#" + std::to_string(i));
    EXPECT_TRUE(frame->path.empty());
    ASSERT_TRUE(frame->image.defined());
    EXPECT_EQ(frame->image.sizes(), (std::vector<int64_t>{576, 768, 3}));
    EXPECT_EQ(frame->image.scalar_type(), torch::kUInt8);
    EXPECT_TRUE(frame->image.is_contiguous());
    cv::Mat bgr;
    cv::Mat rgb;
    ASSERT_TRUE(reference.read(bgr));
    cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
    const auto expected = torch::from_blob(rgb.data, {rgb.rows, rgb.cols, 3}, torch::kUInt8);
    EXPECT_TRUE(torch::equal(frame->image, expected)) << "frame " << i;
  }
  // The rest, up to the end the container announced.
  int64_t count = 3;
  while (auto frame = source->next()) {
    EXPECT_EQ(frame->index, count);
    ++count;
  }
  EXPECT_EQ(count, 795);
  EXPECT_FALSE(source->next().has_value());
}

TEST(FrameSourceTest, ImageSequencePatternGivesTheWrittenImages) {
  testing::TempDir dir;
  std::vector<torch::Tensor> written;
  cv::RNG rng(11);
  for (int i = 0; i < 3; ++i) {
    cv::Mat bgr(20, 30, CV_8UC3);
    rng.fill(bgr, cv::RNG::UNIFORM, 0, 256);
    char name[32];
    std::snprintf(name, sizeof(name), "img_%04d.png", i);
    ASSERT_TRUE(cv::imwrite(dir / name, bgr));
    cv::Mat rgb;
    cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
    written.push_back(torch::from_blob(rgb.data, {20, 30, 3}, torch::kUInt8).clone());
  }
  auto source = open_frame_source(dir / "img_%04d.png");
  EXPECT_EQ(source->frame_count(), 3);
  EXPECT_EQ(source->fps(), 0) << "an image sequence has no rate of its own";
  const auto frames = fsrc_read_all(*source);
  ASSERT_EQ(frames.size(), 3u);
  for (size_t i = 0; i < frames.size(); ++i) {
    EXPECT_EQ(frames[i].index, static_cast<int64_t>(i));
    EXPECT_TRUE(torch::equal(frames[i].image, written[i])) << "frame " << i;
  }
}

TEST(FrameSourceTest, PatternMatchingNoFileIsNotFound) {
  testing::TempDir dir;
  auto [kind, message] = fsrc_error_of([&] { open_frame_source(dir / "img_%04d.png"); });
  EXPECT_EQ(kind, ErrorKind::kNotFound);
  EXPECT_NE(message.find("img_%04d.png"), std::string::npos) << message;
}

TEST(FrameSourceTest, DamagedVideoIsCorruptDataNamingIt) {
  testing::TempDir dir;
  testing::write_bytes(dir / "broken.avi", std::string(4096, 'x'));
  auto [kind, message] = fsrc_error_of([&] { open_frame_source(dir / "broken.avi"); });
  EXPECT_EQ(kind, ErrorKind::kCorruptData);
  EXPECT_NE(message.find(dir / "broken.avi"), std::string::npos) << message;
}

TEST(FrameSourceTest, CameraThatDoesNotOpenIsUnavailableNamingItsDevice) {
  ASSERT_FALSE(fs::exists("/dev/video7")) << "this test needs a machine without /dev/video7";
  auto [kind, message] = fsrc_error_of([] { open_frame_source("camera:7"); });
  EXPECT_EQ(kind, ErrorKind::kUnavailable);
  EXPECT_NE(message.find("/dev/video7"), std::string::npos) << message;
}

#else  // GPULAB_WITH_VIDEOIO

TEST(FrameSourceTest, VideoAndCameraNeedVideoio) {
  testing::TempDir dir;
  testing::write_bytes(dir / "clip.avi", "");
  for (const std::string& spec : {dir / "clip.avi", std::string("camera:7")}) {
    auto [kind, message] = fsrc_error_of([&] { open_frame_source(spec); });
    EXPECT_EQ(kind, ErrorKind::kUnavailable) << spec;
    EXPECT_NE(message.find("videoio"), std::string::npos) << message;
  }
}

#endif  // GPULAB_WITH_VIDEOIO

TEST(SyntheticSourceTest, FrameIsAFunctionOfItsIndexOnly) {
  const auto a = synthetic_frame(5, 64, 48);
  EXPECT_EQ(a.sizes(), (std::vector<int64_t>{48, 64, 3}));
  EXPECT_EQ(a.scalar_type(), torch::kUInt8);
  EXPECT_TRUE(a.is_contiguous());
  EXPECT_TRUE(torch::equal(a, synthetic_frame(5, 64, 48)));
  EXPECT_FALSE(torch::equal(a, synthetic_frame(6, 64, 48))) << "the pattern moves";
  EXPECT_GT(a.max().item<int>(), a.min().item<int>() + 100) << "it has contrast";
  // Far indices stay well defined.
  EXPECT_EQ(synthetic_frame(int64_t{1} << 40, 7, 5).sizes(), (std::vector<int64_t>{5, 7, 3}));
}

TEST(SyntheticSourceTest, GivesCountFramesInIndexOrderThenEnds) {
  auto source = open_frame_source("synthetic:32x24@1000/4");
  EXPECT_TRUE(source->live());
  EXPECT_EQ(source->fps(), 1000);
  EXPECT_EQ(source->frame_count(), 4);
  const auto frames = fsrc_read_all(*source);
  ASSERT_EQ(frames.size(), 4u);
  for (size_t i = 0; i < frames.size(); ++i) {
    const auto index = static_cast<int64_t>(i);
    EXPECT_EQ(frames[i].index, index);
    EXPECT_EQ(frames[i].name, "synthetic:32x24@1000/4#" + std::to_string(i));
    EXPECT_TRUE(torch::equal(frames[i].image, synthetic_frame(index, 32, 24)));
  }
  EXPECT_FALSE(source->next().has_value());
}

TEST(SyntheticSourceTest, WithoutCountIsEndless) {
  auto source = open_frame_source("synthetic:8x8@2000");
  EXPECT_EQ(source->frame_count(), -1);
  for (int64_t i = 0; i < 20; ++i) {
    auto frame = source->next();
    ASSERT_TRUE(frame.has_value());
    EXPECT_EQ(frame->index, i);
  }
}

TEST(SyntheticSourceTest, NeverDeliversAFrameBeforeItIsDue) {
  // Frame i is due i / 50 s after the first call: 5 frames take >= 80 ms.
  auto source = make_synthetic_source(16, 16, 50, 5);
  const auto start = StreamClock::now();
  const auto frames = fsrc_read_all(*source);
  const auto elapsed = StreamClock::now() - start;
  ASSERT_EQ(frames.size(), 5u);
  EXPECT_GE(elapsed, std::chrono::milliseconds(80));
  for (size_t i = 0; i < frames.size(); ++i) {
    EXPECT_GE(frames[i].read_at - start, std::chrono::milliseconds(20) * static_cast<int64_t>(i))
        << "frame " << i;
  }
}

TEST(SyntheticSourceTest, BadArgumentsAreInvalidArgument) {
  for (const auto& call : std::vector<std::function<void()>>{
           [] { make_synthetic_source(0, 8, 30, 1); }, [] { make_synthetic_source(8, 8, 0, 1); },
           [] { make_synthetic_source(8, 8, 30, -2); }}) {
    EXPECT_EQ(fsrc_error_of(call).first, ErrorKind::kInvalidArgument);
  }
}

}  // namespace
}  // namespace gpulab::infer
