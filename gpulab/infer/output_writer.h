// What a model's outputs become on disk, by the model file's output kind and
// the destination: image files in a folder (styled images; label maps and
// overlays), frames of a video file (styled frames; overlays), or JSON
// records (class labels and scores; a JSON line per frame in a .jsonl file).
// `gpulab predict` and `gpulab stream` write through it.
#pragma once

#include <array>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>
#include <nlohmann/json.hpp>

#include "gpulab/core/options.h"
#include "gpulab/models/model_file.h"

namespace gpulab::infer {

class VideoFileWriter;

struct OutputWriterOptions {
  // A folder, a video file (.avi, .mp4, .mkv: frames), a .jsonl file (one
  // JSON record per frame), "" (records only: a classifier's predict), or
  // "null" (nothing written: to measure the pool and the model alone).
  GPULAB_ARG(std::string, out);
  // Image format of files written to a folder: png, jpg, ...
  GPULAB_ARG(std::string, format) = "png";
  // Classifiers: labels per record.
  GPULAB_ARG(int64_t, top_k) = 1;
  // Label maps: also STEM_scores.safetensors (per-pixel softmax scores).
  GPULAB_ARG(bool, scores) = false;
  // Video output: frames per second (0 = the source's, else 25).
  GPULAB_ARG(double, fps) = 0;
  // Label-map overlays: weight of the class colours over the image.
  GPULAB_ARG(double, overlay_alpha) = 0.5;
};

// One output to write: a frame's (or file's) name, the network's input
// [C, H, W] uint8, its raw output (float32 CPU, no batch dimension), and
// its sequence number (video frames are named after it).
struct OutputItem {
  int64_t index = 0;
  std::string name;
  bool from_video = false;  // name is "SOURCE#N": files are named SOURCESTEM-NNNNNN
  at::Tensor image;
  at::Tensor output;
  // The source frame's size (0 = unknown): video output keeps it, so frames
  // the network saw smaller (--image-size) come out at the source's size.
  int64_t source_height = 0;
  int64_t source_width = 0;
};

// Not thread-safe: the pool's writer thread owns it. Non-copyable.
class OutputWriter {
 public:
  // Checks the destination against the output kind (a classifier cannot
  // write a video; image outputs need a folder or a video file), creating a
  // folder. Throws Error(kInvalidArgument) saying what fits.
  OutputWriter(const models::ModelMetadata& metadata, OutputWriterOptions options,
               double source_fps = 0);
  ~OutputWriter();
  OutputWriter(const OutputWriter&) = delete;
  OutputWriter& operator=(const OutputWriter&) = delete;

  // Writes `item` and returns its record: {"file" or "frame", and by kind
  // "top"/"scores" | "label_map"/"overlay"(/"scores_file") | "image", each
  // file written}. Throws Error(kIo) naming the file that failed.
  nlohmann::json write(const OutputItem& item);
  // Completes the video or .jsonl file (renamed into place). Idempotent.
  void close();

  // What this writer makes: "image files in DIR", "video FILE", ...
  std::string describe() const;
  int64_t written() const { return written_; }

 private:
  enum class Destination { kRecords, kFolder, kVideo, kJsonLines };
  at::Tensor frame_image(const OutputItem& item) const;  // what a frame shows, network size
  at::Tensor video_frame(const OutputItem& item) const;  // ... at the source's size
  std::string file_for(const OutputItem& item, const std::string& suffix,
                       const std::string& extension = "") const;

  models::ModelMetadata metadata_;
  OutputWriterOptions options_;
  double fps_;
  Destination destination_ = Destination::kRecords;
  std::vector<std::string> class_names_;
  std::vector<std::array<uint8_t, 3>> palette_;
  std::unique_ptr<VideoFileWriter> video_;
  std::string jsonl_temp_;
  std::FILE* jsonl_ = nullptr;
  int64_t written_ = 0;
};

// Whether `path` names a video file by its extension (.avi .mp4 .mkv ...).
bool is_video_path(const std::string& path);

}  // namespace gpulab::infer
