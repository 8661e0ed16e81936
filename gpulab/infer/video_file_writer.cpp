// VideoFileWriter: OpenCV's VideoWriter (FFmpeg) into a temporary sibling,
// fsync and rename on close, as core/atomic_file does for small files.
#include "gpulab/infer/video_file_writer.h"

#include <fcntl.h>
#include <unistd.h>

#include <ATen/ATen.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <utility>

#ifdef GPULAB_WITH_VIDEOIO
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>
#include <opencv2/videoio/registry.hpp>
#endif

#include "gpulab/core/error.h"
#include "gpulab/core/text.h"

namespace gpulab::infer {
namespace {
namespace fs = std::filesystem;

// The codec each extension gets by default; all three checked to write and
// read back with Debian 12's OpenCV 4.6 FFmpeg backend.
std::string default_fourcc(const std::string& lower_ext) {
  return lower_ext == ".mp4" ? "mp4v" : "MJPG";
}

void fsync_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  GPULAB_CHECK(fd >= 0, ErrorKind::kIo, "cannot open '{}' to sync it: {}", path,
               std::strerror(errno));
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  GPULAB_CHECK(rc == 0, ErrorKind::kIo, "cannot fsync '{}': {}", path, std::strerror(err));
}

}  // namespace

const std::vector<std::string>& video_writer_extensions() {
  static const std::vector<std::string> kExtensions = {".avi", ".mp4", ".mkv"};
  return kExtensions;
}

#ifdef GPULAB_WITH_VIDEOIO
struct VideoFileWriter::Encoder {
  cv::VideoWriter writer;
  cv::Mat bgr;  // reused for every frame
};
#else
struct VideoFileWriter::Encoder {};
#endif

VideoFileWriter::VideoFileWriter(std::string path, VideoWriterOptions options)
    : path_(std::move(path)), options_(std::move(options)) {
#ifndef GPULAB_WITH_VIDEOIO
  GPULAB_FAIL(ErrorKind::kUnavailable,
              "this gpulab was built without OpenCV videoio, so it cannot write video '{}'; "
              "install libopencv-videoio-dev and rebuild, or write image files instead",
              path_);
#endif
  const fs::path target(path_);
  const std::string ext = core::to_lower(target.extension().string());
  const auto& exts = video_writer_extensions();
  GPULAB_CHECK(std::find(exts.begin(), exts.end(), ext) != exts.end(), ErrorKind::kInvalidArgument,
               "cannot write video '{}': expected the extension {}, found '{}'", path_,
               fmt::join(exts, ", "), ext);
  GPULAB_CHECK(options_.fourcc().empty() || options_.fourcc().size() == 4,
               ErrorKind::kInvalidArgument,
               "video '{}': expected a FourCC of 4 characters (e.g. MJPG, mp4v), found '{}'", path_,
               options_.fourcc());
  if (options_.fourcc().empty()) options_.fourcc(default_fourcc(ext));
  GPULAB_CHECK(options_.fps() > 0, ErrorKind::kInvalidArgument,
               "video '{}': expected a frame rate > 0 frames per second, found {}", path_,
               options_.fps());
  const fs::path dir = target.parent_path().empty() ? fs::path(".") : target.parent_path();
  std::error_code ec;
  GPULAB_CHECK(fs::is_directory(dir, ec), ErrorKind::kNotFound,
               "cannot write video '{}': its folder '{}' does not exist; create it first", path_,
               dir.string());
  GPULAB_CHECK(!fs::is_directory(target, ec), ErrorKind::kInvalidArgument,
               "cannot write video '{}': it is a folder; give a file name such as '{}/out{}'",
               path_, path_, ext);
  partial_path_ = (target.parent_path() /
                   ("." + target.stem().string() + ".partial" + target.extension().string()))
                      .string();
}

VideoFileWriter::~VideoFileWriter() {
  try {
    close();
  } catch (...) {
    // A destructor must not throw; close() explicitly to see the error.
  }
}

