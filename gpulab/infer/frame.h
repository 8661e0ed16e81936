// One unit of work of the inference pool: an image from a file, a video, a
// camera or any other source, tagged with its place in the input order.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include <ATen/core/Tensor.h>

namespace gpulab::infer {

using StreamClock = std::chrono::steady_clock;

struct Frame {
  // Sequence number in read order, 0-based and without gaps: the pool's
  // reorder buffer puts outputs back in this order.
  int64_t index = 0;
  // What names the frame in messages and output files: the file path for
  // image files, "SOURCE#INDEX" for video and camera frames.
  std::string name;
  // A file the worker decodes (so decoding runs on every worker in
  // parallel) when `image` is undefined.
  std::string path;
  // [H, W, 3] uint8 RGB on the CPU, decoded by the source; undefined when
  // the worker decodes `path`.
  at::Tensor image;
  // When the source produced the frame: latency is measured from here to
  // the moment its output is written.
  StreamClock::time_point read_at{};
};

}  // namespace gpulab::infer
