// Start-up checks of a data-parallel run: ranks started with different
// settings would train different replicas or deadlock in a collective, so
// they are refused at once, naming what differs.
#pragma once

#include <cstdint>
#include <string>

#include "gpulab/distributed/communicator.h"
#include "gpulab/models/network.h"
#include "gpulab/train/train_options.h"

namespace gpulab::train {

// Names and shapes of every parameter and buffer, hashed (FNV-1a, the same in
// every build): ranks whose networks differ in width or depth differ here.
std::string layout_fingerprint(const models::Network& model);

// What the ranks must agree on besides the options: the data's size and
// labels and whether the source may drop samples.
struct RunShape {
  int64_t train_images = 0;
  int64_t labels = 0;
  int64_t validation_images = 0;
  bool may_drop_samples = false;
};

// Compares the model, the data and schedule, the optimizer and what decides
// when collectives run over the ranks (Communicator::check_same_on_all_ranks).
void check_same_configuration(distributed::Communicator& comm, const models::ModelConfig& config,
                              const models::Network& model, const TrainOptions& o,
                              const RunShape& shape);

}  // namespace gpulab::train
