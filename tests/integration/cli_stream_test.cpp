// `gpulab stream` through the CLI: a style network (seeded weights the test
// makes) over a folder, a video and a synthetic camera with 1-3 workers;
// order, bounded queues, SIGINT, a classifier's JSON lines, bad input.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include <fmt/format.h>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>
#include <sstream>

#include "gpulab/core/atomic_file.h"
#include "gpulab/models/network.h"
#include "gpulab/models/safetensors.h"
#include "gpulab/models/transformer_net.h"
#include "tests/support/test_util.h"

namespace gpulab {
namespace fs = std::filesystem;
using testing::run_gpulab;

namespace {

const char* const kVtest = "/usr/share/doc/opencv-doc/examples/data/vtest.avi";

// Every frame of a video as images (BGR, as OpenCV reads them).
std::vector<cv::Mat> cs_read_video(const std::string& path) {
  cv::VideoCapture capture(path);
  std::vector<cv::Mat> frames;
  cv::Mat frame;
  while (capture.read(frame)) frames.push_back(frame.clone());
  return frames;
}

std::vector<std::string> cs_sorted_files(const std::string& dir) {
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(dir)) files.push_back(e.path().filename().string());
  std::sort(files.begin(), files.end());
  return files;
}

std::vector<nlohmann::json> cs_json_lines(const std::string& path) {
  std::vector<nlohmann::json> rows;
  std::istringstream lines(core::read_file(path));
  for (std::string line; std::getline(lines, line);) {
    if (!line.empty()) rows.push_back(nlohmann::json::parse(line));
  }
  return rows;
}

}  // namespace

class CliStreamTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new testing::TempDir();
    torch::manual_seed(3);
    models::ModelConfig config;
    config.arch = "transformer_net";
    config.num_classes = 3;
    config.in_channels = 3;
    models::TransformerNet net(config);
    models::SafetensorsContent weights;
    weights.tensors = models::state_dict(net);
    style_ = *dir_ / "style.safetensors";
    models::save_safetensors(style_, weights);
    // A short video (lossless frames are not needed: every run reads the
    // same decoded frames) and a folder of its frames as PNG files.
    clip_ = *dir_ / "clip.avi";
    frames_ = *dir_ / "frames";
    fs::create_directories(frames_);
    cv::VideoCapture vtest(kVtest);
    cv::VideoWriter writer(clip_, cv::VideoWriter::fourcc('M', 'J', 'P', 'G'), 10,
                           cv::Size(64, 48));
    cv::Mat frame, small;
    for (int i = 0; i < 18 && vtest.read(frame); ++i) {
      cv::resize(frame, small, cv::Size(64, 48), 0, 0, cv::INTER_AREA);
      writer.write(small);
      cv::imwrite(fmt::format("{}/f{:02d}.png", frames_, i), small);
    }
  }
  static void TearDownTestSuite() { delete dir_; }

  // gpulab stream with the style network; extra flags appended.
  static testing::CommandResult stream(const std::string& input, const std::string& out,
                                       std::vector<std::string> extra) {
    std::vector<std::string> args = {"stream",    "--model", "transformer_net",
                                     "--weights", style_,    "--input",
                                     input,       "--out",   out,
                                     "--env",     "cpu",     "--stats-interval",
                                     "0"};
    args.insert(args.end(), extra.begin(), extra.end());
    return run_gpulab(args);
  }

  static testing::TempDir* dir_;
  static std::string style_, clip_, frames_;
};
testing::TempDir* CliStreamTest::dir_ = nullptr;
std::string CliStreamTest::style_, CliStreamTest::clip_, CliStreamTest::frames_;

