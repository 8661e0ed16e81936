// `gpulab lab` end to end: a tiny gpulab train as a lab, a second lab taking
// its model through exec:// to predict, a failed fetch, stop, a killed
// supervisor reconciled, and a secret passed by `env` never recorded.
#include <gtest/gtest.h>
#include <signal.h>

#include <torch/torch.h>

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "gpulab/core/atomic_file.h"
#include "gpulab/data/idx_datastore.h"
#include "gpulab/lab/local_runner.h"
#include "tests/support/test_util.h"

namespace gpulab {
namespace {
namespace fs = std::filesystem;

// Runs `gpulab ARGS` with GPULAB_HOME=home (and `env`, "NAME=value ...").
testing::CommandResult lab_cli(const std::string& home, const std::vector<std::string>& args,
                               const std::string& env = "") {
  std::string command = "GPULAB_HOME='" + home + "' " + env + " '" + testing::gpulab_binary() + "'";
  for (const auto& a : args) command += " '" + a + "'";
  return testing::run_shell(command);
}

nlohmann::json lab_show_json(const std::string& home, const std::string& id) {
  const auto r = lab_cli(home, {"lab", "show", id, "--json"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  return nlohmann::json::parse(r.output.substr(r.output.find('{')));
}

// The id printed by `lab run --detach` (its last stdout line).
std::string lab_detached_id(const testing::CommandResult& r) {
  std::string out = r.output;
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out.substr(out.rfind('\n') + 1);
}

std::string lab_newest_id(const std::string& home) {
  const auto r = lab_cli(home, {"lab", "list", "--json", "--limit", "1"});
  return nlohmann::json::parse(r.output.substr(r.output.find('{')))["executions"][0]["id"];
}

bool lab_wait_state(const std::string& home, const std::string& id, const std::string& state,
                    double seconds) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (std::chrono::steady_clock::now() < until) {
    if (lab_show_json(home, id)["state"] == state) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return false;
}

}  // namespace

TEST(CliLabTest, TrainsThenPredictsWithTheModelTakenThroughExec) {
  testing::TempDir dir;
  const std::string home = dir / "home";
  // clang-format off
  testing::write_bytes(dir / "train.yaml",
      "name: tiny-train\n"
      "command: [train, --data, ../mounts/fashion, --model, basic_cnn, --out, run]\n"
      "mounts:\n  - {path: " + testing::fashion_mnist_dir() + ", name: fashion}\n"
      "parameters:\n  - pass-as: --limit=128\n  - pass-as: --nf=4\n  - pass-as: --epochs=1\n"
      "  - pass-as: --env=cpu\n  - pass-as: --quiet\n");
  // clang-format on
  auto r = lab_cli(home, {"lab", "run", dir / "train.yaml"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string train_id = lab_newest_id(home);
  auto show = lab_show_json(home, train_id);
  EXPECT_EQ(show["state"], "finished");
  EXPECT_EQ(show["exit_code"], 0);
  EXPECT_EQ(show["spec"]["mounts"][0]["name"], "fashion");
  r = lab_cli(home, {"lab", "outputs", train_id});
  EXPECT_NE(r.output.find("run/model.safetensors"), std::string::npos) << r.output;
  EXPECT_TRUE(fs::is_symlink(home + "/executions/" + train_id + "/mounts/fashion"));

  // The second lab: the model through exec://, an image as a file input.
  const at::Tensor images =
      data::load_idx_folder(testing::fashion_mnist_dir(), data::IdxSplit::kTest).images;
  testing::write_pnm(dir / "shoe.pgm", images[0]);
  // clang-format off
  testing::write_bytes(dir / "predict.yaml",
      "name: tiny-predict\n"
      "command: gpulab predict --model ../inputs/model.safetensors --input ../inputs/shoe.pgm"
      " --json predictions.json --env cpu\n"
      "inputs:\n"
      "  - {name: model.safetensors, url: 'exec://" + train_id + "/outputs/run/model.safetensors'}\n"
      "  - {name: shoe.pgm, url: shoe.pgm}\n");
  // clang-format on
  r = lab_cli(home, {"lab", "run", dir / "predict.yaml"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string predict_id = lab_newest_id(home);
  ASSERT_NE(predict_id, train_id);
  const auto predictions = nlohmann::json::parse(
      core::read_file(home + "/executions/" + predict_id + "/outputs/predictions.json"));
  ASSERT_EQ(predictions.size(), 1u);
  EXPECT_TRUE(predictions[0].contains("top")) << predictions.dump();
  show = lab_show_json(home, predict_id);
  EXPECT_EQ(show["input_digests"]["model.safetensors"].get<std::string>().rfind("sha256:", 0), 0u);

  // rerun: the same spec hash, a new id; rm removes row and folder.
  r = lab_cli(home, {"lab", "rerun", predict_id});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string again = lab_newest_id(home);
  EXPECT_NE(again, predict_id);
  EXPECT_EQ(lab_show_json(home, again)["spec_hash"], show["spec_hash"]);
  r = lab_cli(home, {"lab", "rm", again});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_FALSE(fs::exists(home + "/executions/" + again));
  r = lab_cli(home, {"lab", "list", "--state", "finished", "--name", "tiny-predict"});
  EXPECT_NE(r.output.find(predict_id), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find(train_id), std::string::npos) << r.output;
}

TEST(CliLabTest, AFailedFetchFailsInFetchingNamingTheUrlAndStartsNothing) {
  testing::TempDir dir;
  const std::string home = dir / "home";
  testing::write_bytes(dir / "lab.yaml",
                       "name: bad-input\ncommand: [sh, -c, 'touch started']\n"
                       "inputs:\n  - {name: x, url: 'http://user:pw@127.0.0.1:1/x.bin'}\n"
                       "  - {name: y, url: 'exec://000000000000/outputs/model'}\n");
  const auto r = lab_cli(home, {"lab", "run", dir / "lab.yaml"});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("failed in `fetching`"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("exec://000000000000/outputs/model"), std::string::npos) << r.output;
  const std::string id = lab_newest_id(home);
  const auto show = lab_show_json(home, id);
  EXPECT_EQ(show["state"], "failed");
  EXPECT_EQ(show["started_at"], nullptr);
  EXPECT_NE(show["message"].get<std::string>().find("fetching inputs failed"), std::string::npos);
  EXPECT_FALSE(fs::exists(home + "/executions/" + id + "/outputs/started"));
  // A spec error is bad input: exit code 2 naming line and key.
  testing::write_bytes(dir / "bad.yaml", "name: x\ncommand: [info]\nhardware: {type: tpu}\n");
  const auto bad = lab_cli(home, {"lab", "run", dir / "bad.yaml"});
  EXPECT_EQ(bad.exit_code, 2) << bad.output;
  EXPECT_NE(bad.output.find("line 3: `hardware.type`: expected cpu or gpu"), std::string::npos)
      << bad.output;
}

TEST(CliLabTest, StopEndsALongProgramAsStopped) {
  testing::TempDir dir;
  const std::string home = dir / "home";
  // The program ignores SIGTERM: only SIGKILL after the grace period ends it.
  testing::write_bytes(dir / "lab.yaml",
                       "name: sleeper\ncommand: [sh, -c, 'trap \"\" TERM; echo up; sleep 60']\n");
  const auto r = lab_cli(home, {"lab", "run", dir / "lab.yaml", "--detach"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string id = lab_detached_id(r);
  ASSERT_TRUE(lab_wait_state(home, id, "running", 10)) << lab_show_json(home, id).dump();
  const auto child = lab_show_json(home, id)["child_pid"].get<int64_t>();
  const auto t0 = std::chrono::steady_clock::now();
  const auto stop = lab_cli(home, {"lab", "stop", id, "--grace", "1"});
  EXPECT_EQ(stop.exit_code, 0) << stop.output;
  EXPECT_NE(stop.output.find(id + " stopped"), std::string::npos) << stop.output;
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 8.0);
  EXPECT_FALSE(lab::process_alive(child));
  const auto show = lab_show_json(home, id);
  EXPECT_EQ(show["state"], "stopped");
  EXPECT_EQ(show["exit_code"], 128 + SIGKILL);
  const auto logs = lab_cli(home, {"lab", "logs", id});
  EXPECT_NE(logs.output.find("Z up\n"), std::string::npos) << logs.output;
}

TEST(CliLabTest, AKilledSupervisorIsReconciledByTheNextCommand) {
  testing::TempDir dir;
  const std::string home = dir / "home";
  testing::write_bytes(dir / "lab.yaml", "name: orphan\ncommand: [sleep, '60']\n");
  const auto r = lab_cli(home, {"lab", "run", dir / "lab.yaml", "--detach"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string id = lab_detached_id(r);
  ASSERT_TRUE(lab_wait_state(home, id, "running", 10));
  const auto show = lab_show_json(home, id);
  const auto supervisor = show["pid"].get<int64_t>();
  const auto child = show["child_pid"].get<int64_t>();
  ASSERT_TRUE(lab::process_alive(supervisor));
  ASSERT_EQ(::kill(static_cast<pid_t>(supervisor), SIGKILL), 0);
  for (int i = 0; i < 50 && lab::process_alive(supervisor); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  const auto list = lab_cli(home, {"lab", "list"});
  EXPECT_NE(list.output.find("execution " + id + " is now failed"), std::string::npos)
      << list.output;
  const auto after = lab_show_json(home, id);
  EXPECT_EQ(after["state"], "failed");
  EXPECT_NE(after["message"].get<std::string>().find("ended without recording a result"),
            std::string::npos);
  for (int i = 0; i < 50 && lab::process_alive(child); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_FALSE(lab::process_alive(child));
}

TEST(CliLabTest, ASecretPassedByEnvIsNeverRecorded) {
  testing::TempDir dir;
  const std::string home = dir / "home";
  const std::string secret = "s3cr3t-V4lue-91";
  testing::write_bytes(dir / "lab.yaml",
                       "name: uses-secret\nenv: [LAB_TEST_TOKEN]\n"
                       // The spec holds only a part of the value to compare.
                       "command: [sh, -c, 'test \"${LAB_TEST_TOKEN#s3cr3t-}\" = V4lue-91"
                       " && echo token-ok']\n");
  // Not set: refused before anything is recorded.
  auto r = lab_cli(home, {"lab", "run", dir / "lab.yaml"});
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("LAB_TEST_TOKEN, which is not set"), std::string::npos) << r.output;
  r = lab_cli(home, {"lab", "run", dir / "lab.yaml"}, "LAB_TEST_TOKEN=" + secret);
  ASSERT_EQ(r.exit_code, 0) << r.output;  // the command saw the value
  EXPECT_NE(r.output.find("token-ok"), std::string::npos) << r.output;
  const std::string id = lab_newest_id(home);
  const auto show = lab_cli(home, {"lab", "show", id, "--json"});
  EXPECT_EQ(show.output.find(secret), std::string::npos);
  EXPECT_NE(show.output.find("LAB_TEST_TOKEN"), std::string::npos);
  for (const auto& entry : fs::recursive_directory_iterator(home)) {
    if (!entry.is_regular_file()) continue;
    EXPECT_EQ(testing::read_bytes(entry.path()).find(secret), std::string::npos) << entry.path();
  }
}

}  // namespace gpulab
