// TrainOptions validation and JSON round trip (config files, spec.yaml).
#include "gpulab/train/train_options.h"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "gpulab/core/error.h"
#include "gpulab/core/text.h"
#include "gpulab/train/parameter_groups.h"

namespace gpulab::train {
namespace {

void check_one_of(const std::string& option, const std::string& value,
                  const std::vector<std::string>& valid) {
  GPULAB_CHECK(std::find(valid.begin(), valid.end(), value) != valid.end(),
               ErrorKind::kInvalidArgument, "unknown {} '{}'; valid: {}", option, value,
               fmt::join(valid, ", "));
}

template <typename T>
void check_positive(const std::string& option, T value) {
  GPULAB_CHECK(value > 0, ErrorKind::kInvalidArgument, "{} must be positive, got {}", option,
               value);
}

// Visits every option as (name, reference) so to_json and apply_json agree.
template <typename Options, typename Visitor>
void for_each_option(Options& o, Visitor&& v) {
  v("solver", o.solver());
  v("learn_rate", o.learn_rate());
  v("momentum", o.momentum());
  v("beta1", o.beta1());
  v("beta2", o.beta2());
  v("rmsprop_decay", o.rmsprop_decay());
  v("epsilon", o.epsilon());
  v("l2_regularization", o.l2_regularization());
  v("lr_schedule", o.lr_schedule());
  v("lr_drop_factor", o.lr_drop_factor());
  v("lr_drop_period", o.lr_drop_period());
  v("warmup_epochs", o.warmup_epochs());
  v("batch_size", o.batch_size());
  v("max_epochs", o.max_epochs());
  v("shuffle", o.shuffle());
  v("gradient_threshold", o.gradient_threshold());
  v("gradient_threshold_method", o.gradient_threshold_method());
  v("val_split", o.val_split());
  v("validation_frequency", o.validation_frequency());
  v("validation_patience", o.validation_patience());
  v("output_network", o.output_network());
  v("objective_metric", o.objective_metric());
  v("checkpoint_frequency", o.checkpoint_frequency());
  v("checkpoint_frequency_unit", o.checkpoint_frequency_unit());
  v("checkpoints_kept", o.checkpoints_kept());
  v("verbose", o.verbose());
  v("verbose_frequency", o.verbose_frequency());
  v("seed", o.seed());
  v("execution_environment", o.execution_environment());
  v("threads", o.threads());
  v("channels_last", o.channels_last());
  v("precision", o.precision());
  v("cuda_graphs", o.cuda_graphs());
  v("cudnn_benchmark", o.cudnn_benchmark());
  v("learn_rate_factors", o.learn_rate_factors());
  v("freeze", o.freeze());
  v("scale_with_workers", o.scale_with_workers());
  v("sync_batchnorm", o.sync_batchnorm());
  v("dist_backend", o.dist_backend());
  v("dist_timeout", o.dist_timeout());
  v("bucket_cap_mb", o.bucket_cap_mb());
  v("first_bucket_cap_mb", o.first_bucket_cap_mb());
}

template <typename T>
void assign(T& target, const nlohmann::json& value, const std::string& key,
            const std::string& source) {
  try {
    if constexpr (std::is_same_v<T, double>) {
      // YAML/JSON have no infinity literal; accept the strings "inf"/"Inf".
      if (value.is_string()) {
        const std::string s = core::to_lower(value.get<std::string>());
        GPULAB_CHECK(s == "inf" || s == "infinity", ErrorKind::kInvalidArgument,
                     "{}: option '{}' must be a number, got '{}'", source, key, s);
        target = std::numeric_limits<double>::infinity();
        return;
      }
    }
    target = value.get<T>();
  } catch (const nlohmann::json::exception&) {
    GPULAB_FAIL(ErrorKind::kInvalidArgument, "{}: option '{}' has the wrong type: {}", source, key,
                value.dump());
  }
}

}  // namespace

void TrainOptions::validate() const {
  check_one_of("solver", solver(), {"sgdm", "adam", "rmsprop"});
  check_one_of("learn-rate schedule", lr_schedule(), {"none", "piecewise", "poly", "cosine"});
  check_one_of("shuffle mode", shuffle(), {"once", "never", "every-epoch"});
  check_one_of("gradient threshold method", gradient_threshold_method(),
               {"l2norm", "global-l2norm", "absolute-value"});
  check_one_of("output network", output_network(), {"last", "best-validation"});
  check_one_of("checkpoint frequency unit", checkpoint_frequency_unit(), {"epoch", "iteration"});
  check_one_of("execution environment", execution_environment(),
               {"auto", "cpu", "gpu", "multi-gpu", "parallel"});
  check_one_of("precision", precision(), {"auto", "bf16", "fp32"});
  check_one_of("distributed backend", dist_backend(), {"auto", "gloo", "nccl"});
  check_positive("distributed timeout", dist_timeout());
  check_positive("bucket cap", bucket_cap_mb());
  check_positive("first bucket cap", first_bucket_cap_mb());
  check_positive("batch size", batch_size());
  check_positive("epochs", max_epochs());
  check_positive("learn rate", learn_rate());
  check_positive("validation frequency", validation_frequency());
  check_positive("verbose frequency", verbose_frequency());
  check_positive("checkpoint frequency", checkpoint_frequency());
  check_positive("lr drop period", lr_drop_period());
  check_positive("gradient threshold", gradient_threshold());
  GPULAB_CHECK(val_split() >= 0 && val_split() < 1, ErrorKind::kInvalidArgument,
               "validation split must be in [0, 1), got {}", val_split());
  GPULAB_CHECK(validation_patience() >= 0, ErrorKind::kInvalidArgument,
               "validation patience must be >= 0 (0 = off), got {}", validation_patience());
  GPULAB_CHECK(l2_regularization() >= 0, ErrorKind::kInvalidArgument,
               "L2 regularization must be >= 0, got {}", l2_regularization());
  GPULAB_CHECK(warmup_epochs() >= 0, ErrorKind::kInvalidArgument,
               "warm-up epochs must be >= 0, got {}", warmup_epochs());
  for (const auto& rule : learn_rate_factors()) parse_learn_rate_factor(rule);
  GPULAB_CHECK(checkpoints_kept() >= 1, ErrorKind::kInvalidArgument,
               "checkpoints kept must be >= 1, got {}", checkpoints_kept());
}

nlohmann::json TrainOptions::to_json() const {
  nlohmann::json j = nlohmann::json::object();
  for_each_option(*this, [&](const char* name, const auto& value) {
    using T = std::decay_t<decltype(value)>;
    if constexpr (std::is_same_v<T, double>) {
      if (std::isinf(value)) {
        j[name] = "inf";
        return;
      }
    }
    j[name] = value;
  });
  return j;
}

void TrainOptions::apply_json(const nlohmann::json& j, const std::string& source) {
  GPULAB_CHECK(j.is_object(), ErrorKind::kInvalidArgument, "{}: training options must be a mapping",
               source);
  for (auto it = j.begin(); it != j.end(); ++it) {
    std::string key = it.key();
    std::replace(key.begin(), key.end(), '-', '_');
    bool found = false;
    std::vector<std::string> names;
    for_each_option(*this, [&](const char* name, auto& target) {
      names.push_back(name);
      if (key == name) {
        assign(target, it.value(), it.key(), source);
        found = true;
      }
    });
    GPULAB_CHECK(found, ErrorKind::kInvalidArgument, "{}: unknown option '{}'; valid: {}", source,
                 it.key(), fmt::join(names, ", "));
  }
}

}  // namespace gpulab::train
