// The frame sources: file lists (image, folder) and the synthetic camera in
// plain C++, video files, image sequences and cameras with OpenCV videoio.
#include "gpulab/infer/frame_source.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <regex>
#include <set>
#include <thread>
#include <utility>
#include <vector>

#ifdef GPULAB_WITH_VIDEOIO
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>
#include <opencv2/videoio/registry.hpp>
#endif

#include "gpulab/core/error.h"
#include "gpulab/core/text.h"
#include "gpulab/data/image_files.h"

namespace gpulab::infer {
namespace {
namespace fs = std::filesystem;

constexpr const char* kSpecForms =
    "an image file, a folder of images, a video file, an image-sequence pattern such as "
    "'frames/img_%04d.png', camera:N or synthetic:WIDTHxHEIGHT@FPS[/COUNT]";
constexpr int64_t kMaxSyntheticSide = 16384;

Frame make_frame(int64_t index, std::string name) {
  Frame frame;
  frame.index = index;
  frame.name = std::move(name);
  frame.read_at = StreamClock::now();
  return frame;
}

// Image files the worker decodes: one file, or a folder's.
class FileListSource final : public FrameSource {
 public:
  FileListSource(std::vector<std::string> paths, std::string description)
      : paths_(std::move(paths)), description_(std::move(description)) {}

  std::optional<Frame> next() override {
    if (next_ >= static_cast<int64_t>(paths_.size())) return std::nullopt;
    const std::string& path = paths_[static_cast<size_t>(next_)];
    Frame frame = make_frame(next_++, path);
    frame.path = path;
    return frame;
  }
  bool live() const override { return false; }
  double fps() const override { return 0; }
  int64_t frame_count() const override { return static_cast<int64_t>(paths_.size()); }
  std::string describe() const override { return description_; }

 private:
  std::vector<std::string> paths_;
  std::string description_;
  int64_t next_ = 0;
};

// Every image file under `dir`, sorted; follows links to folders (as the image
// folders do) but never into one folder twice.
std::vector<std::string> list_images(const fs::path& dir) {
  std::vector<std::string> files;
  std::error_code ec;
  fs::recursive_directory_iterator it(dir, fs::directory_options::follow_directory_symlink, ec),
      end;
  GPULAB_CHECK(!ec, ErrorKind::kIo, "cannot read folder '{}': {}", dir.string(), ec.message());
  std::set<std::string> visited = {fs::canonical(dir, ec).string()};
  for (; it != end; it.increment(ec)) {
    GPULAB_CHECK(!ec, ErrorKind::kIo, "cannot read folder '{}': {}", dir.string(), ec.message());
    if (it->is_directory(ec)) {
      if (!visited.insert(fs::canonical(it->path(), ec).string()).second) {
        it.disable_recursion_pending();
      }
      continue;
    }
    if (it->is_regular_file(ec) && data::has_image_extension(it->path().string())) {
      files.push_back(it->path().string());
    }
  }
  std::sort(files.begin(), files.end());
  return files;
}

// The synthetic camera. Frame i is due at start + i / fps, start being the
// first call to next(): a fixed schedule, as a camera's clock keeps.
class SyntheticSource final : public FrameSource {
 public:
  SyntheticSource(int64_t width, int64_t height, double fps, int64_t count)
      : width_(width), height_(height), fps_(fps), count_(count) {
    spec_ = fmt::format("synthetic:{}x{}@{}", width, height, fps);
    if (count >= 0) spec_ += fmt::format("/{}", count);
  }

  std::optional<Frame> next() override {
    if (count_ >= 0 && next_ >= count_) return std::nullopt;
    const auto now = StreamClock::now();
    if (next_ == 0) start_ = now;
    // Made before the wait, so it is ready when due, as a camera's is.
    at::Tensor image = synthetic_frame(next_, width_, height_);
    const auto due = start_ + std::chrono::duration_cast<StreamClock::duration>(
                                  std::chrono::duration<double>(static_cast<double>(next_) / fps_));
    while (StreamClock::now() < due) std::this_thread::sleep_until(due);
    Frame frame = make_frame(next_, fmt::format("{}#{}", spec_, next_));
    frame.image = std::move(image);
    ++next_;
    return frame;
  }
  bool live() const override { return true; }
  double fps() const override { return fps_; }
  int64_t frame_count() const override { return count_; }
  std::string describe() const override {
    return fmt::format("synthetic camera {}x{} at {:.1f} fps, {}", width_, height_, fps_,
                       count_ >= 0 ? fmt::format("{} frames", count_) : std::string("endless"));
  }

