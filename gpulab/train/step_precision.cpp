// Precision and layout choices per device.
#include "gpulab/train/step_precision.h"

#include <torch/torch.h>

#include "gpulab/core/compat.h"

namespace gpulab::train {

AutocastGuard::AutocastGuard(bool enabled) : enabled_(enabled) {
  if (enabled_) compat::set_cuda_autocast(true, at::kBFloat16);
}

AutocastGuard::~AutocastGuard() {
  if (enabled_) compat::set_cuda_autocast(false, at::kBFloat16);
}

StepPrecision::StepPrecision(const c10::Device& device, const TrainOptions& options) {
  if (!device.is_cuda()) return;  // CPU: fp32 NCHW is fastest with oneDNN here
  channels_last_ = options.channels_last();
  bf16_ = options.precision() != "fp32";
}

void StepPrecision::prepare_model(models::Network& model) const {
  if (!channels_last_) return;
  torch::NoGradGuard no_grad;
  for (auto& p : model.parameters()) {
    if (p.dim() == 4) p.set_data(p.data().contiguous(at::MemoryFormat::ChannelsLast));
  }
}

at::Tensor StepPrecision::prepare(const at::Tensor& input) const {
  return channels_last_ && input.dim() == 4 ? input.contiguous(at::MemoryFormat::ChannelsLast)
                                            : input;
}

std::string StepPrecision::describe() const {
  std::string s;
  if (bf16_) s += ", bf16 autocast";
  if (channels_last_) s += ", channels-last";
  return s;
}

}  // namespace gpulab::train
