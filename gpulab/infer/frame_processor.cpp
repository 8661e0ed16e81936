// Predictor-backed frame processing: decode or prepare each frame, batch
// frames of equal size, one forward pass per group.
#include "gpulab/infer/frame_processor.h"

#include <torch/torch.h>

#include <algorithm>
#include <thread>
#include <utility>

#include "gpulab/core/error.h"
#include "gpulab/infer/predictor.h"
#ifdef GPULAB_WITH_OPENCV
#include "gpulab/data/image_decode.h"
#endif

namespace gpulab::infer {
namespace {

class ModelProcessor : public FrameProcessor {
 public:
  ModelProcessor(const ModelProcessorOptions& options, c10::Device device)
      : options_(options),
        predictor_(
            Predictor::from_path(options.model(), device, options.weights(), options.input())) {}

  bool batchable(const Frame& first, const Frame& next) const override {
    // Files are decoded in process(), then grouped by size there.
    if (!first.image.defined() && !next.image.defined()) return true;
    return FrameProcessor::batchable(first, next);
  }

  std::vector<FrameOutput> process(std::vector<Frame>& frames) override {
    std::vector<FrameOutput> outputs(frames.size());
    std::vector<size_t> group;  // consecutive decoded frames of one size
    for (size_t i = 0; i < frames.size(); ++i) {
      try {
        outputs[i].image = input_of(frames[i]);
      } catch (const Error& e) {
        if (!options_.skip_bad_files() || e.kind() != ErrorKind::kCorruptData) throw;
        outputs[i].error = e.what();
        continue;
      }
      if (!group.empty() && outputs[group.front()].image.sizes() != outputs[i].image.sizes()) {
        run_group(group, outputs);
      }
      group.push_back(i);
    }
    run_group(group, outputs);
    return outputs;
  }

 private:
  // The frame as the network's input, [C, H, W] uint8.
  at::Tensor input_of(const Frame& frame) const {
    const auto& metadata = predictor_.metadata();
    int64_t height = options_.height();
    int64_t width = options_.width();
    if (height == 0 && !metadata.fixed_input_size) {
      // Imported weights of a network that takes any size: the input size
      // given with them is the size frames are resized to.
      height = options_.input().height();
      width = options_.input().width();
    }
    if (!frame.image.defined()) {
      return predictor_.decode_file(frame.path, options_.max_pixels(), height, width);
    }
#ifdef GPULAB_WITH_OPENCV
    if (height == 0 && metadata.fixed_input_size) {
      height = metadata.config.height;
      width = metadata.config.width;
    }
    return data::prepare_decoded_image(frame.image, static_cast<int>(metadata.config.in_channels),
                                       static_cast<int>(height), static_cast<int>(width));
#else
    GPULAB_FAIL(ErrorKind::kUnavailable, "preparing frame '{}' needs the OpenCV build", frame.name);
#endif
  }

  void run_group(std::vector<size_t>& group, std::vector<FrameOutput>& outputs) const {
    if (group.empty()) return;
    std::vector<at::Tensor> images;
    for (size_t i : group) images.push_back(outputs[i].image);
    const at::Tensor output =
        predictor_.forward(torch::stack(images), static_cast<int64_t>(images.size()));
    for (size_t k = 0; k < group.size(); ++k) {
      outputs[group[k]].output = output[static_cast<int64_t>(k)];
    }
    group.clear();
  }

  ModelProcessorOptions options_;
  Predictor predictor_;
};

}  // namespace

ModelProcessorOptions& set_input_size(ModelProcessorOptions& options,
                                      models::PretrainedOptions given) {
  if (options.weights().empty() && given.height() > 0) {
    options.height(given.height()).width(given.width());
    given.height(0).width(0);
  }
  return options.input(given);
}

ProcessorFactory model_processors(const ModelProcessorOptions& options) {
  GPULAB_CHECK(!options.devices().empty(), ErrorKind::kInvalidArgument,
               "the pool needs at least one worker device");
  return [options](int worker) -> std::unique_ptr<FrameProcessor> {
    if (options.threads_per_worker() > 0) {
      // Per thread under OpenMP: this worker's forward passes use this many.
      at::get_num_threads();  // LibTorch sets a new thread's count on first use
      at::set_num_threads(static_cast<int>(options.threads_per_worker()));
    }
    const c10::Device device = options.devices().at(static_cast<size_t>(worker));
    return std::make_unique<ModelProcessor>(options, device);
  };
}

std::vector<c10::Device> worker_devices(core::ExecutionEnvironment env, int64_t workers,
                                        const std::vector<int>& gpus) {
  GPULAB_CHECK(workers >= 0, ErrorKind::kInvalidArgument, "`workers` must be >= 0, got {}",
               workers);
  const int present = core::cuda_device_count();
  const bool use_gpus = env != core::ExecutionEnvironment::kCpu &&
                        (present > 0 || env != core::ExecutionEnvironment::kAuto);
  std::vector<c10::Device> devices;
  if (!use_gpus) {
    GPULAB_CHECK(gpus.empty(), ErrorKind::kInvalidArgument,
                 "`devices` lists GPUs, but the stream runs on the CPU (`execution_environment` "
                 "{}{}): leave it out, or use `execution_environment` gpu",
                 core::to_string(env), present == 0 ? ", no GPU present" : "");
    for (int64_t w = 0; w < std::max<int64_t>(1, workers); ++w) devices.emplace_back(c10::kCPU);
    return devices;
  }
  GPULAB_CHECK(present > 0, ErrorKind::kUnavailable,
               "`execution_environment` {} needs a GPU, and LibTorch sees none on this machine: "
               "use `execution_environment` cpu",
               core::to_string(env));
  std::vector<int> ids = gpus;
  if (ids.empty()) {
    for (int g = 0; g < present; ++g) ids.push_back(g);
  }
  for (int id : ids) {
    GPULAB_CHECK(id >= 0 && id < present, ErrorKind::kInvalidArgument,
                 "`devices` names GPU {}, but this machine has GPUs 0 to {}", id, present - 1);
  }
  const int64_t n = workers > 0 ? workers : static_cast<int64_t>(ids.size());
  for (int64_t w = 0; w < n; ++w) {
    devices.emplace_back(c10::kCUDA, static_cast<c10::DeviceIndex>(ids[w % ids.size()]));
  }
  return devices;
}

int64_t threads_per_worker(int64_t requested, int64_t workers) {
  if (requested > 0) return requested;
  const int64_t cores = std::max(1u, std::thread::hardware_concurrency());
  return std::max<int64_t>(1, cores / std::max<int64_t>(1, workers));
}

}  // namespace gpulab::infer
