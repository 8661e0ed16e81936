// Export by tracing: the network's nn::Module tree is mirrored as a TorchScript
// module tree sharing the same tensors, so the tracer records attribute reads
// (self.layer1.0.conv1.weight) instead of constants.
#include "gpulab/models/export.h"

#include <torch/csrc/jit/frontend/tracer.h>
#include <torch/script.h>
#include <torch/torch.h>

#include <sstream>

#include "gpulab/core/atomic_file.h"
#include "gpulab/core/error.h"
#include "gpulab/models/safetensors.h"

namespace gpulab::models {
namespace {

// "torch::nn::Conv2dImpl" -> "Conv2d": a valid TorchScript class name.
std::string class_name_of(const torch::nn::Module& module) {
  std::string name = module.name();
  const auto colon = name.rfind(':');
  if (colon != std::string::npos) name = name.substr(colon + 1);
  if (name.size() > 4 && name.compare(name.size() - 4, 4, "Impl") == 0)
    name.resize(name.size() - 4);
  for (char& c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  }
  return name.empty() || std::isdigit(static_cast<unsigned char>(name[0])) ? "Module_" + name
                                                                           : name;
}

torch::jit::Module mirror(const torch::nn::Module& module,
                          const std::shared_ptr<torch::jit::CompilationUnit>& cu) {
  torch::jit::Module out(c10::QualifiedName("__torch__.gpulab." + class_name_of(module)), cu,
                         /*shouldMangle=*/true);
  for (const auto& p : module.named_parameters(/*recurse=*/false))
    out.register_parameter(p.key(), p.value(), /*is_buffer=*/false);
  for (const auto& b : module.named_buffers(/*recurse=*/false))
    out.register_buffer(b.key(), b.value());
  for (const auto& child : module.named_children())
    out.register_module(child.key(), mirror(*child.value(), cu));
  return out;
}

}  // namespace

void export_safetensors(const LoadedModel& model, const std::string& path) {
  SafetensorsContent content;
  for (auto& [name, tensor] : state_dict(*model.network))
    content.tensors[name] = tensor.detach().to(torch::kCPU).contiguous();
  content.metadata["format"] = "pt";  // what Python's safetensors.torch writes
  content.metadata["gpulab"] = model.metadata.to_json().dump();
  save_safetensors(path, content);
}

void export_torchscript(const LoadedModel& model, const std::string& path) {
  Network& network = *model.network;
  network.to(torch::kCPU);
  network.eval();
  auto cu = std::make_shared<torch::jit::CompilationUnit>();
  torch::jit::Module root = mirror(network, cu);

  const ModelConfig& c = model.metadata.config;
  torch::jit::Stack inputs = {torch::zeros({1, c.in_channels, c.height, c.width})};
  std::shared_ptr<torch::jit::Graph> graph;
  try {
    auto traced = torch::jit::tracer::trace(
        std::move(inputs),
        [&network](torch::jit::Stack in) -> torch::jit::Stack {
          return {network.forward(in.at(0).toTensor())};
        },
        [](const torch::autograd::Variable&) { return std::string(); }, /*strict=*/true,
        /*force_outplace=*/false, &root);
    graph = traced.first->graph;
  } catch (const c10::Error& e) {
    GPULAB_FAIL(ErrorKind::kInternal, "tracing {} for TorchScript export failed: {}", c.arch,
                e.what_without_backtrace());
  }
  auto fn = root._ivalue()->compilation_unit()->create_function(
      c10::QualifiedName(*root.type()->name(), "forward"), graph);
  root.type()->addMethod(fn);

  torch::jit::ExtraFilesMap extra = {{"gpulab.json", model.metadata.to_json().dump(2)}};
  std::ostringstream archive;
  root.save(archive, extra);
  core::write_file_atomic(path, archive.str());
}

}  // namespace gpulab::models
