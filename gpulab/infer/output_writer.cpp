// Output kinds to files: the destination is chosen once, each item written
// as it comes.
#include "gpulab/infer/output_writer.h"

#include <torch/torch.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "gpulab/core/error.h"
#include "gpulab/data/label_spec.h"
#include "gpulab/infer/output_decoders.h"
#include "gpulab/infer/video_file_writer.h"
#ifdef GPULAB_WITH_OPENCV
#include "gpulab/data/image_decode.h"
#include "gpulab/data/image_encode.h"
#endif

namespace gpulab::infer {
namespace fs = std::filesystem;
namespace {

std::string lower_extension(const std::string& path) {
  std::string ext = fs::path(path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return ext;
}

void write_image(const std::string& path, const at::Tensor& hwc) {
#ifdef GPULAB_WITH_OPENCV
  data::write_image_file(path, hwc);
#else
  (void)hwc;
  GPULAB_FAIL(ErrorKind::kUnavailable, "writing '{}' needs the OpenCV build", path);
#endif
}

}  // namespace

bool is_video_path(const std::string& path) {
  static const char* kVideo[] = {".avi", ".mp4", ".mkv", ".mov", ".webm", ".m4v"};
  const std::string ext = lower_extension(path);
  return std::any_of(std::begin(kVideo), std::end(kVideo), [&](const char* e) { return ext == e; });
}

OutputWriter::OutputWriter(const models::ModelMetadata& metadata, OutputWriterOptions options,
                           double source_fps)
    : metadata_(metadata), options_(std::move(options)) {
  fps_ = options_.fps() > 0 ? options_.fps() : (source_fps > 0 ? source_fps : 25.0);
  const data::LabelSpec labels = data::LabelSpec::from_json(metadata_.labels, "the model file");
  class_names_ = labels.names;
  palette_ = labels.palette.empty() ? data::default_palette(labels.size()) : labels.palette;
  const std::string& out = options_.out();
  const models::OutputKind kind = metadata_.output;
  const std::string kind_name = models::to_string(kind);
  if (out == "null") {
    destination_ = Destination::kRecords;  // nothing written: measuring the pool alone
  } else if (out.empty()) {
    GPULAB_CHECK(kind == models::OutputKind::kClassScores, ErrorKind::kInvalidArgument,
                 "the model outputs {} per image: give `out` a folder (or a video file) for them",
                 kind_name);
    destination_ = Destination::kRecords;
  } else if (lower_extension(out) == ".jsonl") {
    destination_ = Destination::kJsonLines;
  } else if (is_video_path(out)) {
    GPULAB_CHECK(kind != models::OutputKind::kClassScores, ErrorKind::kInvalidArgument,
                 "'{}' is a video file, but a classifier outputs labels: give `out` a .jsonl file "
                 "(a JSON line per frame) or a folder",
                 out);
    GPULAB_CHECK(!options_.scores(), ErrorKind::kInvalidArgument,
                 "`scores` writes one file per image: give `out` a folder, not the video '{}'",
                 out);
    destination_ = Destination::kVideo;
    video_ = std::make_unique<VideoFileWriter>(out, VideoWriterOptions().fps(fps_));
  } else {
    destination_ = Destination::kFolder;
    GPULAB_CHECK(!fs::exists(out) || fs::is_directory(out), ErrorKind::kInvalidArgument,
                 "`out` '{}' is a file: give a folder, a video file (.avi, .mp4, .mkv) or a "
                 ".jsonl file",
                 out);
    fs::create_directories(out);
  }
  if (destination_ == Destination::kJsonLines ||
      (destination_ == Destination::kFolder && kind == models::OutputKind::kClassScores)) {
    const fs::path final_path = destination_ == Destination::kJsonLines
                                    ? fs::path(out)
                                    : fs::path(out) / "predictions.jsonl";
    if (final_path.has_parent_path()) fs::create_directories(final_path.parent_path());
    jsonl_temp_ =
        (final_path.parent_path() / ("." + final_path.filename().string() + ".partial")).string();
    jsonl_ = std::fopen(jsonl_temp_.c_str(), "wb");
    GPULAB_CHECK(jsonl_ != nullptr, ErrorKind::kIo, "cannot write '{}': {}", jsonl_temp_,
                 std::strerror(errno));
  }
}

OutputWriter::~OutputWriter() {
  try {
    close();
  } catch (...) {
  }
}

std::string OutputWriter::describe() const {
  switch (destination_) {
    case Destination::kRecords:
      return "records";
    case Destination::kFolder:
      return metadata_.output == models::OutputKind::kClassScores
                 ? fmt::format("JSON lines in '{}/predictions.jsonl'", options_.out())
                 : fmt::format("{} files in '{}'", options_.format(), options_.out());
    case Destination::kVideo:
      return fmt::format("video '{}' at {:g} fps", options_.out(), fps_);
    case Destination::kJsonLines:
      return fmt::format("JSON lines in '{}'", options_.out());
  }
  return "?";
}

std::string OutputWriter::file_for(const OutputItem& item, const std::string& suffix,
                                   const std::string& extension) const {
  const std::string ext = extension.empty() ? options_.format() : extension;
  std::string stem;
  if (item.from_video) {
    // "SOURCE#N": named after the source's frame number.
    const size_t hash = item.name.rfind('#');
    const std::string source = item.name.substr(0, hash);
    const std::string number =
        hash == std::string::npos ? std::to_string(item.index) : item.name.substr(hash + 1);
    stem = fmt::format("{}-{:0>6}", fs::path(source).stem().string(), number);
  } else {
    stem = fs::path(item.name).stem().string();
  }
  return (fs::path(options_.out()) / (stem + suffix + "." + ext)).string();
}

at::Tensor OutputWriter::frame_image(const OutputItem& item) const {
  if (metadata_.output == models::OutputKind::kImage) return decode_image(item.output);
  const at::Tensor colors = colorize_label_map(decode_label_map(item.output), palette_);
  at::Tensor image = item.image.permute({1, 2, 0});
  if (image.size(2) == 1) image = image.expand({-1, -1, 3});
  return overlay(image.contiguous(), colors, options_.overlay_alpha());
}

at::Tensor OutputWriter::video_frame(const OutputItem& item) const {
  at::Tensor frame = frame_image(item);
  if (item.source_height <= 0 ||
      (frame.size(0) == item.source_height && frame.size(1) == item.source_width)) {
    return frame;
  }
#ifdef GPULAB_WITH_OPENCV
  return data::prepare_decoded_image(frame, 3, static_cast<int>(item.source_height),
                                     static_cast<int>(item.source_width))
      .permute({1, 2, 0})
      .contiguous();
#else
  return frame;
#endif
}

nlohmann::json OutputWriter::write(const OutputItem& item) {
  nlohmann::json record;
  if (item.from_video) {
    record["frame"] = item.index;
    record["name"] = item.name;
  } else {
    record["file"] = item.name;
  }
  switch (metadata_.output) {
    case models::OutputKind::kClassScores: {
      const ClassScores s = decode_class_scores(item.output, class_names_, options_.top_k());
      nlohmann::json top = nlohmann::json::array();
      for (const auto& [label, score] : s.top) top.push_back({{"label", label}, {"score", score}});
      record["top"] = top;
      record["scores"] = s.scores;
      break;
    }
    case models::OutputKind::kLabelMap: {
      if (destination_ == Destination::kVideo) {
        video_->write(video_frame(item));
        break;
      }
      if (destination_ != Destination::kFolder) break;
      const at::Tensor map = decode_label_map(item.output);
      record["label_map"] = file_for(item, "_labels");
      record["overlay"] = file_for(item, "_overlay");
      record["size"] = {map.size(1), map.size(0)};
      write_image(record["label_map"], map.unsqueeze(2));
      write_image(record["overlay"], frame_image(item));
      if (options_.scores()) {
        record["scores_file"] = file_for(item, "_scores", "safetensors");
        save_class_scores(record["scores_file"], decode_softmax_scores(item.output), class_names_,
                          item.name);
      }
      break;
    }
    case models::OutputKind::kImage: {
      const at::Tensor image = decode_image(item.output);
      record["size"] = {image.size(1), image.size(0)};
      if (destination_ == Destination::kVideo) {
        video_->write(video_frame(item));
      } else if (destination_ == Destination::kFolder) {
        record["image"] = file_for(item, "");
        write_image(record["image"], image);
      }
      break;
    }
  }
  if (jsonl_ != nullptr) {
    const std::string line = record.dump() + "\n";
    // Flushed per line: a stream stopped hard keeps every record written.
    GPULAB_CHECK(
        std::fwrite(line.data(), 1, line.size(), jsonl_) == line.size() && std::fflush(jsonl_) == 0,
        ErrorKind::kIo, "cannot write '{}': {}", jsonl_temp_, std::strerror(errno));
  }
  ++written_;
  return record;
}

void OutputWriter::close() {
  if (video_) video_->close();
  if (jsonl_ != nullptr) {
    std::FILE* file = jsonl_;
    jsonl_ = nullptr;
    const bool ok = std::fclose(file) == 0;
    GPULAB_CHECK(ok, ErrorKind::kIo, "cannot write '{}': {}", jsonl_temp_, std::strerror(errno));
    const fs::path temp(jsonl_temp_);
    const std::string name = temp.filename().string();
    const fs::path final_path = temp.parent_path() / name.substr(1, name.size() - 1 - 8);
    fs::rename(temp, final_path);
  }
}

}  // namespace gpulab::infer
