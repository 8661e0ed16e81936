// ModelConfig (de)serialisation and state-dict transfer with checked names.
#include "gpulab/models/network.h"

#include <torch/torch.h>

#include "gpulab/core/error.h"

namespace gpulab::models {

nlohmann::json ModelConfig::to_json() const {
  return {{"arch", arch},
          {"num_classes", num_classes},
          {"in_channels", in_channels},
          {"height", height},
          {"width", width},
          {"options", options}};
}

ModelConfig ModelConfig::from_json(const nlohmann::json& j) {
  ModelConfig c;
  c.arch = j.at("arch").get<std::string>();
  c.num_classes = j.at("num_classes").get<int64_t>();
  c.in_channels = j.at("in_channels").get<int64_t>();
  c.height = j.at("height").get<int64_t>();
  c.width = j.at("width").get<int64_t>();
  c.options = j.value("options", nlohmann::json::object());
  return c;
}

std::map<std::string, torch::Tensor> state_dict(const torch::nn::Module& module) {
  std::map<std::string, torch::Tensor> out;
  for (const auto& p : module.named_parameters(/*recurse=*/true)) out[p.key()] = p.value();
  for (const auto& b : module.named_buffers(/*recurse=*/true)) out[b.key()] = b.value();
  return out;
}

namespace {

bool is_batch_counter(const std::string& name) {
  const std::string leaf = "num_batches_tracked";
  return name.size() >= leaf.size() &&
         name.compare(name.size() - leaf.size(), leaf.size(), leaf) == 0 &&
         (name.size() == leaf.size() || name[name.size() - leaf.size() - 1] == '.');
}

// Any float precision converts to another (F16/BF16/F64 files into float32
// parameters), as does any integer width (an I32 num_batches_tracked); an
// integer or boolean tensor in a float parameter is a file of something else.
bool dtype_fits(at::ScalarType file, at::ScalarType model) {
  if (c10::isFloatingType(model)) return c10::isFloatingType(file);
  if (model == at::kBool || file == at::kBool) return model == file;
  if (c10::isIntegralType(model, /*includeBool=*/false))
    return c10::isIntegralType(file, /*includeBool=*/false);
  return file == model;
}

}  // namespace

void load_state_dict(torch::nn::Module& module, const std::map<std::string, torch::Tensor>& tensors,
                     const std::string& source) {
  auto targets = state_dict(module);
  std::vector<std::string> missing, unexpected, wrong_shape, wrong_dtype;
  for (const auto& [name, target] : targets) {
    auto it = tensors.find(name);
    if (it == tensors.end()) {
      // Batch norm's counter came with PyTorch 0.4.1; older files (and
      // torchvision's first weights) lack it, and PyTorch loads them with 0.
      if (!is_batch_counter(name)) missing.push_back(name);
    } else if (it->second.sizes() != target.sizes()) {
      wrong_shape.push_back(fmt::format("{} (file {}, model {})", name,
                                        fmt::join(it->second.sizes(), "x"),
                                        fmt::join(target.sizes(), "x")));
    } else if (!dtype_fits(it->second.scalar_type(), target.scalar_type())) {
      wrong_dtype.push_back(fmt::format("{} (file {}, model {})", name,
                                        c10::toString(it->second.scalar_type()),
                                        c10::toString(target.scalar_type())));
    }
  }
  for (const auto& [name, tensor] : tensors) {
    if (!targets.count(name)) unexpected.push_back(name);
  }
  if (!missing.empty() || !unexpected.empty() || !wrong_shape.empty() || !wrong_dtype.empty()) {
    std::string msg = fmt::format("weights in '{}' do not fit the model:", source);
    if (!missing.empty()) msg += fmt::format(" missing [{}];", fmt::join(missing, ", "));
    if (!unexpected.empty()) msg += fmt::format(" unexpected [{}];", fmt::join(unexpected, ", "));
    if (!wrong_shape.empty())
      msg += fmt::format(" wrong shape [{}];", fmt::join(wrong_shape, ", "));
    if (!wrong_dtype.empty())
      msg += fmt::format(" wrong dtype [{}];", fmt::join(wrong_dtype, ", "));
    throw Error(ErrorKind::kCorruptData, msg);
  }
  torch::NoGradGuard no_grad;
  for (auto& [name, target] : targets) {
    auto it = tensors.find(name);
    if (it != tensors.end()) {
      target.copy_(it->second);
    } else {
      target.zero_();  // a missing num_batches_tracked
    }
  }
}

}  // namespace gpulab::models
