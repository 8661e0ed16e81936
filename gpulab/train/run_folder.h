// RUN_DIR as a run keeps it: created once (never over another run), its
// spec.yaml, the TorchScript archive it trains, the normalisation its initial
// weights brought, and the parameter rules its checkpoints were written
// under, so a run stands on its own and resumes exactly.
#pragma once

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "gpulab/data/normalization.h"
#include "gpulab/train/train_options.h"

namespace gpulab::train {

// The archive of a `--model torchscript` run, inside RUN_DIR.
constexpr const char* kRunArchive = "network.pt";

// spec.yaml's format_version.
constexpr int kSpecFormatVersion = 1;

// A fresh run: RUN_DIR must not exist or be empty (gpulab never overwrites a
// run); a resumed one must exist. Creates it and checks it is writable.
// Throws Error(kInvalidArgument) or Error(kNotFound) naming it.
void prepare_run_dir(const std::string& run_dir, bool resume);

// Writes RUN_DIR/spec.yaml (atomically): `spec` with the format and gpulab
// versions, the command and the seed.
void write_spec_file(const std::string& run_dir, const nlohmann::json& spec);

// Whether RUN_DIR has a checkpoint to resume from.
bool has_checkpoint(const std::string& run_dir);

// --resume with a checkpoint: the --freeze and --learn-rate-factor rules must
// be those of RUN_DIR/spec.yaml (the checkpoint's optimizer has one state per
// parameter group). Throws Error(kInvalidArgument) naming both otherwise;
// call it before anything in RUN_DIR is written.
void check_resume_rules(const std::string& run_dir, const TrainOptions& options);

// Copies the TorchScript archive into RUN_DIR (atomically) and returns the
// path model_options.file records: relative to RUN_DIR.
std::string keep_archive_in_run(const std::string& archive, const std::string& run_dir);

// spec.model_options with a relative archive (model_options.file) made
// absolute against RUN_DIR, as the network is built from it.
nlohmann::json run_model_options(const nlohmann::json& spec, const std::string& run_dir);

// spec.yaml's record of the normalisation the initial weights brought:
// {mean, std}, or "from-data" when it is computed from the training data.
nlohmann::json normalization_to_spec(const std::optional<data::Normalization>& norm);
std::optional<data::Normalization> normalization_from_spec(const nlohmann::json& j);

}  // namespace gpulab::train
