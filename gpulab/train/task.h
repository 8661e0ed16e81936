// The Task interface the trainer drives: a task owns what is specific to a
// problem (the network it builds, its loss, what counts as correct), the
// trainer owns the loop. Classification is the first task; segmentation and
// style transfer follow.
#pragma once

#include <memory>
#include <string>

#include <ATen/core/Tensor.h>
#include <nlohmann/json.hpp>

#include "gpulab/data/dataset.h"
#include "gpulab/models/network.h"

namespace gpulab::train {

class Task {
 public:
  virtual ~Task() = default;
  virtual std::string name() const = 0;

  // The model config for data shaped like `train` (classes, channels, size).
  virtual models::ModelConfig model_config(const data::Dataset& train) const = 0;

  // Scalar mean loss of the mini-batch. output: the network's output;
  // target: the batch's targets (class indices [B] int64 for classification).
  virtual at::Tensor loss(const at::Tensor& output, const at::Tensor& target) const = 0;

  // Number of correct predictions in the batch as a 0-dim tensor on the
  // output's device (no host sync), and how many predictions were made.
  virtual at::Tensor correct(const at::Tensor& output, const at::Tensor& target) const = 0;
  virtual int64_t predictions(const at::Tensor& target) const = 0;
};

}  // namespace gpulab::train