 private:
  int64_t width_;
  int64_t height_;
  double fps_;
  int64_t count_;
  std::string spec_;
  int64_t next_ = 0;
  StreamClock::time_point start_{};
};

// "WIDTHxHEIGHT@FPS[/COUNT]" after "synthetic:".
std::unique_ptr<FrameSource> open_synthetic(const std::string& spec) {
  static const std::regex kForm(R"(^synthetic:(\d+)x(\d+)@(\d+(?:\.\d*)?|\.\d+)(?:/(\d+))?$)");
  std::smatch m;
  GPULAB_CHECK(std::regex_match(spec, m, kForm), ErrorKind::kInvalidArgument,
               "bad synthetic source '{}': expected synthetic:WIDTHxHEIGHT@FPS or "
               "synthetic:WIDTHxHEIGHT@FPS/COUNT, e.g. synthetic:640x480@30/300",
               spec);
  try {
    return make_synthetic_source(std::stoll(m[1]), std::stoll(m[2]), std::stod(m[3]),
                                 m[4].matched ? std::stoll(m[4]) : -1);
  } catch (const std::out_of_range&) {
    GPULAB_FAIL(ErrorKind::kInvalidArgument, "bad synthetic source '{}': a number is too large",
                spec);
  }
}

#ifdef GPULAB_WITH_VIDEOIO

// A decoded OpenCV frame (BGR, grey or BGRA, 8-bit) as [H, W, 3] uint8 RGB
// that owns its memory: converted straight into the tensor, one pass.
at::Tensor rgb_tensor_of(const cv::Mat& frame, const std::string& name) {
  GPULAB_CHECK(frame.depth() == CV_8U &&
                   (frame.channels() == 1 || frame.channels() == 3 || frame.channels() == 4),
               ErrorKind::kCorruptData,
               "'{}': expected an 8-bit frame with 1, 3 or 4 channels, found depth {} with {} "
               "channels",
               name, frame.depth(), frame.channels());
  at::Tensor rgb = at::empty({frame.rows, frame.cols, 3}, at::kByte);
  cv::Mat out(frame.rows, frame.cols, CV_8UC3, rgb.data_ptr<uint8_t>());
  const int code = frame.channels() == 1   ? cv::COLOR_GRAY2RGB
                   : frame.channels() == 4 ? cv::COLOR_BGRA2RGB
                                           : cv::COLOR_BGR2RGB;
  cv::cvtColor(frame, out, code);
  return rgb;
}

// Video files, image sequences and cameras.
class CaptureSource final : public FrameSource {
 public:
  struct Info {
    std::string spec;  // names the frames: "SPEC#INDEX"
    std::string description;
    bool live = false;
    double fps = 0;
    int64_t frame_count = -1;
  };

  CaptureSource(std::unique_ptr<cv::VideoCapture> capture, Info info, cv::Mat first)
      : capture_(std::move(capture)), info_(std::move(info)), pending_(std::move(first)) {}

  std::optional<Frame> next() override {
    if (done_) return std::nullopt;
    cv::Mat mat;
    if (!pending_.empty()) {
      mat = std::move(pending_);
      pending_ = cv::Mat();
    } else if (!capture_->read(mat) || mat.empty()) {
      done_ = true;
      capture_->release();
      // A file ends; a camera that stops delivering is lost.
      GPULAB_CHECK(!info_.live, ErrorKind::kUnavailable,
                   "{} stopped delivering frames after {} frames; is it still connected?",
                   info_.description, next_);
      return std::nullopt;
    }
    const std::string name = fmt::format("{}#{}", info_.spec, next_);
    at::Tensor image = rgb_tensor_of(mat, name);
    Frame frame = make_frame(next_++, name);
    frame.image = std::move(image);
    return frame;
  }
  bool live() const override { return info_.live; }
  double fps() const override { return info_.fps; }
  int64_t frame_count() const override { return info_.frame_count; }
  std::string describe() const override { return info_.description; }

