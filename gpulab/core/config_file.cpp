// YAML <-> JSON conversion through yaml-cpp.
#include "gpulab/core/config_file.h"

#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "gpulab/core/error.h"

namespace gpulab::core {
namespace {}  // namespace

nlohmann::json parse_scalar(const std::string& s) {
  if (s == "true" || s == "True") return true;
  if (s == "false" || s == "False") return false;
  if (s == "null" || s == "~") return nullptr;
  try {
    size_t used = 0;
    long long i = std::stoll(s, &used);
    if (used == s.size()) return i;
  } catch (...) {
  }
  try {
    size_t used = 0;
    double d = std::stod(s, &used);
    if (used == s.size()) return d;
  } catch (...) {
  }
  return s;
}

namespace {

nlohmann::json node_to_json(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map: {
      nlohmann::json obj = nlohmann::json::object();
      for (const auto& kv : node) obj[kv.first.as<std::string>()] = node_to_json(kv.second);
      return obj;
    }
    case YAML::NodeType::Sequence: {
      nlohmann::json arr = nlohmann::json::array();
      for (const auto& item : node) arr.push_back(node_to_json(item));
      return arr;
    }
    case YAML::NodeType::Scalar:
      // Quoted scalars stay strings.
      if (node.Tag() == "!") return node.as<std::string>();
      return parse_scalar(node.as<std::string>());
    default:
      return nullptr;
  }
}

void emit(YAML::Emitter& out, const nlohmann::json& v) {
  if (v.is_object()) {
    out << YAML::BeginMap;
    for (auto it = v.begin(); it != v.end(); ++it) {
      out << YAML::Key << it.key() << YAML::Value;
      emit(out, it.value());
    }
    out << YAML::EndMap;
  } else if (v.is_array()) {
    out << YAML::Flow << YAML::BeginSeq;
    for (const auto& item : v) emit(out, item);
    out << YAML::EndSeq;
  } else if (v.is_string()) {
    // "5" or "true" written bare would read back as a number or a boolean.
    const std::string text = v.get<std::string>();
    if (!parse_scalar(text).is_string()) out << YAML::DoubleQuoted;
    out << text;
  } else if (v.is_null()) {
    out << YAML::Null;
  } else {
    out << v.dump();
  }
}

}  // namespace

nlohmann::json load_yaml_file(const std::string& path) {
  GPULAB_CHECK(std::filesystem::exists(path), ErrorKind::kNotFound,
               "config file '{}' does not exist", path);
  try {
    YAML::Node root = YAML::LoadFile(path);
    nlohmann::json value = node_to_json(root);
    GPULAB_CHECK(value.is_object() || value.is_null(), ErrorKind::kCorruptData,
                 "config file '{}' must be a mapping of option names to values", path);
    return value.is_null() ? nlohmann::json::object() : value;
  } catch (const YAML::Exception& e) {
    GPULAB_FAIL(ErrorKind::kCorruptData, "config file '{}' is not valid YAML: {}", path, e.what());
  }
}

std::string json_to_yaml(const nlohmann::json& value) {
  YAML::Emitter out;
  emit(out, value);
  return std::string(out.c_str()) + "\n";
}

}  // namespace gpulab::core
