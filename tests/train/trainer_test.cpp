// The trainer on small real data: it learns, resumes bit-identically, and
// stops with a clear error when the loss diverges.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "gpulab/core/atomic_file.h"
#include "gpulab/core/error.h"
#include "gpulab/data/idx_datastore.h"
#include "gpulab/data/split.h"
#include "gpulab/distributed/communicator.h"
#include "gpulab/models/model_file.h"
#include "gpulab/models/safetensors.h"
#include "gpulab/tasks/classification.h"
#include "gpulab/train/trainer.h"
#include "tests/support/test_util.h"

namespace gpulab::train {
namespace fs = std::filesystem;
namespace {

const data::Dataset& fashion_test_set() {
  static const data::Dataset ds =
      data::load_idx_folder(testing::fashion_mnist_dir(), data::IdxSplit::kTest);
  return ds;
}

data::Dataset first(const data::Dataset& ds, int64_t begin, int64_t end) {
  return data::subset(ds, torch::arange(begin, end, torch::kInt64));
}

TrainOptions small_options() {
  return TrainOptions()
      .execution_environment("cpu")
      .batch_size(32)
      .max_epochs(2)
      .learn_rate(0.02)
      .verbose(false)
      .seed(3);
}

std::map<std::string, torch::Tensor> final_weights(const std::string& run_dir) {
  return models::load_safetensors(run_dir + "/model.safetensors").tensors;
}

}  // namespace

TEST(TrainerTest, LearnsFashionMnistAndWritesTheRunFolder) {
  testing::TempDir dir;
  tasks::ClassificationTask task("basic_cnn");
  data::Dataset train = first(fashion_test_set(), 0, 1500);
  data::Dataset val = first(fashion_test_set(), 9000, 9500);
  Trainer trainer(task, small_options().max_epochs(3).validation_frequency(20), dir.path());
  FitResult r = trainer.fit(train, &val, false);
  EXPECT_GT(r.validation_value("accuracy").value(), 0.70);
  EXPECT_EQ(r.stop_reason, "max-epochs");
  EXPECT_EQ(r.iterations, 3 * 47);
  EXPECT_GT(r.images_per_second, 0);
  for (const char* f :
       {"history.jsonl", "model.safetensors", "summary.json", "checkpoints/latest.json"}) {
    EXPECT_TRUE(fs::exists(dir / f)) << f;
  }
  auto summary = nlohmann::json::parse(core::read_file(dir / "summary.json"));
  EXPECT_EQ(summary["iterations"], 141);
  EXPECT_TRUE(summary.contains("wall_seconds"));
  EXPECT_EQ(summary["cuda_graphs"], "off: the step runs on a CPU");
  auto model = models::load_model_file(dir / "model.safetensors");
  EXPECT_EQ(model.metadata.class_names()[0], "T-shirt/top");
  EXPECT_EQ(model.metadata.task, "classify");
  EXPECT_EQ(model.metadata.output, models::OutputKind::kClassScores);
  EXPECT_TRUE(model.metadata.fixed_input_size);
  EXPECT_EQ(model.metadata.config.height, 28);
}

TEST(TrainerTest, ResumesToIdenticalWeightsAfterInterruptions) {
  data::Dataset train = first(fashion_test_set(), 0, 600);
  tasks::ClassificationTask task("basic_cnn");
  const TrainOptions options = small_options()
                                   .solver("adam")
                                   .learn_rate(0.002)
                                   .shuffle("every-epoch")
                                   .checkpoint_frequency(5)
                                   .checkpoint_frequency_unit("iteration");

  testing::TempDir straight;
  Trainer(task, options, straight.path()).fit(train, nullptr, false);

  testing::TempDir interrupted;
  std::atomic<bool> stop{true};  // stops (with a checkpoint) after one iteration
  {
    Trainer t(task, options, interrupted.path());
    t.set_stop_flag(&stop);
    EXPECT_EQ(t.fit(train, nullptr, false).stop_reason, "interrupted");
  }
  for (int i = 0; i < 3; ++i) {
    Trainer t(task, options, interrupted.path());
    t.set_stop_flag(&stop);
    EXPECT_EQ(t.fit(train, nullptr, true).iterations, i + 2);
  }
  stop = false;
  Trainer(task, options, interrupted.path()).fit(train, nullptr, true);

  auto a = final_weights(straight.path());
  auto b = final_weights(interrupted.path());
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [name, t] : a) EXPECT_TRUE(torch::equal(t, b.at(name))) << name;
}