 private:
  std::unique_ptr<cv::VideoCapture> capture_;
  Info info_;
  cv::Mat pending_;  // the first frame, read at open to prove the file decodes
  int64_t next_ = 0;
  bool done_ = false;
};

double capture_fps(const cv::VideoCapture& capture) {
  const double fps = capture.get(cv::CAP_PROP_FPS);
  return std::isfinite(fps) && fps > 0 ? fps : 0;
}

int64_t capture_count(const cv::VideoCapture& capture) {
  const double count = capture.get(cv::CAP_PROP_FRAME_COUNT);
  return std::isfinite(count) && count > 0 ? static_cast<int64_t>(count) : -1;
}

std::string count_text(int64_t count) {
  return count >= 0 ? fmt::format("{} frames", count) : std::string("frame count unknown");
}

// A video file (FFmpeg when OpenCV has it, so other backends do not guess at
// it) or, with `sequence`, an image sequence (OpenCV's own image reader).
std::unique_ptr<FrameSource> open_video(const std::string& spec, bool sequence) {
  const int api = sequence                                           ? cv::CAP_IMAGES
                  : cv::videoio_registry::hasBackend(cv::CAP_FFMPEG) ? cv::CAP_FFMPEG
                                                                     : cv::CAP_ANY;
  auto capture = std::make_unique<cv::VideoCapture>();
  cv::Mat first;
  try {
    capture->open(spec, api);
    if (capture->isOpened()) capture->read(first);
  } catch (const cv::Exception&) {
    capture->release();
    first = cv::Mat();
  }
  if (sequence) {
    GPULAB_CHECK(capture->isOpened(), ErrorKind::kNotFound,
                 "no image files match the image-sequence pattern '{}'; expected files numbered "
                 "from 0 or 1 in the pattern's printf form (%d, %04d)",
                 spec);
  } else {
    GPULAB_CHECK(capture->isOpened(), ErrorKind::kCorruptData,
                 "cannot open video '{}': OpenCV ({}) does not read it; is it a complete video "
                 "file? Check it with ffprobe",
                 spec, api == cv::CAP_FFMPEG ? "FFmpeg" : "any backend");
  }
  GPULAB_CHECK(!first.empty(), ErrorKind::kCorruptData,
               "{} '{}' opened but yields no frame; is it empty or damaged?",
               sequence ? "image sequence" : "video", spec);
  CaptureSource::Info info;
  info.spec = spec;
  info.frame_count = capture_count(*capture);
  // An image sequence has no rate of its own (OpenCV says 1 fps).
  info.fps = sequence ? 0 : capture_fps(*capture);
  if (sequence) {
    info.description = fmt::format("image sequence '{}' {}x{}, {}", spec, first.cols, first.rows,
                                   count_text(info.frame_count));
  } else {
    info.description = fmt::format("video '{}' {}x{} at {:.1f} fps, {}", spec, first.cols,
                                   first.rows, info.fps, count_text(info.frame_count));
  }
  return std::make_unique<CaptureSource>(std::move(capture), std::move(info), std::move(first));
}

std::unique_ptr<FrameSource> open_camera(const std::string& spec, int number) {
  const std::string device = fmt::format("/dev/video{}", number);
  auto capture = std::make_unique<cv::VideoCapture>();
  try {
    capture->open(number, cv::CAP_V4L2);
  } catch (const cv::Exception&) {
    capture->release();
  }
  GPULAB_CHECK(capture->isOpened(), ErrorKind::kUnavailable,
               "camera {} ('{}') does not open: {}; list the cameras with `ls /dev/video*` or "
               "`v4l2-ctl --list-devices`",
               number, spec,
               fs::exists(device) ? device +
                                        " exists but is busy, not a capture device, or not "
                                        "readable (are you in group video?)"
                                  : "there is no " + device);
  CaptureSource::Info info;
  info.spec = spec;
  info.live = true;
  info.fps = capture_fps(*capture);
  info.description =
      fmt::format("camera {} ({}) {}x{} at {:.1f} fps", number, device,
                  static_cast<int64_t>(capture->get(cv::CAP_PROP_FRAME_WIDTH)),
                  static_cast<int64_t>(capture->get(cv::CAP_PROP_FRAME_HEIGHT)), info.fps);
  return std::make_unique<CaptureSource>(std::move(capture), std::move(info), cv::Mat());
}

#endif  // GPULAB_WITH_VIDEOIO

#ifndef GPULAB_WITH_VIDEOIO
[[noreturn]] void fail_without_videoio(const std::string& spec) {
  GPULAB_FAIL(ErrorKind::kUnavailable,
              "this gpulab was built without OpenCV videoio, so it cannot read '{}'; install "
              "libopencv-videoio-dev and rebuild, or give image files or a folder of images",
              spec);
}
#endif

std::unique_ptr<FrameSource> open_camera_spec(const std::string& spec) {
  static const std::regex kForm(R"(^camera:(\d{1,4})$)");
  std::smatch m;
  GPULAB_CHECK(std::regex_match(spec, m, kForm), ErrorKind::kInvalidArgument,
               "bad camera source '{}': expected camera:N with N the number of /dev/videoN, "
               "e.g. camera:0",
               spec);
#ifdef GPULAB_WITH_VIDEOIO
  return open_camera(spec, std::stoi(m[1]));
#else
  fail_without_videoio(spec);
#endif
}

bool has_video_extension(const std::string& path) {
  const std::string ext = core::to_lower(fs::path(path).extension().string());
  const auto& exts = video_extensions();
  return std::find(exts.begin(), exts.end(), ext) != exts.end();
}

}  // namespace

const std::vector<std::string>& video_extensions() {
  static const std::vector<std::string> kExtensions = {".avi",  ".mp4", ".mkv", ".mov",
                                                       ".webm", ".m4v", ".mpg", ".mpeg"};
  return kExtensions;
}

at::Tensor synthetic_frame(int64_t index, int64_t width, int64_t height) {
  GPULAB_CHECK(width > 0 && height > 0 && index >= 0, ErrorKind::kInvalidArgument,
               "synthetic frame: expected width > 0, height > 0 and index >= 0, found {}x{} "
               "frame {}",
               width, height, index);
  // Written row by row from two template rows (the checkerboard's two
  // phases) in plain loops: ~10x faster than tensor ops at 1920x1080, so the
  // fake camera costs little next to the workers it feeds.
  const int64_t red_shift = (3 * index) % 256;
  const int64_t green_shift = (5 * index) % 256;
  const int64_t checker_shift = 2 * (index % 16);  // even steps: see the header
  const int64_t bar = std::max<int64_t>(2, width / 32 * 2);
  const int64_t bar_begin = (4 * (index % width)) % width;
  const int64_t bar_end = std::min(width, bar_begin + bar);
  std::vector<uint8_t> rows[2];
  for (int64_t phase = 0; phase < 2; ++phase) {
    rows[phase].resize(static_cast<size_t>(width * 3));
    uint8_t* row = rows[phase].data();
    for (int64_t x = 0; x < width; ++x) {
      const bool in_bar = x >= bar_begin && x < bar_end;
      row[3 * x] = in_bar ? 255 : static_cast<uint8_t>((x * 256 / width + red_shift) % 256);
      row[3 * x + 1] = 255;  // green is per row; the bar keeps this white
      row[3 * x + 2] = in_bar || ((x + checker_shift) / 16 + phase) % 2 == 1 ? 255 : 0;
    }
  }
  at::Tensor rgb = at::empty({height, width, 3}, at::kByte);
  uint8_t* out = rgb.data_ptr<uint8_t>();
  for (int64_t y = 0; y < height; ++y) {
    uint8_t* row = out + y * width * 3;
    std::memcpy(row, rows[(y / 16) % 2].data(), static_cast<size_t>(width * 3));
    const auto green = static_cast<uint8_t>((y * 256 / height + green_shift) % 256);
    for (int64_t x = 0; x < bar_begin; ++x) row[3 * x + 1] = green;
    for (int64_t x = bar_end; x < width; ++x) row[3 * x + 1] = green;
  }
  return rgb;
}

std::unique_ptr<FrameSource> make_synthetic_source(int64_t width, int64_t height, double fps,
                                                   int64_t count) {
  GPULAB_CHECK(width > 0 && height > 0 && width <= kMaxSyntheticSide && height <= kMaxSyntheticSide,
               ErrorKind::kInvalidArgument,
               "synthetic source: expected width and height from 1 to {}, found {}x{}",
               kMaxSyntheticSide, width, height);
  GPULAB_CHECK(std::isfinite(fps) && fps > 0, ErrorKind::kInvalidArgument,
               "synthetic source: expected a frame rate > 0 frames per second, found {}", fps);
  GPULAB_CHECK(count >= -1, ErrorKind::kInvalidArgument,
               "synthetic source: expected a frame count >= 0 (or -1, endless), found {}", count);
  return std::make_unique<SyntheticSource>(width, height, fps, count);
}

std::unique_ptr<FrameSource> open_frame_source(const std::string& spec,
                                               const SourceOptions& /*options*/) {
  GPULAB_CHECK(!spec.empty(), ErrorKind::kInvalidArgument, "empty frame source: expected {}",
               kSpecForms);
  if (spec.rfind("synthetic:", 0) == 0) return open_synthetic(spec);
  if (spec.rfind("camera:", 0) == 0) return open_camera_spec(spec);

  std::error_code ec;
  const fs::file_status status = fs::status(spec, ec);
  if (!fs::exists(status) && spec.find('%') != std::string::npos) {
    const fs::path dir = fs::path(spec).parent_path();
    GPULAB_CHECK(dir.empty() || fs::is_directory(dir), ErrorKind::kNotFound,
                 "the folder '{}' of image-sequence pattern '{}' does not exist", dir.string(),
                 spec);
    GPULAB_CHECK(data::has_image_extension(spec), ErrorKind::kInvalidArgument,
                 "image-sequence pattern '{}' does not end in an image extension ({}); expected "
                 "e.g. 'frames/img_%04d.png'",
                 spec, fmt::join(data::image_extensions(), " "));
#ifdef GPULAB_WITH_VIDEOIO
    return open_video(spec, /*sequence=*/true);
#else
    fail_without_videoio(spec);
#endif
  }
  GPULAB_CHECK(fs::exists(status), ErrorKind::kNotFound,
               "frame source '{}' does not exist; expected {}", spec, kSpecForms);
  if (fs::is_directory(status)) {
    std::vector<std::string> files = list_images(spec);
    GPULAB_CHECK(!files.empty(), ErrorKind::kNotFound,
                 "folder '{}' holds no image files (extensions {}); add images or give a video "
                 "file",
                 spec, fmt::join(data::image_extensions(), " "));
    std::string description = fmt::format("folder '{}', {} images", spec, files.size());
    return std::make_unique<FileListSource>(std::move(files), std::move(description));
  }
  if (data::has_image_extension(spec)) {
    return std::make_unique<FileListSource>(std::vector<std::string>{spec},
                                            fmt::format("image '{}'", spec));
  }
  GPULAB_CHECK(has_video_extension(spec), ErrorKind::kInvalidArgument,
               "'{}' is neither an image ({}) nor a video ({}); expected {}", spec,
               fmt::join(data::image_extensions(), " "), fmt::join(video_extensions(), " "),
               kSpecForms);
#ifdef GPULAB_WITH_VIDEOIO
  return open_video(spec, /*sequence=*/false);
#else
  fail_without_videoio(spec);
#endif
}

}  // namespace gpulab::infer
