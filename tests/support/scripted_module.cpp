// Modules built with torch::jit::Module::define: TorchScript source compiled
// in C++, saved without extra files, as torch.jit.save does.
#include "tests/support/scripted_module.h"

#include <torch/script.h>
#include <torch/torch.h>

namespace gpulab::testing {
namespace {

torch::jit::Module scripted(const std::string& type,
                            const std::shared_ptr<torch::jit::CompilationUnit>& cu) {
  torch::jit::Module m(c10::QualifiedName(type), cu, /*shouldMangle=*/true);
  if (!m.hasattr("training")) m.register_attribute("training", c10::BoolType::get(), true);
  return m;
}

}  // namespace

void write_scripted_cnn(const std::string& path, int64_t channels, int64_t classes) {
  torch::manual_seed(11);
  auto cu = std::make_shared<torch::jit::CompilationUnit>();
  torch::jit::Module conv = scripted("__torch__.torch.nn.modules.conv.Conv2d", cu);
  conv.register_parameter("weight", torch::randn({4, channels, 3, 3}) * 0.3, false);
  conv.register_parameter("bias", torch::randn({4}) * 0.1, false);
  conv.define(R"(
def forward(self, x):
    return torch.conv2d(x, self.weight, self.bias, [1, 1], [1, 1], [1, 1], 1)
)");
  torch::jit::Module bn = scripted("__torch__.torch.nn.modules.batchnorm.BatchNorm2d", cu);
  bn.register_parameter("weight", torch::ones({4}), false);
  bn.register_parameter("bias", torch::zeros({4}), false);
  bn.register_buffer("running_mean", torch::zeros({4}));
  bn.register_buffer("running_var", torch::ones({4}));
  bn.register_buffer("num_batches_tracked", torch::zeros({}, torch::kLong));
  bn.define(R"(
def forward(self, x):
    return torch.batch_norm(x, self.weight, self.bias, self.running_mean, self.running_var,
                            self.training, 0.1, 1e-5, False)
)");
  torch::jit::Module fc = scripted("__torch__.torch.nn.modules.linear.Linear", cu);
  fc.register_parameter("weight", torch::randn({classes, 4}) * 0.5, false);
  fc.register_parameter("bias", torch::zeros({classes}), false);
  fc.define(R"(
def forward(self, x):
    return torch.linear(x, self.weight, self.bias)
)");
  torch::jit::Module root = scripted("__torch__.ScriptedCnn", cu);
  root.register_module("conv", conv);
  root.register_module("bn", bn);
  root.register_module("fc", fc);
  root.define(R"(
def forward(self, x):
    x = torch.relu(self.bn.forward(self.conv.forward(x)))
    return self.fc.forward(torch.mean(x, [2, 3]))
)");
  root.save(path);
}

}  // namespace gpulab::testing