void VideoFileWriter::write(const at::Tensor& rgb_hwc) {
  GPULAB_CHECK(!closed_, ErrorKind::kInternal, "video '{}': write() after close()", path_);
  GPULAB_CHECK(rgb_hwc.defined() && rgb_hwc.dim() == 3 && rgb_hwc.size(2) == 3 &&
                   rgb_hwc.scalar_type() == at::kByte && rgb_hwc.device().is_cpu(),
               ErrorKind::kInvalidArgument,
               "video '{}' frame {}: expected [H, W, 3] uint8 RGB on the CPU, found {}", path_,
               frames_written_,
               rgb_hwc.defined()
                   ? fmt::format("[{}] {} on {}", fmt::join(rgb_hwc.sizes(), ", "),
                                 c10::toString(rgb_hwc.scalar_type()), rgb_hwc.device().str())
                   : std::string("an undefined tensor"));
#ifdef GPULAB_WITH_VIDEOIO
  const int64_t height = rgb_hwc.size(0);
  const int64_t width = rgb_hwc.size(1);
  GPULAB_CHECK(height > 0 && width > 0, ErrorKind::kInvalidArgument,
               "video '{}' frame {}: expected a frame of at least 1x1 pixels, found {}x{}", path_,
               frames_written_, width, height);
  if (!encoder_) {
    auto encoder = std::make_unique<Encoder>();
    const std::string& cc = options_.fourcc();
    const int api = cv::videoio_registry::hasBackend(cv::CAP_FFMPEG) ? cv::CAP_FFMPEG : cv::CAP_ANY;
    try {
      encoder->writer.open(partial_path_, api, cv::VideoWriter::fourcc(cc[0], cc[1], cc[2], cc[3]),
                           options_.fps(),
                           cv::Size(static_cast<int>(width), static_cast<int>(height)), true);
    } catch (const cv::Exception& e) {
      GPULAB_FAIL(ErrorKind::kIo, "cannot open video '{}' for writing with codec {}: {}",
                  partial_path_, cc, e.what());
    }
    GPULAB_CHECK(encoder->writer.isOpened(), ErrorKind::kIo,
                 "cannot open video '{}' for writing with codec {} at {}x{}; check that the "
                 "folder is writable and that OpenCV's FFmpeg has that codec (or choose another "
                 "with fourcc)",
                 partial_path_, cc, width, height);
    encoder_ = std::move(encoder);
    height_ = height;
    width_ = width;
  }
  GPULAB_CHECK(height == height_ && width == width_, ErrorKind::kInvalidArgument,
               "video '{}' frame {}: expected the first frame's size {}x{}, found {}x{}; resize "
               "frames to one size before writing",
               path_, frames_written_, width_, height_, width, height);
  const at::Tensor rgb = rgb_hwc.contiguous();
  const cv::Mat in(static_cast<int>(height), static_cast<int>(width), CV_8UC3,
                   const_cast<uint8_t*>(rgb.data_ptr<uint8_t>()));
  cv::cvtColor(in, encoder_->bgr, cv::COLOR_RGB2BGR);
  encoder_->writer.write(encoder_->bgr);
  ++frames_written_;
#endif
}

void VideoFileWriter::close() {
  if (closed_) return;
  closed_ = true;
  if (!encoder_) return;  // no frame: nothing to keep, `path` untouched
#ifdef GPULAB_WITH_VIDEOIO
  encoder_->writer.release();
#endif
  encoder_.reset();
  // The file's data, then its new name, reach the disk before close returns.
  fsync_file(partial_path_);
  if (::rename(partial_path_.c_str(), path_.c_str()) != 0) {
    GPULAB_FAIL(ErrorKind::kIo, "cannot rename '{}' to '{}': {}; the {} frames written are in '{}'",
                partial_path_, path_, std::strerror(errno), frames_written_, partial_path_);
  }
  // The folder's entry: best effort, as some file systems cannot sync folders.
  const fs::path dir = fs::path(path_).parent_path();
  const int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

}  // namespace gpulab::infer
