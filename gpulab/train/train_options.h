// TrainOptions: everything that controls a training run, a superset of
// MATLAB's trainingOptions. Defaults follow MATLAB where it has one.
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "gpulab/core/options.h"

namespace gpulab::train {

struct TrainOptions {
  // Solver: "sgdm" (SGD with momentum), "adam" or "rmsprop".
  GPULAB_ARG(std::string, solver) = "sgdm";
  GPULAB_ARG(double, learn_rate) = 0.01;         // initial (base) learn rate
  GPULAB_ARG(double, momentum) = 0.9;            // sgdm
  GPULAB_ARG(double, beta1) = 0.9;               // adam GradientDecayFactor
  GPULAB_ARG(double, beta2) = 0.999;             // adam SquaredGradientDecayFactor
  GPULAB_ARG(double, rmsprop_decay) = 0.9;       // rmsprop SquaredGradientDecayFactor
  GPULAB_ARG(double, epsilon) = 1e-8;            // adam / rmsprop denominator offset
  GPULAB_ARG(double, l2_regularization) = 1e-4;  // weight decay on every parameter

  // Learn-rate schedule: "none", "piecewise" (multiply by drop_factor every
  // drop_period epochs) or "cosine" (to 0 at the last epoch). An optional
  // linear warm-up from 0 over warmup_epochs precedes either.
  GPULAB_ARG(std::string, lr_schedule) = "none";
  GPULAB_ARG(double, lr_drop_factor) = 0.1;
  GPULAB_ARG(int64_t, lr_drop_period) = 10;  // epochs
  GPULAB_ARG(double, warmup_epochs) = 0.0;

  GPULAB_ARG(int64_t, batch_size) = 128;  // images per mini-batch
  GPULAB_ARG(int64_t, max_epochs) = 30;
  // "once" (one shuffle before training), "never", "every-epoch".
  GPULAB_ARG(std::string, shuffle) = "once";

  // Gradient clipping: threshold (inf = off) and "l2norm" (per parameter),
  // "global-l2norm" (all parameters together) or "absolute-value" (per element).
  GPULAB_ARG(double, gradient_threshold) = std::numeric_limits<double>::infinity();
  GPULAB_ARG(std::string, gradient_threshold_method) = "l2norm";

  // Validation: a fraction of the training data held out per label when no
  // validation data is given (0 = none), how often (iterations) and the early
  // stop patience (validations without an improvement of the objective
  // metric; 0 = never stop early).
  GPULAB_ARG(double, val_split) = 0.0;
  GPULAB_ARG(int64_t, validation_frequency) = 50;
  GPULAB_ARG(int64_t, validation_patience) = 0;
  // "last" or "best-validation" (the best validation value of the
  // objective metric).
  GPULAB_ARG(std::string, output_network) = "last";
  // The validation metric that patience and best-validation follow (MATLAB's
  // ObjectiveMetricName): "" = the task's default (loss for classification,
  // mean_iou for segmentation); loss-like metrics are minimised, the others
  // maximised.
  GPULAB_ARG(std::string, objective_metric) = "";

  // Checkpoints every `checkpoint_frequency` units of "epoch" or "iteration".
  GPULAB_ARG(int64_t, checkpoint_frequency) = 1;
  GPULAB_ARG(std::string, checkpoint_frequency_unit) = "epoch";
  GPULAB_ARG(int, checkpoints_kept) = 2;

  // Progress table: print every verbose_frequency iterations (and at epoch ends).
  GPULAB_ARG(bool, verbose) = true;
  GPULAB_ARG(int64_t, verbose_frequency) = 50;

  GPULAB_ARG(uint64_t, seed) = 0;
  // "auto" (GPU when present, else CPU), "cpu", "gpu", "multi-gpu", "parallel".
  GPULAB_ARG(std::string, execution_environment) = "auto";
  GPULAB_ARG(int, threads) = 0;  // CPU threads; 0 = every core

  // GPU speed-ups, used only on CUDA devices: "auto" = on.
  GPULAB_ARG(bool, channels_last) = true;
  GPULAB_ARG(std::string, precision) = "auto";  // "auto"|"bf16"|"fp32"
  GPULAB_ARG(bool, cuda_graphs) = true;
  // cuDNN times its algorithms for each new input shape and keeps the
  // fastest (PyTorch's torch.backends.cudnn.benchmark, off there by default).
  GPULAB_ARG(bool, cudnn_benchmark) = true;

  // Transfer learning: "PATTERN=F" learn-rate factors over parameter names
  // (glob; the last matching rule wins; F = 0 freezes), and patterns frozen
  // outright (same as PATTERN=0), e.g. {"fc.*=20"} and {"conv1.*", "layer1.*"}.
  GPULAB_ARG(std::vector<std::string>, learn_rate_factors) = {};
  GPULAB_ARG(std::vector<std::string>, freeze) = {};

  // Data-parallel training (execution environments multi-gpu and parallel).
  // batch_size is the global mini-batch, split evenly over the ranks. With
  // scale_with_workers, batch size and learn rate are multiplied by the
  // number of ranks first.
  GPULAB_ARG(bool, scale_with_workers) = false;
  // Batch-norm statistics of the global mini-batch (one all-reduce per
  // batch-norm layer in forward and in backward) instead of each rank's slice.
  GPULAB_ARG(bool, sync_batchnorm) = false;
  // "auto" (NCCL between GPUs, Gloo between CPUs), "gloo" or "nccl".
  GPULAB_ARG(std::string, dist_backend) = "auto";
  // Seconds a rank waits for a lost or hung peer before failing.
  GPULAB_ARG(double, dist_timeout) = 60;
  // Gradient buckets (MiB): all-reduces start as each bucket fills.
  GPULAB_ARG(double, bucket_cap_mb) = 25;
  GPULAB_ARG(double, first_bucket_cap_mb) = 1;

 public:
  // Throws Error(kInvalidArgument) naming the option, the value and the valid ones.
  void validate() const;

  nlohmann::json to_json() const;
  // Applies the keys of `j` (names as in to_json, '-' or '_'); an unknown key
  // throws Error(kInvalidArgument) naming `source` and listing the valid keys.
  void apply_json(const nlohmann::json& j, const std::string& source);
};

}  // namespace gpulab::train
