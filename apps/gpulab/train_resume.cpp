// RUN_DIR's own copies of what a run started from, and the resume checks.
#include "apps/gpulab/train_resume.h"

#include <filesystem>

#include "gpulab/core/atomic_file.h"
#include "gpulab/core/config_file.h"
#include "gpulab/core/error.h"

namespace gpulab::app {
namespace fs = std::filesystem;
namespace {

std::string quoted_list(const std::vector<std::string>& items) {
  if (items.empty()) return "none";
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "'" : ", '") + item + "'";
  return out;
}

std::string as_flags(const train::TrainOptions& o) {
  std::string out;
  for (const auto& p : o.freeze()) out += " --freeze '" + p + "'";
  for (const auto& r : o.learn_rate_factors()) out += " --learn-rate-factor '" + r + "'";
  return out.empty() ? " no --freeze or --learn-rate-factor" : out;
}

}  // namespace

bool has_checkpoint(const std::string& run_dir) {
  return fs::exists(fs::path(run_dir) / "checkpoints" / "latest.json");
}

void check_resume_rules(const std::string& run_dir, const train::TrainOptions& options) {
  const std::string spec_path = (fs::path(run_dir) / "spec.yaml").string();
  if (!has_checkpoint(run_dir) || !fs::exists(spec_path)) return;
  const nlohmann::json saved = core::load_yaml_file(spec_path);
  train::TrainOptions before;
  if (saved.contains("options")) before.apply_json(saved["options"], spec_path);
  if (before.freeze() == options.freeze() &&
      before.learn_rate_factors() == options.learn_rate_factors()) {
    return;
  }
  GPULAB_FAIL(ErrorKind::kInvalidArgument,
              "--freeze/--learn-rate-factor changed since the checkpoint in '{}' (it was written "
              "with freeze {} and learn-rate factors {}; now freeze {} and learn-rate factors "
              "{}); resume with the original rules:{}, or start a new run with --weights {}",
              run_dir, quoted_list(before.freeze()), quoted_list(before.learn_rate_factors()),
              quoted_list(options.freeze()), quoted_list(options.learn_rate_factors()),
              as_flags(before), (fs::path(run_dir) / "model.safetensors").string());
}

std::string keep_archive_in_run(const std::string& archive, const std::string& run_dir) {
  core::write_file_atomic((fs::path(run_dir) / kRunArchive).string(), core::read_file(archive));
  return kRunArchive;
}

nlohmann::json run_model_options(const nlohmann::json& spec, const std::string& run_dir) {
  nlohmann::json options = spec.value("model_options", nlohmann::json::object());
  if (spec.value("model", std::string()) != "torchscript" || !options.contains("file"))
    return options;
  const fs::path file = options["file"].get<std::string>();
  if (file.is_relative()) options["file"] = fs::absolute(fs::path(run_dir) / file).string();
  return options;
}

nlohmann::json normalization_to_spec(const std::optional<data::Normalization>& norm) {
  if (!norm) return "from-data";
  return {{"mean", norm->mean}, {"std", norm->std}};
}

std::optional<data::Normalization> normalization_from_spec(const nlohmann::json& j) {
  if (!j.is_object()) return std::nullopt;
  return data::Normalization{j.at("mean").get<std::vector<double>>(),
                             j.at("std").get<std::vector<double>>()};
}

}  // namespace gpulab::app
