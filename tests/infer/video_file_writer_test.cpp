// VideoFileWriter: what it writes reads back with OpenCV at the same count,
// size and (within the codec's loss) pixels; the target appears only on
// close, or on destruction; bad frames and names are refused.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#ifdef GPULAB_WITH_VIDEOIO
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>
#endif

#include "gpulab/core/error.h"
#include "gpulab/infer/frame_source.h"
#include "gpulab/infer/video_file_writer.h"
#include "tests/support/test_util.h"

namespace gpulab::infer {
namespace {
namespace fs = std::filesystem;

std::pair<ErrorKind, std::string> vw_error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return {e.kind(), e.what()};
  }
  ADD_FAILURE() << "expected a gpulab::Error";
  return {ErrorKind::kInternal, "no error"};
}

std::vector<std::string> vw_listing(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir)) {
    names.push_back(entry.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

#ifdef GPULAB_WITH_VIDEOIO

// Every frame of a video as [H, W, 3] uint8 RGB.
std::vector<torch::Tensor> vw_read_back(const std::string& path) {
  std::vector<torch::Tensor> frames;
  cv::VideoCapture capture(path, cv::CAP_FFMPEG);
  EXPECT_TRUE(capture.isOpened()) << path;
  cv::Mat bgr;
  while (capture.read(bgr)) {
    cv::Mat rgb;
    cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
    frames.push_back(torch::from_blob(rgb.data, {rgb.rows, rgb.cols, 3}, torch::kUInt8).clone());
  }
  return frames;
}

double vw_mean_abs_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kFloat) - b.to(torch::kFloat)).abs().mean().item<double>();
}

void vw_write_synthetic(VideoFileWriter& writer, int64_t count) {
  for (int64_t i = 0; i < count; ++i) writer.write(synthetic_frame(i, 64, 48));
}

TEST(VideoFileWriterTest, WritesEveryExtensionSoItReadsBackClose) {
  for (const char* ext : {".avi", ".mp4", ".mkv"}) {
    SCOPED_TRACE(ext);
    testing::TempDir dir;
    const std::string path = dir / (std::string("out") + ext);
    VideoFileWriter writer(path, VideoWriterOptions().fps(12));
    vw_write_synthetic(writer, 12);
    EXPECT_EQ(writer.frames_written(), 12);
    writer.close();
    EXPECT_EQ(vw_listing(dir.path()), std::vector<std::string>{std::string("out") + ext})
        << "no temporary file is left";
    const auto frames = vw_read_back(path);
    ASSERT_EQ(frames.size(), 12u);
    for (size_t i = 0; i < frames.size(); ++i) {
      ASSERT_EQ(frames[i].sizes(), (std::vector<int64_t>{48, 64, 3}));
      const double diff =
          vw_mean_abs_diff(frames[i], synthetic_frame(static_cast<int64_t>(i), 64, 48));
      EXPECT_LT(diff, 10.0) << "frame " << i;
    }
    cv::VideoCapture capture(path, cv::CAP_FFMPEG);
    EXPECT_NEAR(capture.get(cv::CAP_PROP_FPS), 12.0, 0.01);
  }
}

TEST(VideoFileWriterTest, ExistingFileIsUntouchedUntilClose) {
  testing::TempDir dir;
  const std::string path = dir / "out.avi";
  testing::write_bytes(path, "the previous video");
  VideoFileWriter writer(path, VideoWriterOptions());
  vw_write_synthetic(writer, 3);
  EXPECT_EQ(testing::read_bytes(path), "the previous video");
  EXPECT_TRUE(fs::exists(writer.partial_path())) << writer.partial_path();
  EXPECT_EQ(fs::path(writer.partial_path()).parent_path(), fs::path(dir.path()));
  EXPECT_EQ(fs::path(writer.partial_path()).extension(), ".avi");
  writer.close();
  EXPECT_FALSE(fs::exists(writer.partial_path()));
  EXPECT_EQ(vw_read_back(path).size(), 3u);
}

