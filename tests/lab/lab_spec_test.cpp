// Lab specs: every key parsed, errors naming the file, line and key, a hash
// independent of the YAML layout, and SHA-256 against FIPS test vectors.
#include "gpulab/lab/lab_spec.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "gpulab/core/error.h"
#include "gpulab/lab/sha256.h"
#include "tests/support/test_util.h"

namespace gpulab::lab {
namespace {

const char* kLabFullSpec = R"(name: style-train
command: [train, --task, style, --data, ../mounts/photos]
inputs:
  - name: style.jpg
    url: https://example.com/starry_night.jpg
  - name: model.safetensors
    url: exec://0123456789ab/outputs/run/model.safetensors
  - name: local.txt
    url: data/local.txt
mounts:
  - path: /srv/photos
    name: photos
parameters:
  - pass-as: --epochs=2
  - pass-as: --style-image=../inputs/style.jpg
hardware:
  type: gpu
  gpus: 2
env: [HF_TOKEN, WANDB_API_KEY]
)";

std::string lab_spec_error(const std::string& text) {
  return testing::error_of([&] { parse_lab_spec(text, "lab.yaml", "/base"); });
}

}  // namespace

TEST(LabSpecTest, ParsesEveryKey) {
  const LabSpec spec = parse_lab_spec(kLabFullSpec, "lab.yaml", "/base");
  EXPECT_EQ(spec.name, "style-train");
  EXPECT_TRUE(spec.gpulab_command);
  ASSERT_EQ(spec.inputs.size(), 3u);
  EXPECT_EQ(spec.inputs[1].url, "exec://0123456789ab/outputs/run/model.safetensors");
  EXPECT_EQ(spec.inputs[2].url, "/base/data/local.txt");  // relative to the spec's folder
  ASSERT_EQ(spec.mounts.size(), 1u);
  EXPECT_EQ(spec.mounts[0].name, "photos");
  EXPECT_EQ(spec.hardware.to_string(), "gpu:2");
  EXPECT_EQ(spec.env, (std::vector<std::string>{"HF_TOKEN", "WANDB_API_KEY"}));
  const auto argv = spec.argv("/usr/bin/gpulab");
  const std::vector<std::string> want = {"/usr/bin/gpulab", "train",
                                         "--task",          "style",
                                         "--data",          "../mounts/photos",
                                         "--epochs=2",      "--style-image=../inputs/style.jpg"};
  EXPECT_EQ(argv, want);
}

TEST(LabSpecTest, ACommandStringIsSplitAndAProgramIsNotPrefixed) {
  const LabSpec spec =
      parse_lab_spec("name: s\ncommand: sh -c 'echo hi there'\n", "lab.yaml", "/base");
  EXPECT_FALSE(spec.gpulab_command);
  EXPECT_EQ(spec.argv("/g"), (std::vector<std::string>{"sh", "-c", "echo hi there"}));
  const LabSpec g = parse_lab_spec("name: s\ncommand: gpulab info\n", "lab.yaml");
  EXPECT_TRUE(g.gpulab_command);
  EXPECT_EQ(g.argv("/g"), (std::vector<std::string>{"/g", "info"}));
  EXPECT_EQ(g.hardware.to_string(), "cpu");
}

TEST(LabSpecTest, ErrorsNameTheFileTheLineAndTheKey) {
  std::string e = lab_spec_error("name: a\ncommand: [info]\nhardware:\n  type: tpu\n");
  EXPECT_NE(e.find("lab spec 'lab.yaml' line 4: `hardware.type`: expected cpu or gpu, found 'tpu'"),
            std::string::npos)
      << e;
  e = lab_spec_error("name: a\ncommand: [info]\ninputs:\n  - name: x\n    uri: http://h/x\n");
  EXPECT_NE(e.find("line 5: `inputs[0].uri`: unknown key; expected one of: name, url"),
            std::string::npos)
      << e;
  e = lab_spec_error("name: a\ncommand: [info]\nenv:\n  - HF_TOKEN: abc\n");
  EXPECT_NE(e.find("line 4: `env[0]`: expected a variable name"), std::string::npos) << e;
  e = lab_spec_error("name: a\ncommand: [info]\ninputs:\n  - name: m\n    url: exec://abc/model\n");
  EXPECT_NE(e.find("line 5: `inputs[0].url`: expected exec://EXECUTION_ID/outputs/PATH"),
            std::string::npos)
      << e;
  e = lab_spec_error("command: [info]\n");
  EXPECT_NE(e.find("`name`: missing"), std::string::npos) << e;
  e = lab_spec_error("name: a\ncommand: [info]\nhardware: {type: cpu, gpus: 2}\n");
  EXPECT_NE(e.find("line 3: `hardware.gpus`: expected 0 with `hardware.type: cpu`"),
            std::string::npos)
      << e;
  e = lab_spec_error("name: a\ncommand: [info]\nparameters:\n  - {pass-as: --a=1}\n  - [x]\n");
  EXPECT_NE(e.find("line 5: `parameters[1]`: expected a mapping"), std::string::npos) << e;
  e = lab_spec_error("name: a\ncommand: [info\n");
  EXPECT_NE(e.find("lab spec 'lab.yaml' line"), std::string::npos) << e;
  EXPECT_NE(e.find("not valid YAML"), std::string::npos) << e;
  e = lab_spec_error("name: a\ncommand: [info]\nhardwareType: gpu\n");
  EXPECT_NE(e.find("line 3: `hardwareType`: unknown key; expected one of: format_version, name"),
            std::string::npos)
      << e;
}

TEST(LabSpecTest, TheStoredYamlReadsBackWithTheSameHash) {
  const LabSpec spec = parse_lab_spec(kLabFullSpec, "lab.yaml", "/base");
  const std::string yaml = lab_spec_to_yaml(spec);
  const LabSpec back = parse_lab_spec(yaml, "spec.yaml");
  EXPECT_EQ(lab_spec_hash(back), lab_spec_hash(spec)) << yaml;
  EXPECT_EQ(lab_spec_to_json(back), lab_spec_to_json(spec));
  EXPECT_NE(yaml.find("format_version: 1"), std::string::npos) << yaml;
  // Layout does not matter; content does.
  const LabSpec flow = parse_lab_spec("{name: s, command: [info]}", "a.yaml");
  const LabSpec block = parse_lab_spec("name: s\ncommand:\n  - info\n", "b.yaml");
  EXPECT_EQ(lab_spec_hash(flow), lab_spec_hash(block));
  const LabSpec other = parse_lab_spec("name: s\ncommand: [info, --json, x]\n", "c.yaml");
  EXPECT_NE(lab_spec_hash(flow), lab_spec_hash(other));
  EXPECT_EQ(lab_spec_hash(flow).size(), 64u);
  // An empty spec lists round-trip too.
  EXPECT_EQ(lab_spec_hash(parse_lab_spec(lab_spec_to_yaml(flow), "s.yaml")), lab_spec_hash(flow));
}

TEST(LabSpecTest, Sha256MatchesTheFipsVectors) {
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  Sha256 million;
  const std::string chunk(1000, 'a');
  for (int i = 0; i < 1000; ++i) million.update(chunk);
  EXPECT_EQ(million.hex_digest(),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

}  // namespace gpulab::lab