TEST_F(CliStreamTest, OrderedOutputIsBitIdenticalToASequentialRunWithOneTwoAndThreeWorkers) {
  // The sequential run: one worker, one frame at a time, one thread.
  const std::string seq_folder = *dir_ / "seq-folder", seq_video = *dir_ / "seq-video";
  auto r = stream(frames_, seq_folder, {"--workers", "1", "--threads", "1"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = stream(clip_, seq_video, {"--workers", "1", "--threads", "1"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  ASSERT_EQ(cs_sorted_files(seq_folder).size(), 18u);
  ASSERT_EQ(cs_sorted_files(seq_video).size(), 18u);
  EXPECT_EQ(cs_sorted_files(seq_video).front(), "clip-000000.png");
  for (const char* workers : {"2", "3"}) {
    for (const auto& [input, reference] :
         {std::pair{frames_, seq_folder}, std::pair{clip_, seq_video}}) {
      const std::string out =
          *dir_ / fmt::format("w{}-{}", workers, fs::path(input).stem().string());
      const std::string stats = out + ".json";
      r = stream(input, out, {"--workers", workers, "--threads", "1", "--stats-json", stats});
      ASSERT_EQ(r.exit_code, 0) << r.output;
      const auto names = cs_sorted_files(out);
      ASSERT_EQ(names, cs_sorted_files(reference)) << out;
      for (const auto& name : names) {
        EXPECT_EQ(core::read_file(out + "/" + name), core::read_file(reference + "/" + name))
            << workers << " workers: " << out << "/" << name;
      }
      const auto s = nlohmann::json::parse(core::read_file(stats));
      EXPECT_EQ(s["frames_written"], 18);
      EXPECT_EQ(s["frames_dropped"], 0);
      EXPECT_EQ(s["workers"].size(), std::stoul(workers));
    }
  }
}

TEST_F(CliStreamTest, VtestThroughAStyleModelIsAReadableVideoOfTheSameFramesAndSize) {
  const std::string out = *dir_ / "vtest-styled.avi";
  // The network sees small frames (the test's CPU time); the video keeps the source's size.
  auto r = stream(kVtest, out,
                  {"--image-size", "24x32", "--workers", "2", "--stats-json", out + ".json"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto source = cs_read_video(kVtest);
  const auto styled = cs_read_video(out);
  ASSERT_GT(source.size(), 700u);
  EXPECT_EQ(styled.size(), source.size());
  ASSERT_FALSE(styled.empty());
  EXPECT_EQ(styled[0].cols, source[0].cols);
  EXPECT_EQ(styled[0].rows, source[0].rows);
  cv::VideoCapture capture(out);
  EXPECT_NEAR(capture.get(cv::CAP_PROP_FPS), cv::VideoCapture(kVtest).get(cv::CAP_PROP_FPS), 0.01);
  const auto s = nlohmann::json::parse(core::read_file(out + ".json"));
  EXPECT_EQ(s["frames_written"].get<size_t>(), source.size());
  EXPECT_GT(s["latency_p50_ms"].get<double>(), 0);
  EXPECT_LE(s["latency_p50_ms"].get<double>(), s["latency_p99_ms"].get<double>());
}

TEST_F(CliStreamTest, ACameraFasterThanTheWorkersDropsTheOldestFramesAtTheQueuesBound) {
  // 300 frames at 1000 fps into one single-thread worker at 96x128.
  const std::string out = *dir_ / "camera.avi", stats = *dir_ / "camera.json";
  auto r = stream("synthetic:128x96@1000/300", out,
                  {"--workers", "1", "--threads", "1", "--queue-size", "2", "--stats-json", stats});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto s = nlohmann::json::parse(core::read_file(stats));
  EXPECT_GT(s["frames_dropped"].get<int64_t>(), 0) << s.dump();
  EXPECT_LE(s["max_queue_depth"].get<int64_t>(), 2);
  EXPECT_EQ(s["frames_written"].get<int64_t>() + s["frames_dropped"].get<int64_t>(), 300);
  EXPECT_EQ(cs_read_video(out).size(), s["frames_written"].get<size_t>());
  // With block, a live source loses nothing.
  r = stream("synthetic:128x96@1000/40", out,
             {"--workers", "1", "--threads", "1", "--queue-size", "2", "--when-full", "block",
              "--stats-json", stats});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto b = nlohmann::json::parse(core::read_file(stats));
  EXPECT_EQ(b["frames_dropped"], 0);
  EXPECT_EQ(b["frames_written"], 40);
  EXPECT_EQ(cs_read_video(out).size(), 40u);
}

TEST_F(CliStreamTest, SigintDrainsAndLeavesAVideoReadableToItsLastFrame) {
  const std::string out = *dir_ / "interrupted.avi", stats = *dir_ / "interrupted.json";
  // An endless camera: only the signal ends it.
  const auto r = testing::run_shell(fmt::format(
      "'{}' stream --model transformer_net --weights '{}' --input synthetic:64x48@30 --out '{}' "
      "--env cpu --stats-json '{}' --stats-interval 0.5 & pid=$!; sleep 3; kill -INT $pid; "
      "wait $pid; echo exit=$?",
      testing::gpulab_binary(), style_, out, stats));
  EXPECT_NE(r.output.find("exit=0"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("Stopped on request"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("fps"), std::string::npos) << r.output;  // the live line
  const auto s = nlohmann::json::parse(core::read_file(stats));
  EXPECT_TRUE(s["interrupted"].get<bool>());
  const size_t written = s["frames_written"].get<size_t>();
  EXPECT_GT(written, 0u);
  EXPECT_EQ(s["frames_read"].get<size_t>(), written + s["frames_dropped"].get<size_t>());
  EXPECT_EQ(cs_read_video(out).size(), written);
  for (const auto& e : fs::directory_iterator(dir_->path())) {
    EXPECT_EQ(e.path().string().find(".partial"), std::string::npos) << e.path();
  }
}

TEST_F(CliStreamTest, AClassifierWritesAJsonLineForEachFrameAsPredictDoes) {
  auto r = run_gpulab({"train", "--data", testing::fashion_mnist_dir(), "--limit", "128", "--model",
                       "basic_cnn", "--nf", "4", "--out", *dir_ / "classifier", "--epochs", "1",
                       "--env", "cpu", "--quiet"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = run_gpulab({"predict", "--model", *dir_ / "classifier", "--input", frames_, "--json",
                  *dir_ / "predict.json", "--env", "cpu"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string lines = *dir_ / "labels.jsonl";
  r = run_gpulab({"stream", "--model", *dir_ / "classifier", "--input", frames_, "--out", lines,
                  "--env", "cpu", "--workers", "2", "--stats-interval", "0"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto predicted = nlohmann::json::parse(core::read_file(*dir_ / "predict.json"));
  const auto streamed = cs_json_lines(lines);
  ASSERT_EQ(streamed.size(), predicted.size());
  for (size_t i = 0; i < streamed.size(); ++i) {
    EXPECT_EQ(streamed[i]["file"], predicted[i]["file"]);
    EXPECT_EQ(streamed[i]["top"][0]["label"], predicted[i]["top"][0]["label"]);
    EXPECT_NEAR(streamed[i]["top"][0]["score"].get<double>(),
                predicted[i]["top"][0]["score"].get<double>(), 1e-5);
  }
  // A classifier has no frames to draw: a video output is refused up front.
  r = run_gpulab({"stream", "--model", *dir_ / "classifier", "--input", clip_, "--out",
                  *dir_ / "labels.avi", "--env", "cpu"});
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find(".jsonl"), std::string::npos) << r.output;
}

TEST_F(CliStreamTest, BadFlagsAndSourcesAreUsageErrorsNamingTheValue) {
  auto r = stream(clip_, *dir_ / "bad", {"--when-full", "drop"});
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("drop-oldest"), std::string::npos) << r.output;
  r = stream(*dir_ / "missing.avi", *dir_ / "bad", {});
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("missing.avi"), std::string::npos) << r.output;
  r = stream(clip_, *dir_ / "bad", {"--on-error", "ignore"});
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("skip"), std::string::npos) << r.output;
  r = stream(clip_, *dir_ / "bad", {"--devices", "0"});
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("--devices"), std::string::npos) << r.output;
}

}  // namespace gpulab
