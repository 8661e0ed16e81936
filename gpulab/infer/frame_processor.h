// The worker pool's processor for gpulab models: each worker loads its own
// replica of the model on its device and turns frames (decoded video frames
// or image files it decodes itself) into the network's raw outputs.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <c10/core/Device.h>

#include "gpulab/core/device.h"
#include "gpulab/core/options.h"
#include "gpulab/data/image_header.h"
#include "gpulab/infer/worker_pool.h"
#include "gpulab/models/pretrained.h"

namespace gpulab::infer {

struct ModelProcessorOptions {
  // What --model and --weights name (see load_model in predictor.h).
  GPULAB_ARG(std::string, model);
  GPULAB_ARG(std::string, weights);
  GPULAB_ARG(models::PretrainedOptions, input);
  // The device of each worker, by worker number (one replica each).
  GPULAB_ARG(std::vector<c10::Device>, devices);
  // LibTorch intra-op threads of each CPU worker (0 = leave LibTorch's
  // setting): workers on one CPU share its cores.
  GPULAB_ARG(int64_t, threads_per_worker) = 0;
  // Image files with more pixels are refused by their header.
  GPULAB_ARG(int64_t, max_pixels) = data::kDefaultMaxPixels;
  // Resize every frame to this size first (0 = the network's choice: its
  // training size when it takes only that, else each frame's own size).
  GPULAB_ARG(int64_t, height) = 0;
  GPULAB_ARG(int64_t, width) = 0;
  // An image file that cannot be decoded becomes that frame's error (left
  // out, reported) instead of failing its whole batch under the pool's
  // error policy.
  GPULAB_ARG(bool, skip_bad_files) = false;
};

// Sets `options`' input from the size flags a user gave (--channels,
// --image-size): with imported weights (`options.weights()` set) they are
// the network's input (options.input()); for a model file, the size frames
// are resized to (options.height()/width()). Set weights() first.
ModelProcessorOptions& set_input_size(ModelProcessorOptions& options,
                                      models::PretrainedOptions given);

// A factory for WorkerPool: worker w loads the model onto devices()[w].
// Frames with a decoded image batch with frames of the same size; image
// files (decoded by the worker) batch with other files, and run in groups
// of equal decoded size. Outputs equal a one-frame-at-a-time run's on the
// same device and thread count (batching aside: a batched convolution may
// round differently).
ProcessorFactory model_processors(const ModelProcessorOptions& options);

// Which device each worker uses. With GPUs (auto when one is present, gpu,
// multi-gpu, parallel): one worker per GPU of `gpus` (empty = every GPU),
// or `workers` of them round-robin over those GPUs. On the CPU: `workers`
// workers (0 = 1). Throws Error(kUnavailable) when a GPU is asked for and
// missing, Error(kInvalidArgument) for a GPU number past the last.
std::vector<c10::Device> worker_devices(core::ExecutionEnvironment env, int64_t workers,
                                        const std::vector<int>& gpus);

// LibTorch threads of each of `workers` CPU workers: `requested` when > 0,
// else the machine's cores shared among them (at least 1).
int64_t threads_per_worker(int64_t requested, int64_t workers);

}  // namespace gpulab::infer
