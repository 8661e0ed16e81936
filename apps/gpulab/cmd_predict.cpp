// gpulab predict: top-k labels and softmax scores for image files.
#include <torch/torch.h>
#include <CLI/CLI.hpp>

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "apps/gpulab/commands.h"
#include "apps/gpulab/data_flags.h"
#include "gpulab/core/atomic_file.h"
#include "gpulab/core/device.h"
#include "gpulab/core/error.h"
#include "gpulab/core/text_table.h"
#include "gpulab/infer/predictor.h"
#ifdef GPULAB_WITH_CURL
#include "gpulab/data/remote_datastore.h"
#endif

namespace gpulab::app {
namespace fs = std::filesystem;
namespace {

struct PredictFlags {
  std::string model, weights, input, json, env = "auto", cache_dir;
  int64_t top_k = 1;
  bool skip_bad_files = false;
  int64_t max_pixels = 0;  // 0 = data::kDefaultMaxPixels
  InputFlags input_flags;
};

// A single-file s3:// or http(s):// --input is fetched into the remote cache
// (credentials from AWS_*); returns the local file, or `input` itself.
std::string local_input(const PredictFlags& f) {
  std::string scheme = f.input.substr(0, f.input.find("://") + 3);
  std::transform(scheme.begin(), scheme.end(), scheme.begin(), ::tolower);
  if (scheme != "s3://" && scheme != "http://" && scheme != "https://") return f.input;
#ifdef GPULAB_WITH_CURL
  data::RemoteDataOptions options(f.cache_dir.empty() ? data::default_cache_dir_from_environment()
                                                      : f.cache_dir);
  options.s3(data::S3Options::from_environment());
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
  const std::vector<std::string> exts = {".png",  ".jpg", ".jpeg", ".bmp", ".tif",
                                         ".tiff", ".pgm", ".ppm",  ".webp"};
  std::vector<std::string> files;
  for (const auto& entry : fs::recursive_directory_iterator(input)) {
    if (!entry.is_regular_file()) continue;
    std::string ext = entry.path().extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(), ::tolower);
    if (std::find(exts.begin(), exts.end(), ext) != exts.end())
      files.push_back(entry.path().string());
  }
  std::sort(files.begin(), files.end());
  GPULAB_CHECK(!files.empty(), ErrorKind::kNotFound, "input folder '{}' holds no images", input);
  return files;
}

int run_predict(const PredictFlags& f) {
  core::configure_threads(0);
  GPULAB_CHECK(f.top_k >= 1, ErrorKind::kInvalidArgument, "--top-k must be >= 1, got {}", f.top_k);
  const c10::Device device = core::resolve_device(core::parse_execution_environment(f.env));
  infer::Predictor predictor =
      infer::Predictor::from_path(f.model, device, f.weights, f.input_flags.options());
  const std::string local = local_input(f);
  GPULAB_CHECK(f.max_pixels >= 0, ErrorKind::kInvalidArgument, "--max-pixels must be >= 0, got {}",
               f.max_pixels);
  infer::FileOptions options;
  options.skip_bad_files(f.skip_bad_files);
  if (f.max_pixels > 0) options.max_pixels(f.max_pixels);
  std::vector<std::string> skipped;
  auto predictions = predictor.predict_files(input_files(local), f.top_k, options, &skipped);
  for (const auto& file : skipped) std::printf("Skipped undecodable file '%s'\n", file.c_str());
#ifdef GPULAB_WITH_CURL
  // A fetched file is named by its URL, not its place in the cache.
  if (local != f.input) {
    for (auto& p : predictions) p.file = data::redact_url(f.input);
  }
#endif

  core::TextTable table({"File", "Label", "Score"});
  nlohmann::json out = nlohmann::json::array();
  for (const auto& p : predictions) {
    table.add_row({p.file, p.top[0].first, fmt::format("{:.4f}", p.top[0].second)});
    nlohmann::json top = nlohmann::json::array();
    for (const auto& [label, score] : p.top) top.push_back({{"label", label}, {"score", score}});
    out.push_back({{"file", p.file}, {"top", top}, {"scores", p.scores}});
  }
  std::printf("%s", table.render().c_str());
  if (!f.json.empty()) core::write_file_atomic(f.json, out.dump(2) + "\n");
  return 0;
}

}  // namespace

Action add_predict_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("predict", "Top-k labels and scores for images");
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
  cmd->add_option("--cache-dir", f->cache_dir,
                  "Remote --input: cache folder (default $XDG_CACHE_HOME/gpulab/remote or "
                  "~/.cache/gpulab/remote)");
  cmd->add_option("--top-k", f->top_k, "Labels per image (default 1)");
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
