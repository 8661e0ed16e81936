// The task seam, proved from outside the library: a task the test registers
// (per-pixel regression: a network learns to output the negative of its
// input image) trains through run_training, validates, checkpoints, resumes
// bit-identically and predicts, with no file under gpulab/train/ knowing it.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include <atomic>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "gpulab/core/atomic_file.h"
#include "gpulab/data/resident_batch_source.h"
#include "gpulab/infer/output_decoders.h"
#include "gpulab/infer/predictor.h"
#include "gpulab/models/registry.h"
#include "gpulab/models/safetensors.h"
#include "gpulab/tasks/task_registry.h"
#include "gpulab/train/train_run.h"
#include "tests/support/test_util.h"

namespace gpulab {
namespace {

// Two 3x3 convolutions: enough to learn an affine map of each pixel.
class TinyFcnImpl : public models::Network {
 public:
  explicit TinyFcnImpl(const models::ModelConfig& c) {
    a_ = register_module(
        "a", torch::nn::Conv2d(torch::nn::Conv2dOptions(c.in_channels, 8, 3).padding(1)));
    b_ = register_module("b", torch::nn::Conv2d(torch::nn::Conv2dOptions(8, 3, 3).padding(1)));
  }
  // In 0-255 units, as the image output kind is; the x100 spares plain SGD
  // from growing weights of that size.
  torch::Tensor forward(torch::Tensor x) override { return 100 * b_(torch::relu(a_(x))); }

 private:
  torch::nn::Conv2d a_{nullptr}, b_{nullptr};
};

// Smooth random 3x16x16 images (no labels).
data::Dataset images(int64_t n, uint64_t seed) {
  torch::manual_seed(seed);
  data::Dataset ds;
  const at::Tensor coarse = torch::rand({n, 3, 4, 4}) * 255;
  ds.images =
      torch::nn::functional::interpolate(coarse, torch::nn::functional::InterpolateFuncOptions()
                                                     .size(std::vector<int64_t>{16, 16})
                                                     .mode(torch::kBilinear)
                                                     .align_corners(false))
          .round()
          .clamp(0, 255)
          .to(torch::kUInt8);
  ds.source = "synthetic";
  return ds;
}

// sums: [loss * n, n, mean absolute error (0-255 units) * n].
class NegateMetrics : public tasks::Metrics {
 public:
  explicit NegateMetrics(c10::Device device)
      : sums_(torch::zeros({3}, torch::TensorOptions().dtype(torch::kFloat64).device(device))) {}
  void update(const at::Tensor& output, const data::Batch& batch,
              const tasks::LossTerms& loss) override {
    tasks::add_loss_sums(sums_, loss, batch.size());
    sums_.narrow(0, 2, 1).add_(loss.parts.at(0).second.detach().to(torch::kFloat64) * batch.size());
  }
  at::Tensor& sums() override { return sums_; }
  void reset() override { sums_.zero_(); }
  tasks::MetricValues values() const override {
    const at::Tensor s = sums_.cpu();
    return {{"loss", tasks::mean_loss(s)},
            {"mean_abs_error", s[2].item<double>() / std::max(1.0, s[1].item<double>())}};
  }

 private:
  at::Tensor sums_;
};

class NegateTask : public tasks::Task {
 public:
  explicit NegateTask(std::string arch) : arch_(std::move(arch)) {}
  std::string name() const override { return "negate_test"; }
  tasks::TargetKind target_kind() const override { return tasks::TargetKind::kNone; }
  data::TrainingData open_training_data(const data::DataRequest& r) const override {
    data::TrainingData out;
    const data::Dataset train = images(96, 1);
    out.validation = images(32, 2);
    out.channels = 3;
    out.height = out.width = 16;
    out.normalization = data::compute_normalization(train);
    out.source = std::make_unique<data::ResidentBatchSource>(
        std::make_shared<const data::ResidentBatcher>(train, out.normalization, r.device));
    return out;
  }
  models::ModelConfig model_config(const tasks::DataShape& d) const override {
    models::ModelConfig c;
    c.arch = arch_;
    c.num_classes = 3;
    c.in_channels = d.channels;
    c.height = d.height;
    c.width = d.width;
    return c;
  }
  void setup(const tasks::TaskSetup& s) override {
    // The batch's pixels in 0-255 units from its normalised input.
    const auto n = static_cast<int64_t>(s.normalization.mean.size());
    std::vector<float> scale, shift;
    for (int64_t c = 0; c < n; ++c) {
      scale.push_back(static_cast<float>(255 * s.normalization.std[c]));
      shift.push_back(static_cast<float>(255 * s.normalization.mean[c]));
    }
    scale_ = torch::tensor(scale).view({1, n, 1, 1}).to(s.device);
    shift_ = torch::tensor(shift).view({1, n, 1, 1}).to(s.device);
  }
  tasks::LossTerms loss(const at::Tensor& output, const data::Batch& batch) const override {
    const at::Tensor target = 255 - (batch.input * scale_ + shift_);
    // In units of 100 grey levels, so plain SGD trains it.
    const at::Tensor loss = torch::mse_loss(output / 100, target / 100);
    return {loss, {{"abs_error", (output - target).abs().mean()}}};
  }
  std::unique_ptr<tasks::Metrics> metrics(tasks::Stage, c10::Device device) const override {
    return std::make_unique<NegateMetrics>(device);
  }
  std::string primary_metric() const override { return "mean_abs_error"; }
  std::vector<tasks::ProgressColumn> progress_columns() const override {
    return {{"Mini-batch", "Abs Error", tasks::Stage::kTraining, "mean_abs_error", false},
            {"Validation", "Abs Error", tasks::Stage::kValidation, "mean_abs_error", false}};
  }
  models::OutputKind output_kind() const override { return models::OutputKind::kImage; }
  bool fixed_input_size(const models::ModelConfig&) const override { return false; }