TEST(VideoFileWriterTest, DestructorWithoutCloseKeepsTheFrames) {
  testing::TempDir dir;
  const std::string path = dir / "stopped.mp4";
  {
    VideoFileWriter writer(path, VideoWriterOptions());
    vw_write_synthetic(writer, 5);
  }
  EXPECT_EQ(vw_listing(dir.path()), std::vector<std::string>{"stopped.mp4"});
  EXPECT_EQ(vw_read_back(path).size(), 5u);
}

TEST(VideoFileWriterTest, CloseWithoutFramesCreatesNothing) {
  testing::TempDir dir;
  VideoFileWriter writer(dir / "empty.avi", VideoWriterOptions());
  writer.close();
  writer.close();
  EXPECT_TRUE(vw_listing(dir.path()).empty());
}

TEST(VideoFileWriterTest, FrameOfAnotherSizeIsInvalidArgumentNamingIt) {
  testing::TempDir dir;
  VideoFileWriter writer(dir / "out.avi", VideoWriterOptions());
  vw_write_synthetic(writer, 2);
  auto [kind, message] = vw_error_of([&] { writer.write(synthetic_frame(2, 32, 24)); });
  EXPECT_EQ(kind, ErrorKind::kInvalidArgument);
  for (const char* part : {"frame 2", "64x48", "32x24"}) {
    EXPECT_NE(message.find(part), std::string::npos) << part << " in: " << message;
  }
  EXPECT_EQ(writer.frames_written(), 2);
}

TEST(VideoFileWriterTest, FrameThatIsNotRgbUint8IsInvalidArgument) {
  testing::TempDir dir;
  VideoFileWriter writer(dir / "out.avi", VideoWriterOptions());
  for (const auto& frame :
       {torch::zeros({48, 64, 3}, torch::kFloat), torch::zeros({48, 64}, torch::kUInt8),
        torch::zeros({3, 48, 64}, torch::kUInt8), torch::Tensor()}) {
    EXPECT_EQ(vw_error_of([&] { writer.write(frame); }).first, ErrorKind::kInvalidArgument);
  }
}

TEST(VideoFileWriterTest, AnyStridesAreWritten) {
  testing::TempDir dir;
  const std::string path = dir / "out.avi";
  const auto frame = synthetic_frame(3, 64, 48).permute({1, 0, 2}).contiguous().permute({1, 0, 2});
  ASSERT_FALSE(frame.is_contiguous());
  {
    VideoFileWriter writer(path, VideoWriterOptions());
    writer.write(frame);
  }
  const auto frames = vw_read_back(path);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_LT(vw_mean_abs_diff(frames[0], frame), 10.0);
}

TEST(VideoFileWriterTest, UnknownExtensionIsInvalidArgumentListingTheKnown) {
  testing::TempDir dir;
  auto [kind, message] = vw_error_of([&] { VideoFileWriter(dir / "out.gif", {}); });
  EXPECT_EQ(kind, ErrorKind::kInvalidArgument);
  for (const char* part : {"out.gif", ".avi", ".mp4", ".mkv"}) {
    EXPECT_NE(message.find(part), std::string::npos) << part << " in: " << message;
  }
}

TEST(VideoFileWriterTest, BadOptionsAndMissingFolderAreRefused) {
  testing::TempDir dir;
  EXPECT_EQ(vw_error_of([&] { VideoFileWriter(dir / "a.avi", VideoWriterOptions().fps(0)); }).first,
            ErrorKind::kInvalidArgument);
  EXPECT_EQ(
      vw_error_of([&] { VideoFileWriter(dir / "a.avi", VideoWriterOptions().fourcc("MJ")); }).first,
      ErrorKind::kInvalidArgument);
  EXPECT_EQ(vw_error_of([&] { VideoFileWriter(dir / "no/such/a.avi", {}); }).first,
            ErrorKind::kNotFound);
}

#else  // GPULAB_WITH_VIDEOIO

TEST(VideoFileWriterTest, NeedsVideoio) {
  testing::TempDir dir;
  auto [kind, message] = vw_error_of([&] { VideoFileWriter(dir / "out.avi", {}); });
  EXPECT_EQ(kind, ErrorKind::kUnavailable);
  EXPECT_NE(message.find("videoio"), std::string::npos) << message;
  EXPECT_TRUE(vw_listing(dir.path()).empty());
}

#endif  // GPULAB_WITH_VIDEOIO

}  // namespace
}  // namespace gpulab::infer
