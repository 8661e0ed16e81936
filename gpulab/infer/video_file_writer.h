// Writes a stream's output frames to a video file, atomically: frames go to a
// temporary file beside the target, renamed over it on close.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

#include "gpulab/core/options.h"

namespace gpulab::infer {

struct VideoWriterOptions {
  // Frames per second written into the file (> 0).
  GPULAB_ARG(double, fps) = 25;
  // The codec as a FourCC, e.g. "MJPG", "mp4v", "avc1" (4 characters); "" =
  // the extension's (.avi and .mkv MJPG, .mp4 mp4v).
  GPULAB_ARG(std::string, fourcc) = "";
};

// The extensions VideoFileWriter writes: .avi .mp4 .mkv.
const std::vector<std::string>& video_writer_extensions();

// Writes [H, W, 3] uint8 RGB CPU frames, all the size of the first, to a video
// at `path`. The file is written as ".STEM.partial.EXT" in the same folder
// (opened at the first frame, when its size is known) and close() fsyncs it
// and renames it to `path`: an existing `path` is untouched until then, and a
// killed process leaves no damaged `path`. With no frame written, close()
// creates nothing. Non-copyable; not thread-safe (one writer thread calls it).
//
// Throws Error: kInvalidArgument for an extension other than .avi .mp4 .mkv,
// a FourCC that is not 4 characters, fps <= 0, or a frame that is not
// [H, W, 3] uint8 or not the first frame's size (naming its index and both
// sizes); kNotFound when the folder of `path` does not exist; kIo when the
// file cannot be opened, written or renamed; kUnavailable in a build without
// OpenCV videoio (from the constructor).
class VideoFileWriter {
 public:
  VideoFileWriter(std::string path, VideoWriterOptions options = {});
  // Closes (renaming what was written to `path`, so a stopped stream keeps
  // its frames) like close(), but never throws: errors are dropped.
  ~VideoFileWriter();
  VideoFileWriter(const VideoFileWriter&) = delete;
  VideoFileWriter& operator=(const VideoFileWriter&) = delete;

  // Appends one frame: [H, W, 3] uint8 RGB on the CPU (any strides).
  void write(const at::Tensor& rgb_hwc);
  // Finishes the file and renames it to path(). Later calls do nothing;
  // write() after close() is an error.
  void close();

  int64_t frames_written() const { return frames_written_; }
  const std::string& path() const { return path_; }
  // The temporary file the frames go to until close().
  const std::string& partial_path() const { return partial_path_; }

 private:
  struct Encoder;  // the cv::VideoWriter, kept out of this header
  std::string path_;
  std::string partial_path_;
  VideoWriterOptions options_;
  std::unique_ptr<Encoder> encoder_;  // null until the first frame
  int64_t height_ = 0;
  int64_t width_ = 0;
  int64_t frames_written_ = 0;
  bool closed_ = false;
};

}  // namespace gpulab::infer
