// Transfer learning in the trainer: weights from a file, a new head, frozen
// and faster parameters through optimizer groups.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include "gpulab/core/error.h"
#include "gpulab/data/idx_datastore.h"
#include "gpulab/data/split.h"
#include "gpulab/models/model_file.h"
#include "gpulab/models/registry.h"
#include "gpulab/models/safetensors.h"
#include "gpulab/tasks/classification.h"
#include "gpulab/train/parameter_groups.h"
#include "gpulab/train/trainer.h"
#include "tests/support/scripted_module.h"
#include "tests/support/test_util.h"

namespace gpulab::train {
namespace {

const data::Dataset& fashion_test_set() {
  static const data::Dataset ds =
      data::load_idx_folder(testing::fashion_mnist_dir(), data::IdxSplit::kTest);
  return ds;
}

TrainOptions quick_options() {
  return TrainOptions()
      .execution_environment("cpu")
      .batch_size(32)
      .max_epochs(1)
      .learn_rate(0.02)
      .verbose(false)
      .seed(5);
}

std::map<std::string, torch::Tensor> model_tensors(const std::string& path) {
  return models::load_safetensors(path).tensors;
}

// Pre-trains basic_cnn on classes 0-4 of a few hundred images.
std::string pretrain(const testing::TempDir& dir) {
  data::Dataset source =
      data::select_classes(data::subset(fashion_test_set(), torch::arange(600, torch::kInt64)),
                           {"0", "1", "2", "3", "4"});
  tasks::ClassificationTask task("basic_cnn");
  Trainer(task, quick_options(), dir / "pre").fit(source, nullptr, false);
  return dir / "pre/model.safetensors";
}

}  // namespace

TEST(TransferTest, FrozenParametersAndStatisticsStayBitIdenticalAndTheHeadIsNew) {
  testing::TempDir dir;
  std::filesystem::create_directories(dir / "pre");
  std::filesystem::create_directories(dir / "transfer");
  const std::string pre = pretrain(dir);
  const auto before = model_tensors(pre);

  // Classes 5-9 relabelled 0..4, plus one more: a 6-class head.
  data::Dataset target = data::select_classes(
      data::subset(fashion_test_set(), torch::arange(600, 1200, torch::kInt64)),
      {"Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot", "0"});
  tasks::ClassificationTask task("basic_cnn");
  Trainer trainer(
      task, quick_options().freeze({"layer1.*"}).learn_rate_factors({"fc.*=20", "layer2.*=0"}),
      dir / "transfer");
  InitialWeights initial;
  initial.file = std::make_shared<models::WeightFile>(models::read_weight_file(pre));
  initial.replace_head = true;
  initial.normalization =
      data::Normalization{initial.file->metadata->mean, initial.file->metadata->std};
  trainer.set_initial_weights(initial);
  trainer.fit(target, nullptr, false);

  const auto after = model_tensors(dir / "transfer/model.safetensors");
  for (const char* name :
       {"layer1.conv.weight", "layer1.bn.weight", "layer1.bn.running_mean", "layer1.bn.running_var",
        "layer2.conv.weight", "layer2.bn.running_var"}) {
    EXPECT_TRUE(torch::equal(before.at(name), after.at(name))) << name;
  }
  EXPECT_FALSE(torch::equal(before.at("layer3.conv.weight"), after.at("layer3.conv.weight")));
  EXPECT_EQ(after.at("fc.weight").size(0), 6);
  EXPECT_EQ(before.at("fc.weight").size(0), 5);
  auto loaded = models::load_model_file(dir / "transfer/model.safetensors");
  EXPECT_EQ(loaded.metadata.class_names().front(), "Sandal");
  EXPECT_EQ(loaded.metadata.mean, initial.file->metadata->mean);
}

TEST(ParameterGroupsTest, LastMatchingRuleWinsAndGroupsShareAFactor) {
  auto net = models::create_model([] {
    models::ModelConfig c;
    c.arch = "basic_cnn";
    return c;
  }());
  ParameterPlan plan =
      plan_parameters(*net, {{"*", 0.5}, {"layer1.*", 0.0}, {"fc.*", 20.0}, {"layer3.bn.*", 0.5}});
  EXPECT_EQ(plan.frozen,
            (std::vector<std::string>{"layer1.conv.weight", "layer1.bn.weight", "layer1.bn.bias"}));
  ASSERT_EQ(plan.groups.size(), 2u);
  EXPECT_EQ(plan.factors(), (std::vector<double>{0.5, 20.0}));
  EXPECT_EQ(plan.groups[1].names, (std::vector<std::string>{"fc.weight", "fc.bias"}));
  EXPECT_EQ(plan.frozen_batchnorm.size(), 1u);
  EXPECT_FALSE(net->named_parameters()["layer1.conv.weight"].requires_grad());
  set_training_mode(*net, true, plan);
  EXPECT_FALSE(plan.frozen_batchnorm[0]->is_training());
  EXPECT_TRUE(net->is_training());
}

TEST(ParameterGroupsTest, BadRulesAreRejected) {
  auto net = models::create_model([] {
    models::ModelConfig c;
    c.arch = "lenet5";
    return c;
  }());
  EXPECT_THROW(plan_parameters(*net, {{"classifier.*", 10.0}}), Error);  // matches nothing
  EXPECT_THROW(plan_parameters(*net, {{"*", 0.0}}), Error);              // nothing to train
  EXPECT_THROW(parse_learn_rate_factor("fc.*"), Error);
  EXPECT_THROW(parse_learn_rate_factor("fc.*=fast"), Error);
  EXPECT_THROW(parse_learn_rate_factor("fc.*=-1"), Error);
  EXPECT_EQ(parse_learn_rate_factor("fc.*=20").factor, 20.0);
}

// Regression: only LibTorch's batch-norm modules were recognised, so the
// running statistics of a frozen BatchNorm2d inside a TorchScript archive
// (the whole archive trained, part of it frozen) kept changing.
TEST(ParameterGroupsTest, FrozenBatchNormInsideATorchScriptArchiveKeepsItsStatistics) {
  testing::TempDir dir;
  testing::write_scripted_cnn(dir / "py.pt", 1, 3);
  models::ModelConfig c;
  c.arch = "torchscript";
  c.in_channels = 1;
  c.height = c.width = 8;
  c.num_classes = 3;
  c.options = {{"file", dir / "py.pt"}};
  auto running_mean_after_a_training_step = [&](const std::vector<LearnRateFactor>& rules) {
    auto net = models::create_model(c);
    const ParameterPlan plan = plan_parameters(*net, rules);
    set_training_mode(*net, true, plan);
    torch::manual_seed(3);
    net->forward(torch::randn({4, 1, 8, 8}) * 3 + 1);
    return std::make_pair(plan.frozen_batchnorm.size(),
                          models::state_dict(*net).at("backbone.bn.running_mean").clone());
  };
  const auto [frozen_count, frozen_mean] =
      running_mean_after_a_training_step({{"backbone.bn.*", 0}});
  EXPECT_EQ(frozen_count, 1u);
  EXPECT_TRUE(torch::equal(frozen_mean, torch::zeros({4})));
  // Not frozen, the same layer's statistics move.
  const auto [trained_count, trained_mean] = running_mean_after_a_training_step({});
  EXPECT_EQ(trained_count, 0u);
  EXPECT_FALSE(torch::equal(trained_mean, torch::zeros({4})));
}

}  // namespace gpulab::train