 private:
  std::string arch_;
  at::Tensor scale_, shift_;
};

void register_once() {
  static const bool done = [] {
    models::register_model("tiny_fcn_test", [](const models::ModelConfig& c) {
      return std::make_shared<TinyFcnImpl>(c);
    });
    tasks::register_task("negate_test", {"test-only per-pixel regression", "tiny_fcn_test",
                                         [](const tasks::TaskConfig& c) {
                                           return std::make_unique<NegateTask>(c.arch);
                                         }});
    return true;
  }();
  (void)done;
}

nlohmann::json spec() {
  return {{"task", "negate_test"},
          {"data", "synthetic"},
          {"options",
           {{"execution_environment", "cpu"},
            {"batch_size", 16},
            {"max_epochs", 4},
            {"learn_rate", 0.05},
            {"validation_frequency", 6},
            {"checkpoint_frequency", 5},
            {"checkpoint_frequency_unit", "iteration"},
            {"shuffle", "every-epoch"},
            {"verbose", false},
            {"seed", 7}}}};
}

}  // namespace

TEST(CustomTaskTest, ARegisteredTaskTrainsResumesAndPredictsThroughTheLibrary) {
  register_once();
  testing::TempDir dir;
  const train::TrainRunResult straight =
      train::run_training(spec(), train::TrainRunOptions(dir / "straight"));
  const auto& fit = straight.fit;
  ASSERT_TRUE(fit.validation.has_value());
  const double first_error = 127.5;  // an untrained net is far off; check it learned a lot
  EXPECT_LT(fit.validation_value("mean_abs_error").value(), first_error / 4);
  EXPECT_EQ(fit.task, "negate_test");
  EXPECT_EQ(fit.primary_metric, "mean_abs_error");
  const auto summary = nlohmann::json::parse(core::read_file(dir / "straight/summary.json"));
  EXPECT_TRUE(summary.contains("validation_mean_abs_error")) << summary;
  EXPECT_GT(summary["peak_host_memory_mb"].get<double>(), 0);
  const auto history = core::read_file(dir / "straight/history.jsonl");
  EXPECT_NE(history.find("\"mean_abs_error\""), std::string::npos);

  // Interrupted after every iteration, then resumed: the same network.
  std::atomic<bool> stop{true};
  auto interrupted = train::TrainRunOptions(dir / "interrupted").stop_flag(&stop);
  EXPECT_EQ(train::run_training(spec(), interrupted).fit.stop_reason, "interrupted");
  for (int i = 0; i < 2; ++i) train::run_training(spec(), interrupted.resume(true));
  stop = false;
  train::run_training(spec(), interrupted.resume(true));
  const auto a = models::load_safetensors(dir / "straight/model.safetensors").tensors;
  const auto b = models::load_safetensors(dir / "interrupted/model.safetensors").tensors;
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [name, t] : a) EXPECT_TRUE(torch::equal(t, b.at(name))) << name;

  // The model file names its task and output; the Predictor decodes it at
  // a size other than the training size (fully convolutional).
  const infer::Predictor predictor = infer::Predictor::from_path(dir / "straight", c10::kCPU);
  EXPECT_EQ(predictor.metadata().task, "negate_test");
  EXPECT_EQ(predictor.output_kind(), models::OutputKind::kImage);
  EXPECT_FALSE(predictor.metadata().fixed_input_size);
  const at::Tensor input = images(2, 3).images.slice(2, 0, 12);  // 12x16
  const at::Tensor out = infer::decode_image(predictor.forward(input));
  ASSERT_EQ(out.sizes(), (std::vector<int64_t>{2, 12, 16, 3}));
  const at::Tensor want = 255 - input.permute({0, 2, 3, 1}).to(torch::kFloat32);
  EXPECT_LT((out.to(torch::kFloat32) - want).abs().mean().item<double>(), first_error / 4);
}

}  // namespace gpulab
