// Start-up checks of data-parallel runs.
#include "gpulab/train/run_checks.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "gpulab/models/network.h"

namespace gpulab::train {

// Names and shapes of every parameter and buffer, hashed (FNV-1a, the same in
// every build): ranks whose networks differ in width or depth differ here.
std::string layout_fingerprint(const models::Network& model) {
  uint64_t hash = 1469598103934665603ull;
  int64_t values = 0;
  const auto tensors = models::state_dict(model);
  for (const auto& [name, t] : tensors) {
    for (const char c : fmt::format("{}{};", name, t.sizes())) {
      hash = (hash ^ static_cast<unsigned char>(c)) * 1099511628211ull;
    }
    values += t.numel();
  }
  return fmt::format("{} tensors, {} values, layout {:016x}", tensors.size(), values, hash);
}

void check_same_configuration(distributed::Communicator& comm, const models::ModelConfig& config,
                              const models::Network& model, const TrainOptions& o,
                              const RunShape& shape) {
  comm.check_same_on_all_ranks("model", config.to_json().dump() + ", " + layout_fingerprint(model));
  comm.check_same_on_all_ranks(
      "data and schedule",
      fmt::format("{} training images in {} classes, batch {}, {} epochs, shuffle {}, seed {}, "
                  "world size {}, sync batch-norm {}",
                  shape.train_images, shape.labels, o.batch_size(), o.max_epochs(), o.shuffle(),
                  o.seed(), comm.world().size, o.sync_batchnorm()));
  comm.check_same_on_all_ranks(
      "optimizer",
      fmt::format("{} learn rate {:g} ({} schedule, drop {:g} every {}, warm-up {:g}), momentum "
                  "{:g}, betas {:g}/{:g}, decay {:g}, epsilon {:g}, L2 {:g}, gradient threshold "
                  "{:g} ({}), factors [{}], frozen [{}]",
                  o.solver(), o.learn_rate(), o.lr_schedule(), o.lr_drop_factor(),
                  o.lr_drop_period(), o.warmup_epochs(), o.momentum(), o.beta1(), o.beta2(),
                  o.rmsprop_decay(), o.epsilon(), o.l2_regularization(), o.gradient_threshold(),
                  o.gradient_threshold_method(), fmt::join(o.learn_rate_factors(), ", "),
                  fmt::join(o.freeze(), ", ")));
  // What decides when and how the collectives run: ranks that differ here
  // meet in mismatched collectives (a Gloo abort, an NCCL hang), not in a
  // wrong result, so they are refused by name.
  comm.check_same_on_all_ranks(
      "collectives",
      fmt::format(
          "log every {} iterations (`verbose_frequency`), {} validation images every {} "
          "iterations (`validation_frequency`, patience {}, objective {}), checkpoint every {} {} "
          "(`checkpoint_frequency`), skipped bad files {} (`skip_bad_files`), gradient "
          "buckets {:g}/{:g} MiB (`bucket_cap_mb`/`first_bucket_cap_mb`), precision {}",
          o.verbose_frequency(), shape.validation_images, o.validation_frequency(),
          o.validation_patience(), o.objective_metric(), o.checkpoint_frequency(),
          o.checkpoint_frequency_unit(), shape.may_drop_samples ? "synchronised" : "refused",
          o.bucket_cap_mb(), o.first_bucket_cap_mb(), o.precision()));
}

}  // namespace gpulab::train
