// Reading YAML configuration files (`--config FILE.yaml`) as JSON values, so
// one code path merges config files and flags.
#pragma once

#include <string>

#include <nlohmann/json_fwd.hpp>

namespace gpulab::core {

// Parses a YAML (or JSON) file into JSON. Scalars become numbers or booleans
// when they look like one. Throws Error(kNotFound) / Error(kCorruptData)
// naming the file and the line of a syntax error.
nlohmann::json load_yaml_file(const std::string& path);

// Emits JSON as block-style YAML (used for RUN_DIR/spec.yaml); strings that
// would read back as another type ("5", "true") are quoted.
std::string json_to_yaml(const nlohmann::json& value);

}  // namespace gpulab::core

namespace gpulab::core {

// A command-line or YAML scalar as JSON: "3" -> 3, "0.5" -> 0.5, "true" -> true,
// anything else stays a string.
nlohmann::json parse_scalar(const std::string& text);

}  // namespace gpulab::core
