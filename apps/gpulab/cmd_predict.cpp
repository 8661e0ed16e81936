// gpulab predict: a trained model on image files, for any task: top-k labels
// and scores (classifiers), label maps, colour overlays and optionally
// per-pixel class scores (segmentation), images (style transfer).
#include <torch/torch.h>
#include <CLI/CLI.hpp>

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "apps/gpulab/commands.h"
#include "apps/gpulab/data_flags.h"
#include "apps/gpulab/environment.h"
#include "gpulab/core/atomic_file.h"
#include "gpulab/core/device.h"
#include "gpulab/core/error.h"
#include "gpulab/core/text.h"
#include "gpulab/core/text_table.h"
#include "gpulab/data/data_path.h"
#include "gpulab/data/image_files.h"
#include "gpulab/data/label_spec.h"
#include "gpulab/infer/output_decoders.h"
#include "gpulab/infer/predictor.h"
#include "gpulab/infer/stream.h"
#ifdef GPULAB_WITH_CURL
#include "gpulab/data/remote_datastore.h"
#endif

namespace gpulab::app {
namespace fs = std::filesystem;
namespace {

struct PredictFlags {
  std::string model, weights, input, json, env = "auto", cache_dir, out, format = "png";
  int64_t top_k = 1;
  int64_t batch_size = 32;
  bool skip_bad_files = false;
  bool scores = false;     // label-map models: also STEM_scores.safetensors
  int64_t max_pixels = 0;  // 0 = data::kDefaultMaxPixels
  InputFlags input_flags;
};

// A single-file s3:// or http(s):// --input is fetched into the remote cache
// (credentials from AWS_*); returns the local file, or `input` itself.
std::string local_input(const PredictFlags& f) {
  if (!data::is_remote_path(f.input)) return f.input;
#ifdef GPULAB_WITH_CURL
  const data::RemoteAccess access = remote_access_from_environment();
  data::RemoteDataOptions options(f.cache_dir.empty() ? access.cache_dir : f.cache_dir);
  options.s3(access.s3);
  return data::fetch_remote_file(f.input, options).local_path;
#else
  GPULAB_FAIL(ErrorKind::kUnavailable,
              "this gpulab was built without remote data support (GPULAB_WITH_CURL=OFF); "
              "download the image first");
#endif
}

std::vector<std::string> input_files(const std::string& input) {
  GPULAB_CHECK(fs::exists(input), ErrorKind::kNotFound, "input '{}' does not exist", input);
  if (!fs::is_directory(input)) return {input};
  std::vector<std::string> files;
  for (const auto& entry : fs::recursive_directory_iterator(input)) {
    if (entry.is_regular_file() && data::has_image_extension(entry.path().string())) {
      files.push_back(entry.path().string());
    }
  }
  std::sort(files.begin(), files.end());
  GPULAB_CHECK(!files.empty(), ErrorKind::kNotFound, "input folder '{}' holds no images", input);
  return files;
}

// --scores writes what only a label-map model lacks elsewhere: a classifier's
// softmax scores of every class are in each --json record already.
void check_scores_flag(const PredictFlags& f, models::OutputKind kind) {
  if (!f.scores) return;
  GPULAB_CHECK(kind != models::OutputKind::kClassScores, ErrorKind::kInvalidArgument,
               "--scores writes the per-pixel class scores of a segmentation model; '{}' is a "
               "classifier, whose softmax scores of every class are in --json FILE already "
               "(\"scores\", in class-index order)",
               f.model);
  GPULAB_CHECK(kind == models::OutputKind::kLabelMap, ErrorKind::kInvalidArgument,
               "--scores writes the per-pixel class scores of a segmentation model; '{}' has "
               "output kind '{}', which has no class scores: leave out --scores",
               f.model, models::to_string(kind));
}

// The table row of one file's record, by output kind.
std::vector<std::string> table_row(const nlohmann::json& record, models::OutputKind kind) {
  const std::string file = record.at("file");
  if (kind == models::OutputKind::kClassScores) {
    const auto& top = record.at("top").at(0);
    return {file, top.at("label"), fmt::format("{:.4f}", top.at("score").get<double>())};
  }
  const std::string written =
      record.value(kind == models::OutputKind::kImage ? "image" : "overlay", std::string());
  const auto& size = record.at("size");
  return {file, written,
          fmt::format("{}x{}", size.at(0).get<int64_t>(), size.at(1).get<int64_t>())};
}

int run_predict(const PredictFlags& f) {
  GPULAB_CHECK(f.top_k >= 1, ErrorKind::kInvalidArgument, "--top-k must be >= 1, got {}", f.top_k);
  GPULAB_CHECK(f.max_pixels >= 0, ErrorKind::kInvalidArgument, "--max-pixels must be >= 0, got {}",
               f.max_pixels);
  const core::ExecutionEnvironment env = core::parse_execution_environment(f.env);
  // One worker per GPU, or one on the CPU with every core.
  const std::vector<c10::Device> devices = infer::worker_devices(env, 0, {});
  infer::ModelProcessorOptions model;
  model.model(f.model).weights(f.weights).devices(devices).skip_bad_files(f.skip_bad_files);
  if (devices.front().is_cpu()) model.threads_per_worker(infer::threads_per_worker(0, 1));
  if (f.max_pixels > 0) model.max_pixels(f.max_pixels);
  // A fully-convolutional model file takes --image-size as the size to
  // resize inputs to; with --weights it is the network's input size.
  infer::set_input_size(model, f.input_flags.options());
  const models::ModelMetadata metadata =
      infer::load_model(f.model, f.weights, model.input()).metadata;
  GPULAB_CHECK(model.height() == 0 || !metadata.fixed_input_size, ErrorKind::kInvalidArgument,
               "'{}' records its input size; --channels and --image-size apply only with "
               "--weights",
               f.model);
  check_scores_flag(f, metadata.output);
  const std::string local = local_input(f);
  const std::vector<std::string> files = input_files(local);
  infer::OutputWriter writer(
      metadata,
      infer::OutputWriterOptions().out(f.out).format(f.format).top_k(f.top_k).scores(f.scores));
  const bool writes_files = metadata.output != models::OutputKind::kClassScores;
  core::TextTable table(writes_files ? std::vector<std::string>{"File", "Output", "Size"}
                                     : std::vector<std::string>{"File", "Label", "Score"});
  nlohmann::json out = nlohmann::json::array();
  infer::predict_files(
      files, model, f.batch_size, writer,
      [&](nlohmann::json&& record) {
  // A fetched file is named by its URL, not its place in the cache.
#ifdef GPULAB_WITH_CURL
        if (local != f.input) record["file"] = data::redact_url(f.input);
#endif
        table.add_row(table_row(record, metadata.output));
        out.push_back(std::move(record));
      },
      [](const std::string& file, const std::string&) {
        std::printf("Skipped undecodable file '%s'\n", file.c_str());
      });
  std::printf("%s", table.render().c_str());
  if (!f.json.empty()) core::write_file_atomic(f.json, out.dump(2) + "\n");
  return 0;
}

}  // namespace

Action add_predict_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "predict", "A model on images: labels and scores, label maps and overlays, or images");
  auto f = std::make_shared<PredictFlags>();
  cmd->add_option("--model", f->model,
                  "RUN_DIR or model file; with --weights, the architecture (e.g. resnet18)")
      ->required();
  cmd->add_option("--weights", f->weights,
                  "Imported weights for --model ARCH: safetensors with PyTorch names, TorchScript "
                  "(.pt) or MatConvNet (.mat)");
  cmd->add_option("--input", f->input,
                  "Image file or folder of images, or one image at s3://BUCKET/KEY or an "
                  "http(s):// URL")
      ->required();
  cmd->add_option("--out", f->out,
                  "Folder for the images a segmentation (label maps, overlays) or style model "
                  "writes, named after each input");
  cmd->add_option("--format", f->format,
                  "Format of the images written to --out: png (default), jpg");
  cmd->add_option("--cache-dir", f->cache_dir,
                  "Remote --input: cache folder (default $XDG_CACHE_HOME/gpulab/remote or "
                  "~/.cache/gpulab/remote)");
  cmd->add_option("--top-k", f->top_k, "Classifiers: labels per image (default 1)");
  cmd->add_flag("--scores", f->scores,
                "Segmentation: also write each image's softmax class scores, [classes, H, W] "
                "float32, to --out as STEM_scores.safetensors (tensor \"scores\")");
  cmd->add_option("--batch-size", f->batch_size,
                  "Images decoded and run together, the most held in memory (default 32)");
  cmd->add_option("--json", f->json, "Also write predictions as JSON to FILE");
  cmd->add_option("--env", f->env, "auto | cpu | gpu (default auto)");
  cmd->add_flag("--skip-bad-files", f->skip_bad_files,
                "Skip undecodable images of a folder (named) instead of failing");
  cmd->add_option("--max-pixels", f->max_pixels,
                  "Refuse images with more pixels (default 178956970, as PIL)");
  f->input_flags.add_to(*cmd);
  return [f]() { return run_predict(*f); };
}

}  // namespace gpulab::app
