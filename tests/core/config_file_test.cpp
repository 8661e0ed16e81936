// YAML config files as JSON, and spec emission.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "gpulab/core/config_file.h"
#include "gpulab/core/error.h"
#include "tests/support/test_util.h"

namespace gpulab::core {

TEST(ConfigFileTest, ParsesScalarsAsTypedValues) {
  testing::TempDir dir;
  testing::write_bytes(dir / "c.yaml",
                       "batch_size: 64\nlearn_rate: 0.05\nverbose: false\nsolver: adam\n"
                       "quoted: \"12\"\nlist: [1, 2]\n");
  auto j = load_yaml_file(dir / "c.yaml");
  EXPECT_EQ(j["batch_size"], 64);
  EXPECT_DOUBLE_EQ(j["learn_rate"].get<double>(), 0.05);
  EXPECT_EQ(j["verbose"], false);
  EXPECT_EQ(j["solver"], "adam");
  EXPECT_EQ(j["quoted"], "12");
  EXPECT_EQ(j["list"].size(), 2u);
}

TEST(ConfigFileTest, RejectsInvalidYamlNamingTheFile) {
  testing::TempDir dir;
  testing::write_bytes(dir / "bad.yaml", "a: [1, 2\nb: }\n");
  try {
    load_yaml_file(dir / "bad.yaml");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kCorruptData);
    EXPECT_NE(std::string(e.what()).find("bad.yaml"), std::string::npos);
  }
}

TEST(ConfigFileTest, YamlRoundTripKeepsValues) {
  testing::TempDir dir;
  nlohmann::json spec = {{"model", "basic_cnn"},
                         {"options", {{"batch_size", 32}, {"learn_rate", 0.001}}}};
  testing::write_bytes(dir / "spec.yaml", json_to_yaml(spec));
  EXPECT_EQ(load_yaml_file(dir / "spec.yaml"), spec);
}

// Regression: --classes 5,6 was written to spec.yaml as [5, 6] and read back
// as numbers, so --resume failed with a JSON type error.
TEST(ConfigFileTest, StringsThatLookLikeOtherTypesStayStringsThroughYaml) {
  testing::TempDir dir;
  nlohmann::json spec = {{"classes", {"5", "6", "Bag"}},
                         {"flags", {"true", "null", "1e3", "0.5", "7x"}},
                         {"count", 5}};
  testing::write_bytes(dir / "spec.yaml", json_to_yaml(spec));
  EXPECT_EQ(load_yaml_file(dir / "spec.yaml"), spec) << json_to_yaml(spec);
}

}  // namespace gpulab::core
