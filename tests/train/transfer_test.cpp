// Transfer learning in the trainer: weights from a file, a new head, frozen
// and faster parameters through optimizer groups; ERFNet's two class-dependent
// layers and its second stage (a trained encoder, a fresh decoder).
#include <gtest/gtest.h>

#include <torch/torch.h>

#include "gpulab/core/error.h"
#include "gpulab/data/idx_datastore.h"
#include "gpulab/data/split.h"
#include "gpulab/models/model_file.h"
#include "gpulab/models/pretrained.h"
#include "gpulab/models/registry.h"
#include "gpulab/models/safetensors.h"
#include "gpulab/tasks/classification.h"
#include "gpulab/train/initial_weights.h"
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

namespace {

models::ModelConfig transfer_erfnet_config(int64_t classes, bool encoder_only = false) {
  models::ModelConfig c;
  c.arch = "erfnet";
  c.num_classes = classes;
  c.in_channels = 3;
  c.height = c.width = 32;
  if (encoder_only) c.options = {{"encoder_only", true}};
  return c;
}

// A network's initialisation drawn from `seed`.
std::shared_ptr<models::Network> transfer_seeded_model(uint64_t seed, const models::ModelConfig& c) {
  torch::manual_seed(seed);
  return models::create_model(c);
}

// A copy of the network's tensors now (state_dict's tensors are the live ones).
std::map<std::string, torch::Tensor> transfer_tensors_of(const models::Network& net) {
  std::map<std::string, torch::Tensor> copy;
  for (const auto& [name, t] : models::state_dict(net)) copy[name] = t.detach().clone();
  return copy;
}

bool transfer_starts_with(const std::string& s, const std::string& prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

models::WeightFile transfer_weights_of(std::map<std::string, torch::Tensor> tensors) {
  models::WeightFile w;
  w.path = "weights in memory";
  w.format = "safetensors";
  w.tensors = std::move(tensors);
  return w;
}

std::string transfer_error_of(models::Network& net, const std::string& arch,
                           const models::WeightFile& w, bool replace_head) {
  try {
    models::load_weights_for_transfer(net, arch, w, replace_head);
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "the weights loaded";
  return "";
}

}  // namespace

// Eromera/erfnet_pytorch trains the encoder, then the decoder on it. The
// encoder's weights come as a file of encoder.* tensors, or as a gpulab model
// file of an encoder-only ERFNet (whose decoder never trained): the full
// network takes the encoder and keeps its own fresh decoder.
TEST(ErfNetTransferTest, EncoderOnlyWeightsLoadTheEncoderAndKeepAFreshDecoder) {
  testing::TempDir dir;
  auto stage_one = transfer_seeded_model(1, transfer_erfnet_config(5, /*encoder_only=*/true));
  const auto trained = transfer_tensors_of(*stage_one);
  models::SafetensorsContent encoder_file;
  for (const auto& [name, t] : trained) {
    if (transfer_starts_with(name, "encoder.")) encoder_file.tensors[name] = t;
  }
  encoder_file.metadata["format"] = "pt";
  models::save_safetensors(dir / "encoder.safetensors", encoder_file);
  models::ModelMetadata metadata;
  metadata.config = transfer_erfnet_config(5, /*encoder_only=*/true);
  metadata.task = "segment";
  metadata.labels = models::labels_json({}, 5);
  metadata.mean = {0.5, 0.5, 0.5};
  metadata.std = {0.25, 0.25, 0.25};
  models::save_model_file(dir / "stage_one.safetensors", *stage_one, metadata);

  for (const char* file : {"encoder.safetensors", "stage_one.safetensors"}) {
    const models::WeightFile w = models::read_weight_file(dir / file);
    EXPECT_EQ(models::head_classes(w, "erfnet"), 5) << file;  // encoder.output_conv's
    auto full = transfer_seeded_model(2, transfer_erfnet_config(5));
    const auto fresh = transfer_tensors_of(*full);
    const models::TransferPlan plan = models::plan_transfer(*full, "erfnet", w, false);
    EXPECT_TRUE(plan.encoder_only) << file;
    EXPECT_EQ(plan.fresh, (std::vector<std::string>{"decoder"})) << file;
    models::load_weights_for_transfer(*full, "erfnet", w, /*replace_head=*/false);
    const auto after = transfer_tensors_of(*full);
    for (const auto& [name, t] : after) {
      const auto& expected = transfer_starts_with(name, "encoder.") ? trained.at(name) : fresh.at(name);
      EXPECT_TRUE(torch::equal(t, expected)) << file << ": " << name;
    }
    EXPECT_FALSE(torch::equal(after.at("decoder.output_conv.weight"),
                              trained.at("decoder.output_conv.weight")));
    EXPECT_FALSE(torch::equal(after.at("encoder.layers.7.conv3x1_2.weight"),
                              fresh.at("encoder.layers.7.conv3x1_2.weight")));

    // And with a new class count: a fresh encoder.output_conv too.
    auto seven = transfer_seeded_model(3, transfer_erfnet_config(7));
    const auto fresh7 = transfer_tensors_of(*seven);
    const models::TransferPlan plan7 = models::plan_transfer(*seven, "erfnet", w, true);
    EXPECT_EQ(plan7.fresh, (std::vector<std::string>{"encoder.output_conv", "decoder"})) << file;
    models::load_weights_for_transfer(*seven, "erfnet", w, /*replace_head=*/true);
    for (const auto& [name, t] : transfer_tensors_of(*seven)) {
      const bool from_file = transfer_starts_with(name, "encoder.") && !transfer_starts_with(name, "encoder.output_conv.");
      EXPECT_TRUE(torch::equal(t, from_file ? trained.at(name) : fresh7.at(name))) << name;
    }
  }
}

TEST(ErfNetTransferTest, NewClassCountReplacesBothClassDependentLayers) {
  EXPECT_EQ(models::head_names("erfnet"),
            (std::vector<std::string>{"encoder.output_conv", "decoder.output_conv"}));
  auto source = transfer_seeded_model(1, transfer_erfnet_config(20));
  const models::WeightFile w = transfer_weights_of(transfer_tensors_of(*source));
  EXPECT_EQ(models::head_classes(w, "erfnet"), 20);  // decoder.output_conv.bias
  // Plain ERFNet weights are the reference's: [0, 1] pixels, not ImageNet's statistics.
  const auto normalization = weights_normalization(w, "erfnet", 3);
  ASSERT_TRUE(normalization.has_value());
  EXPECT_EQ(normalization->mean, (std::vector<double>{0.0, 0.0, 0.0}));
  EXPECT_EQ(normalization->std, (std::vector<double>{1.0, 1.0, 1.0}));
  auto target = transfer_seeded_model(2, transfer_erfnet_config(11));
  const auto fresh = transfer_tensors_of(*target);
  const models::TransferPlan plan = models::plan_transfer(*target, "erfnet", w, true);
  EXPECT_FALSE(plan.encoder_only);
  EXPECT_EQ(plan.fresh, models::head_names("erfnet"));
  models::load_weights_for_transfer(*target, "erfnet", w, /*replace_head=*/true);
  for (const auto& [name, t] : transfer_tensors_of(*target)) {
    const bool head =
        transfer_starts_with(name, "encoder.output_conv.") || transfer_starts_with(name, "decoder.output_conv.");
    EXPECT_TRUE(torch::equal(t, head ? fresh.at(name) : w.tensors.at(name))) << name;
  }
  EXPECT_EQ(models::state_dict(*target).at("decoder.output_conv.weight").size(1), 11);
  EXPECT_EQ(models::state_dict(*target).at("encoder.output_conv.weight").size(0), 11);
  // Without replacing them, both must fit.
  const std::string msg = transfer_error_of(*target, "erfnet", w, false);
  EXPECT_NE(msg.find("encoder.output_conv.weight (file 20x128x1x1, model 11x128x1x1)"),
            std::string::npos)
      << msg;
  EXPECT_NE(msg.find("decoder.output_conv.weight (file 16x20x2x2, model 16x11x2x2)"),
            std::string::npos)
      << msg;
}

TEST(ErfNetTransferTest, AFileMissingOtherTensorsIsStillRefusedListingThem) {
  auto source = transfer_seeded_model(1, transfer_erfnet_config(5));
  const auto all = transfer_tensors_of(*source);
  auto target = transfer_seeded_model(2, transfer_erfnet_config(5));
  // The encoder less one of its tensors.
  std::map<std::string, torch::Tensor> encoder;
  for (const auto& [name, t] : all) {
    if (transfer_starts_with(name, "encoder.") && name != "encoder.layers.3.bn1.weight") encoder[name] = t;
  }
  std::string msg = transfer_error_of(*target, "erfnet", transfer_weights_of(encoder), false);
  EXPECT_NE(msg.find("missing [encoder.layers.3.bn1.weight]"), std::string::npos) << msg;
  // The encoder and part of the decoder: not an encoder alone.
  encoder["encoder.layers.3.bn1.weight"] = all.at("encoder.layers.3.bn1.weight");
  encoder["decoder.layers.0.conv.weight"] = all.at("decoder.layers.0.conv.weight");
  EXPECT_FALSE(models::plan_transfer(*target, "erfnet", transfer_weights_of(encoder), false).encoder_only);
  msg = transfer_error_of(*target, "erfnet", transfer_weights_of(encoder), false);
  EXPECT_NE(msg.find("missing ["), std::string::npos) << msg;
  EXPECT_NE(msg.find("decoder.output_conv.weight"), std::string::npos) << msg;
  EXPECT_EQ(msg.find("encoder.layers"), std::string::npos) << msg;
}

// One head each, no encoder: transfer is what it was before ERFNet's second
// stage.
TEST(ErfNetTransferTest, OtherFamiliesKeepTheirOneHeadAndNoEncoder) {
  const std::map<std::string, std::string> heads = {
      {"resnet18", "fc"},         {"basic_cnn", "fc"}, {"lenet5", "fc3"},
      {"vgg11", "classifier.6"},  {"alexnet", "classifier.6"},
      {"deeplabv3plus", "scorer"}};
  for (const auto& [arch, head] : heads) {
    EXPECT_EQ(models::head_names(arch), (std::vector<std::string>{head})) << arch;
    EXPECT_EQ(models::head_name(arch), head) << arch;
    EXPECT_EQ(models::encoder_name(arch), "") << arch;
  }
  models::ModelConfig c;
  c.arch = "resnet18";
  c.num_classes = 10;
  c.in_channels = 3;
  c.height = c.width = 32;
  auto source = transfer_seeded_model(1, c);
  const models::WeightFile w = transfer_weights_of(transfer_tensors_of(*source));
  EXPECT_EQ(models::head_classes(w, "resnet18"), 10);
  c.num_classes = 3;
  auto target = transfer_seeded_model(2, c);
  const auto fresh = transfer_tensors_of(*target);
  const models::TransferPlan plan = models::plan_transfer(*target, "resnet18", w, true);
  EXPECT_FALSE(plan.encoder_only);
  EXPECT_EQ(plan.fresh, (std::vector<std::string>{"fc"}));
  models::load_weights_for_transfer(*target, "resnet18", w, true);
  for (const auto& [name, t] : transfer_tensors_of(*target)) {
    EXPECT_TRUE(torch::equal(t, transfer_starts_with(name, "fc.") ? fresh.at(name) : w.tensors.at(name)))
        << name;
  }
  // A part of a ResNet is no encoder: what is missing is listed.
  std::map<std::string, torch::Tensor> part;
  for (const auto& [name, t] : w.tensors) {
    if (transfer_starts_with(name, "layer1.")) part[name] = t;
  }
  const std::string msg = transfer_error_of(*target, "resnet18", transfer_weights_of(part), true);
  EXPECT_NE(msg.find("conv1.weight"), std::string::npos) << msg;
  EXPECT_NE(msg.find("layer4.1.bn2.running_var"), std::string::npos) << msg;
  // DeepLab v3+'s bias-free 1x1 conv head gives its class count.
  models::ModelConfig d = c;
  d.arch = "deeplabv3plus";
  d.num_classes = 6;
  EXPECT_EQ(models::head_classes(transfer_weights_of(transfer_tensors_of(*models::create_model(d))), "deeplabv3plus"),
            6);
}

}  // namespace gpulab::train
