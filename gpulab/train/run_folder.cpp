// RUN_DIR's own copies of what a run started from, and the resume checks.
#include "gpulab/train/run_folder.h"

#include <filesystem>

#include "gpulab/core/atomic_file.h"
#include "gpulab/core/config_file.h"
#include "gpulab/core/error.h"
#include "gpulab/models/model_file.h"

namespace gpulab::train {
namespace fs = std::filesystem;
namespace {

std::string quoted_list(const std::vector<std::string>& items) {
  if (items.empty()) return "none";
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "'" : ", '") + item + "'";
  return out;
}

std::string as_flags(const TrainOptions& o) {
  std::string out;
  for (const auto& p : o.freeze()) out += " `freeze` '" + p + "'";
  for (const auto& r : o.learn_rate_factors()) out += " `learn_rate_factors` '" + r + "'";
  return out.empty() ? " no `freeze` or `learn_rate_factors`" : out;
}

}  // namespace

void prepare_run_dir(const std::string& run_dir, bool resume) {
  if (resume) {
    GPULAB_CHECK(fs::is_directory(run_dir), ErrorKind::kNotFound,
                 "`resume`: run folder '{}' does not exist", run_dir);
    return;
  }
  if (fs::exists(run_dir)) {
    GPULAB_CHECK(fs::is_directory(run_dir) && fs::is_empty(run_dir), ErrorKind::kInvalidArgument,
                 "run folder '{}' already exists; continue it with `resume`, or choose "
                 "another `out` (gpulab never overwrites a run)",
                 run_dir);
  }
  core::ensure_writable_dir(run_dir);
}

void write_spec_file(const std::string& run_dir, const nlohmann::json& spec) {
  core::write_file_atomic((fs::path(run_dir) / "spec.yaml").string(), core::json_to_yaml(spec));
}

bool has_checkpoint(const std::string& run_dir) {
  return fs::exists(fs::path(run_dir) / "checkpoints" / "latest.json");
}

void check_resume_rules(const std::string& run_dir, const TrainOptions& options) {
  const std::string spec_path = (fs::path(run_dir) / "spec.yaml").string();
  if (!has_checkpoint(run_dir) || !fs::exists(spec_path)) return;
  const nlohmann::json saved = core::load_yaml_file(spec_path);
  TrainOptions before;
  if (saved.contains("options")) before.apply_json(saved["options"], spec_path);
  if (before.freeze() == options.freeze() &&
      before.learn_rate_factors() == options.learn_rate_factors()) {
    return;
  }
  GPULAB_FAIL(ErrorKind::kInvalidArgument,
              "`freeze`/`learn_rate_factors` changed since the checkpoint in '{}' (it was written "
              "with freeze {} and learn-rate factors {}; now freeze {} and learn-rate factors "
              "{}); resume with the original rules:{}, or start a new run with `weights` {}",
              run_dir, quoted_list(before.freeze()), quoted_list(before.learn_rate_factors()),
              quoted_list(options.freeze()), quoted_list(options.learn_rate_factors()),
              as_flags(before), (fs::path(run_dir) / "model.safetensors").string());
}

std::string keep_archive_in_run(const std::string& archive, const std::string& run_dir) {
  core::write_file_atomic((fs::path(run_dir) / kRunArchive).string(), core::read_file(archive));
  return kRunArchive;
}

nlohmann::json run_model_options(const nlohmann::json& spec, const std::string& run_dir) {
  return models::with_absolute_archive(spec.value("model", std::string()),
                                       spec.value("model_options", nlohmann::json::object()),
                                       run_dir);
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

}  // namespace gpulab::train