TEST(TrainerTest, DivergingLossStopsNamingTheIterationAndKeepsTheCheckpoint) {
  testing::TempDir dir;
  data::Dataset train = first(fashion_test_set(), 0, 256);
  tasks::ClassificationTask task("lenet5");
  Trainer trainer(task, small_options().learn_rate(1e12).l2_regularization(0), dir.path());
  try {
    trainer.fit(train, nullptr, false);
    FAIL() << "no divergence detected";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kRuntime);
    EXPECT_NE(std::string(e.what()).find("at iteration"), std::string::npos) << e.what();
  }
  auto summary = nlohmann::json::parse(core::read_file(dir / "summary.json"));
  EXPECT_EQ(summary["stop_reason"], "diverged");
  EXPECT_FALSE(fs::exists(dir / "model.safetensors"));
}

TEST(TrainerTest, ValidationPatienceStopsEarly) {
  testing::TempDir dir;
  data::Dataset train = first(fashion_test_set(), 0, 512);
  // Validation labels shifted by one class: the better the model learns the
  // real labels, the higher its validation loss, so patience must run out.
  data::Dataset val = first(fashion_test_set(), 512, 768);
  val.targets = (val.targets + 1).remainder(10);
  tasks::ClassificationTask task("basic_cnn");
  Trainer trainer(task,
                  small_options().max_epochs(20).validation_frequency(4).validation_patience(3),
                  dir.path());
  FitResult r = trainer.fit(train, &val, false);
  EXPECT_EQ(r.stop_reason, "validation-patience");
  EXPECT_LT(r.iterations, 20 * 16);
}

}  // namespace gpulab::train

namespace gpulab::train {
namespace {

// Rank 0 of a pretend world of two whose peer always holds the same values:
// sums double them. Counts the collectives the trainer issues.
class CountingCommunicator final : public distributed::Communicator {
 public:
  CountingCommunicator() : distributed::Communicator(two_ranks()) {}
  std::string backend() const override { return "gloo"; }
  void all_reduce_sum(std::vector<at::Tensor>& tensors) override {
    ++blocking_reduces;
    for (auto& t : tensors) t.mul_(2);
  }
  std::unique_ptr<distributed::PendingReduce> all_reduce_sum_async(at::Tensor tensor) override {
    ++bucket_reduces;
    tensor.mul_(2);
    struct Done final : distributed::PendingReduce {
      void wait() override {}
    };
    return std::make_unique<Done>();
  }
  void broadcast(std::vector<at::Tensor>&, int) override {}
  void barrier() override {}
  void check_same_on_all_ranks(const std::string&, const std::string&) override {}
  void announce_failure(const std::string&) noexcept override {}

  int blocking_reduces = 0;
  int bucket_reduces = 0;

 private:
  static distributed::World two_ranks() {
    distributed::World w;
    w.size = 2;
    w.local_size = 2;
    w.launcher = "torchrun";
    return w;
  }
};

}  // namespace

// Regression: every data-parallel step also all-reduced the ranks' stop
// flag, one collective more than the gradient buckets (and, with NCCL, a
// host sync per step).
TEST(TrainerTest, DataParallelStepsAllReduceOnlyTheirGradientBuckets) {
  testing::TempDir dir;
  tasks::ClassificationTask task("basic_cnn");
  data::Dataset train = first(fashion_test_set(), 0, 320);
  CountingCommunicator comm;
  Trainer trainer(task, small_options().max_epochs(1).verbose_frequency(50), dir.path());
  trainer.set_communicator(&comm);
  const FitResult r = trainer.fit(train, nullptr, false);
  ASSERT_EQ(r.iterations, 10);
  EXPECT_GT(comm.bucket_reduces, 0);
  EXPECT_EQ(comm.bucket_reduces % 10, 0) << "the same buckets every step";
  // The two log rows (iterations 1 and 10) each carry the loss, accuracy and
  // stop vote in one all-reduce; no other step reduces anything else.
  EXPECT_EQ(comm.blocking_reduces, 2);
}

}  // namespace gpulab::train
