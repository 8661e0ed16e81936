// Where `gpulab stream` reads its frames: image files, folders, video files,
// image sequences, V4L2 cameras and a synthetic camera for tests and benchmarks,
// all behind one FrameSource chosen by a spec string.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

#include "gpulab/infer/frame.h"

namespace gpulab::infer {

// Nothing to set yet: every source takes its settings from its spec. Kept so
// that options can be added without changing open_frame_source's callers.
struct SourceOptions {};

// A stream of frames in read order. Non-copyable; not thread-safe: one
// thread (the pool's reader) calls next().
class FrameSource {
 public:
  FrameSource() = default;
  FrameSource(const FrameSource&) = delete;
  FrameSource& operator=(const FrameSource&) = delete;
  virtual ~FrameSource() = default;

  // The next frame, with index 0, 1, 2, ... (no gaps), name set and read_at
  // the moment it was produced; std::nullopt at the end (and on every call
  // after it). Image files and folders give `path` and leave `image`
  // undefined (the worker decodes); video, image-sequence, camera and
  // synthetic frames give `image` [H, W, 3] uint8 RGB, contiguous, owning its
  // memory. Live sources block until their next frame is due.
  virtual std::optional<Frame> next() = 0;
  // Whether frames arrive at the source's own pace (a camera, the synthetic
  // camera) rather than as fast as they are read.
  virtual bool live() const = 0;
  // The source's frame rate in frames per second; 0 when it has none (image
  // files, folders, image sequences) or does not say.
  virtual double fps() const = 0;
  // The number of frames, -1 when unknown (cameras, endless synthetic ones,
  // containers that do not say).
  virtual int64_t frame_count() const = 0;
  // One line for a person, e.g. "video 'vtest.avi' 768x576 at 10.0 fps, 795 frames".
  virtual std::string describe() const = 0;
};

// Opens a source by its spec:
//   IMAGE            one image file (extension in data::image_extensions())
//   FOLDER           every image file under it, recursive, sorted by path
//   VIDEO            .avi .mp4 .mkv .mov .webm .m4v .mpg .mpeg, decoded with
//                    OpenCV (FFmpeg); frames named "VIDEO#INDEX"
//   PATTERN          a printf pattern such as "frames/img_%04d.png": an image
//                    sequence, decoded like a video
//   camera:N         V4L2 camera /dev/videoN, live
//   synthetic:WxH@FPS[/COUNT]
//                    a live fake camera: synthetic_frame(i) paced at FPS
//                    frames per second, COUNT frames (none: endless)
// Throws Error: kNotFound for a path that does not exist or a folder without
// images; kInvalidArgument for an unknown extension or a malformed spec;
// kCorruptData for a video that does not open or yields no frame;
// kUnavailable for a camera that does not open, or for video, pattern and
// camera specs in a build without OpenCV videoio.
std::unique_ptr<FrameSource> open_frame_source(const std::string& spec,
                                               const SourceOptions& options = {});

// The synthetic camera: `count` frames (-1 endless) of width x height pixels
// (both > 0) at `fps` (> 0). Frame i is due `i / fps` seconds after the first
// call to next(): next() sleeps until then, and when the consumer is late it
// delivers at once (the schedule is kept, so it catches up), never early.
std::unique_ptr<FrameSource> make_synthetic_source(int64_t width, int64_t height, double fps,
                                                   int64_t count);

// Frame `index` (>= 0) of the synthetic camera: [height, width, 3] uint8 RGB,
// contiguous, a function of its arguments only. Red ramps across and green
// down, both cycling with index; a blue checkerboard of 16-pixel squares moves
// 2 pixels a frame (even steps keep its edges on the 2x2 chroma blocks of
// 4:2:0 codecs, so written videos read back close); a white bar about a
// sixteenth of the width wide moves 4 pixels a frame.
at::Tensor synthetic_frame(int64_t index, int64_t width, int64_t height);

// The video-file extensions open_frame_source accepts, lower-case with the dot.
const std::vector<std::string>& video_extensions();

}  // namespace gpulab::infer
