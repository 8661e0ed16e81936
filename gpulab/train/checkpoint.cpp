// Checkpoint files and pruning.
#include "gpulab/train/checkpoint.h"

#include <torch/torch.h>

#include <filesystem>
#include <sstream>

#include "gpulab/core/atomic_file.h"
#include "gpulab/core/error.h"
#include "gpulab/models/safetensors.h"

namespace gpulab::train {
namespace fs = std::filesystem;
namespace {

constexpr int kCheckpointFormatVersion = 1;
constexpr const char* kLatest = "latest.json";

double json_double(const nlohmann::json& j, const char* key, double fallback) {
  if (!j.contains(key) || j.at(key).is_null()) return fallback;
  return j.at(key).get<double>();
}

}  // namespace

nlohmann::json TrainerState::to_json() const {
  return {{"epoch", epoch},
          {"batch_in_epoch", batch_in_epoch},
          {"iteration", iteration},
          {"wall_seconds", wall_seconds},
          {"train_seconds", train_seconds},
          {"images_seen", images_seen},
          // JSON has no NaN: null means "none yet".
          {"best_objective",
           std::isfinite(best_objective) ? nlohmann::json(best_objective) : nlohmann::json()},
          {"best_validation", best_validation},
          {"best_iteration", best_iteration},
          {"validations_without_improvement", validations_without_improvement},
          {"history_lines", history_lines},
          {"batch_size", batch_size}};
}

TrainerState TrainerState::from_json(const nlohmann::json& j) {
  TrainerState s;
  s.epoch = j.at("epoch").get<int64_t>();
  s.batch_in_epoch = j.at("batch_in_epoch").get<int64_t>();
  s.iteration = j.at("iteration").get<int64_t>();
  s.wall_seconds = j.at("wall_seconds").get<double>();
  s.train_seconds = j.at("train_seconds").get<double>();
  s.images_seen = j.at("images_seen").get<int64_t>();
  // Checkpoints before the task-generic core tracked the validation loss.
  s.best_objective =
      json_double(j, j.contains("best_objective") ? "best_objective" : "best_validation_loss",
                  std::numeric_limits<double>::quiet_NaN());
  s.best_validation = j.value("best_validation", nlohmann::json::object());
  s.best_iteration = j.at("best_iteration").get<int64_t>();
  s.validations_without_improvement = j.at("validations_without_improvement").get<int64_t>();
  s.history_lines = j.at("history_lines").get<int64_t>();
  s.batch_size = j.value("batch_size", int64_t{0});
  return s;
}

void rebase_to_batch_size(TrainerState& state, int64_t batch_size) {
  const int64_t old_size = state.batch_size;
  state.batch_size = batch_size;
  if (state.batch_in_epoch == 0 || old_size == 0 || old_size == batch_size) return;
  // Only an epoch's last mini-batch is partial, and it ends the epoch.
  const int64_t images = state.batch_in_epoch * old_size;
  GPULAB_CHECK(images % batch_size == 0, ErrorKind::kInvalidArgument,
               "the checkpoint stopped {} images into epoch {} with a global mini-batch of {}; "
               "a mini-batch of {} does not divide that, so the resumed epoch would skip or "
               "repeat images. Resume with a global mini-batch of {} (the same `batch_size`, and "
               "the same world size under `scale_with_workers`)",
               images, state.epoch, old_size, batch_size, old_size);
  state.batch_in_epoch = images / batch_size;
}

CheckpointStore::CheckpointStore(std::string dir, int keep, bool writer)
    : dir_(std::move(dir)), keep_(keep) {
  if (writer) core::ensure_writable_dir(dir_);
}

std::string CheckpointStore::save(const models::Network& network,
                                  const torch::optim::Optimizer& optimizer,
                                  const TrainerState& state) {
  const std::string stem = fmt::format("ckpt-{:09d}", state.iteration);
  const std::string weights = (fs::path(dir_) / (stem + ".safetensors")).string();
  const std::string extra = (fs::path(dir_) / (stem + ".state.pt")).string();

  models::SafetensorsContent content;
  content.tensors = models::state_dict(network);
  models::save_safetensors(weights, content);

  torch::serialize::OutputArchive archive, optimizer_archive;
  optimizer.save(optimizer_archive);
  archive.write("optimizer", optimizer_archive);
  archive.write("rng_cpu", at::detail::getDefaultCPUGenerator().get_state());
  std::ostringstream bytes;
  archive.save_to(bytes);
  core::write_file_atomic(extra, bytes.str());

  nlohmann::json latest = {{"format_version", kCheckpointFormatVersion},
                           {"weights", fs::path(weights).filename().string()},
                           {"state", fs::path(extra).filename().string()},
                           {"trainer", state.to_json()}};
  core::write_file_atomic((fs::path(dir_) / kLatest).string(), latest.dump(2));

  // Prune the oldest checkpoints beyond `keep_`.
  std::vector<fs::path> stems;
  for (const auto& entry : fs::directory_iterator(dir_)) {
    const auto name = entry.path().filename().string();
    if (name.rfind("ckpt-", 0) == 0 && entry.path().extension() == ".safetensors")
      stems.push_back(entry.path());
  }
  std::sort(stems.begin(), stems.end());
  for (size_t i = 0; i + static_cast<size_t>(keep_) < stems.size(); ++i) {
    std::error_code ec;
    fs::remove(stems[i], ec);
    fs::path state_file = stems[i];
    state_file.replace_extension(".state.pt");
    fs::remove(state_file, ec);
  }
  return weights;
}

bool CheckpointStore::has_latest() const {
  return fs::exists(fs::path(dir_) / kLatest);
}

std::string CheckpointStore::latest_weights() const {
  if (!has_latest()) return "";
  auto latest = nlohmann::json::parse(core::read_file((fs::path(dir_) / kLatest).string()));
  return (fs::path(dir_) / latest.at("weights").get<std::string>()).string();
}

TrainerState CheckpointStore::load_latest(models::Network& network,
                                          torch::optim::Optimizer& optimizer) const {
  const std::string latest_path = (fs::path(dir_) / kLatest).string();
  GPULAB_CHECK(has_latest(), ErrorKind::kNotFound,
               "`resume`: no checkpoint in '{}' (the run stopped before its first "
               "checkpoint); start it again without `resume` into a new folder",
               dir_);
  nlohmann::json latest;
  try {
    latest = nlohmann::json::parse(core::read_file(latest_path));
  } catch (const nlohmann::json::exception& e) {
    GPULAB_FAIL(ErrorKind::kCorruptData, "checkpoint index '{}' is not valid JSON ({})",
                latest_path, e.what());
  }
  GPULAB_CHECK(latest.value("format_version", 0) <= kCheckpointFormatVersion,
               ErrorKind::kCorruptData, "checkpoint '{}' was written by a newer gpulab",
               latest_path);
  const std::string weights = (fs::path(dir_) / latest.at("weights").get<std::string>()).string();
  const std::string extra = (fs::path(dir_) / latest.at("state").get<std::string>()).string();
  models::load_state_dict(network, models::load_safetensors(weights).tensors, weights);

  torch::serialize::InputArchive archive, optimizer_archive;
  try {
    std::istringstream bytes(core::read_file(extra));
    archive.load_from(bytes);
    archive.read("optimizer", optimizer_archive);
    optimizer.load(optimizer_archive);
    at::Tensor rng;
    archive.read("rng_cpu", rng);
    at::Generator generator = at::detail::getDefaultCPUGenerator();
    generator.set_state(rng);
  } catch (const c10::Error& e) {
    GPULAB_FAIL(ErrorKind::kCorruptData, "checkpoint state '{}' is damaged: {}", extra,
                e.what_without_backtrace());
  }
  return TrainerState::from_json(latest.at("trainer"));
}

}  // namespace gpulab::train
