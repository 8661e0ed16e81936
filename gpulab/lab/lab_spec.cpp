// Lab spec parsing with yaml-cpp, so every error carries the node's line.
#include "gpulab/lab/lab_spec.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "gpulab/core/atomic_file.h"
#include "gpulab/core/config_file.h"
#include "gpulab/core/error.h"
#include "gpulab/core/text.h"
#include "gpulab/lab/sha256.h"

namespace gpulab::lab {
namespace {
namespace fs = std::filesystem;

const std::vector<std::string> kTopKeys = {"format_version", "name",       "command",  "inputs",
                                           "mounts",         "parameters", "hardware", "env"};

class SpecReader {
 public:
  SpecReader(std::string source, std::string base_dir)
      : source_(std::move(source)), base_dir_(std::move(base_dir)) {}

  [[noreturn]] void fail(const YAML::Node& node, const std::string& key,
                         const std::string& what) const {
    const int line = node.IsDefined() && node.Mark().line >= 0 ? node.Mark().line + 1 : 0;
    if (line > 0) {
      GPULAB_FAIL(ErrorKind::kInvalidArgument, "lab spec '{}' line {}: `{}`: {}", source_, line,
                  key, what);
    }
    GPULAB_FAIL(ErrorKind::kInvalidArgument, "lab spec '{}': `{}`: {}", source_, key, what);
  }

  static std::string found(const YAML::Node& node) {
    if (node.IsScalar()) return "'" + node.Scalar() + "'";
    if (node.IsSequence()) return "a list";
    if (node.IsMap()) return "a mapping";
    return "nothing";
  }

  std::string scalar(const YAML::Node& node, const std::string& key) const {
    if (!node.IsScalar()) fail(node, key, "expected a text value, found " + found(node));
    return node.Scalar();
  }

  std::string non_empty(const YAML::Node& node, const std::string& key) const {
    std::string value = scalar(node, key);
    if (value.empty()) fail(node, key, "expected a non-empty value, found ''");
    return value;
  }

  int integer(const YAML::Node& node, const std::string& key, int min) const {
    const std::string text = scalar(node, key);
    const std::optional<int> parsed = core::parse_int(text);
    const int value = parsed.value_or(0);
    if (!parsed || value < min) {
      fail(node, key, fmt::format("expected an integer >= {}, found '{}'", min, text));
    }
    return value;
  }

  // A name used as a file name under inputs/ or mounts/.
  std::string file_name(const YAML::Node& node, const std::string& key) const {
    std::string name = non_empty(node, key);
    if (name.find('/') != std::string::npos || name == "." || name == "..") {
      fail(node, key, "expected a plain file name (no '/', not '.' or '..'), found '" + name + "'");
    }
    return name;
  }

  void check_keys(const YAML::Node& map, const std::string& where,
                  const std::vector<std::string>& valid) const {
    for (const auto& kv : map) {
      const std::string k = kv.first.Scalar();
      if (std::find(valid.begin(), valid.end(), k) == valid.end()) {
        fail(kv.first, where.empty() ? k : where + "." + k,
             fmt::format("unknown key; expected one of: {}", fmt::join(valid, ", ")));
      }
    }
  }

  YAML::Node list(const YAML::Node& node, const std::string& key) const {
    if (!node.IsSequence()) fail(node, key, "expected a list, found " + found(node));
    return node;
  }

  YAML::Node map(const YAML::Node& node, const std::string& key) const {
    if (!node.IsMap()) fail(node, key, "expected a mapping, found " + found(node));
    return node;
  }

  std::string absolute(const std::string& path) const {
    if (path.empty() || path[0] == '/') return path;
    const fs::path base = base_dir_.empty() ? fs::current_path() : fs::path(base_dir_);
    return fs::absolute(base / path).lexically_normal().string();
  }

  LabSpec read(const YAML::Node& root) const {
    LabSpec spec;
    if (!root.IsMap())
      fail(root, "(top level)", "expected a mapping of keys, found " + found(root));
    check_keys(root, "", kTopKeys);
    if (root["format_version"]) {
      spec.format_version = integer(root["format_version"], "format_version", 1);
      if (spec.format_version > kLabSpecFormatVersion) {
        fail(root["format_version"], "format_version",
             fmt::format("expected {} or older, found {} — is this gpulab too old for the spec?",
                         kLabSpecFormatVersion, spec.format_version));
      }
    }
    if (!root["name"]) fail(root, "name", "missing; expected the lab's name");
    spec.name = non_empty(root["name"], "name");
    read_command(root, spec);
    if (const auto inputs = root["inputs"]) {
      for (size_t i = 0; i < list(inputs, "inputs").size(); ++i) {
        const std::string key = fmt::format("inputs[{}]", i);
        const YAML::Node item = map(inputs[i], key);
        check_keys(item, key, {"name", "url"});
        if (!item["name"]) fail(item, key + ".name", "missing; expected the input's file name");
        if (!item["url"])
          fail(item, key + ".url", "missing; expected http(s)://, s3://, exec:// or a path");
        LabInput input{file_name(item["name"], key + ".name"),
                       non_empty(item["url"], key + ".url")};
        for (const auto& other : spec.inputs) {
          if (other.name == input.name)
            fail(item["name"], key + ".name", "duplicate input name '" + input.name + "'");
        }
        const std::string& u = input.url;
        const bool remote = u.rfind("http://", 0) == 0 || u.rfind("https://", 0) == 0 ||
                            u.rfind("s3://", 0) == 0 || u.rfind("exec://", 0) == 0;
        if (!remote && u.find("://") != std::string::npos) {
          fail(item["url"], key + ".url",
               "expected http://, https://, s3://, exec://ID/outputs/PATH or a file path, found '" +
                   u + "'");
        }
        if (u.rfind("exec://", 0) == 0) {
          const size_t slash = u.find('/', 7);
          if (slash == std::string::npos || slash == 7 || u.compare(slash, 9, "/outputs/") != 0 ||
              u.size() <= slash + 9) {
            fail(item["url"], key + ".url",
                 "expected exec://EXECUTION_ID/outputs/PATH, found '" + u + "'");
          }
        }
        if (!remote) input.url = absolute(u);
        spec.inputs.push_back(std::move(input));
      }
    }
    if (const auto mounts = root["mounts"]) {
      for (size_t i = 0; i < list(mounts, "mounts").size(); ++i) {
        const std::string key = fmt::format("mounts[{}]", i);
        const YAML::Node item = map(mounts[i], key);
        check_keys(item, key, {"path", "name"});
        if (!item["path"]) fail(item, key + ".path", "missing; expected a folder path");
        if (!item["name"]) fail(item, key + ".name", "missing; expected the name under mounts/");
        LabMount mount{absolute(non_empty(item["path"], key + ".path")),
                       file_name(item["name"], key + ".name")};
        for (const auto& other : spec.mounts) {
          if (other.name == mount.name)
            fail(item["name"], key + ".name", "duplicate mount name '" + mount.name + "'");
        }
        spec.mounts.push_back(std::move(mount));
      }
    }
    if (const auto parameters = root["parameters"]) {
      for (size_t i = 0; i < list(parameters, "parameters").size(); ++i) {
        const std::string key = fmt::format("parameters[{}]", i);
        const YAML::Node item = parameters[i];
        if (item.IsScalar()) {
          spec.parameters.push_back(non_empty(item, key));
          continue;
        }
        map(item, key);
        check_keys(item, key, {"pass-as"});
        if (!item["pass-as"]) fail(item, key + ".pass-as", "missing; expected e.g. --epochs=2");
        spec.parameters.push_back(non_empty(item["pass-as"], key + ".pass-as"));
      }
    }
    if (const auto hardware = root["hardware"]) {
      map(hardware, "hardware");
      check_keys(hardware, "hardware", {"type", "gpus"});
      if (hardware["type"]) {
        spec.hardware.type = scalar(hardware["type"], "hardware.type");
        if (spec.hardware.type != "cpu" && spec.hardware.type != "gpu") {
          fail(hardware["type"], "hardware.type",
               "expected cpu or gpu, found '" + spec.hardware.type + "'");
        }
      }
      spec.hardware.gpus = spec.hardware.type == "gpu" ? 1 : 0;
      if (hardware["gpus"]) {
        spec.hardware.gpus = integer(hardware["gpus"], "hardware.gpus", 0);
        if (spec.hardware.type == "cpu" && spec.hardware.gpus != 0) {
          fail(hardware["gpus"], "hardware.gpus",
               "expected 0 with `hardware.type: cpu`, found " + std::to_string(spec.hardware.gpus));
        }
        if (spec.hardware.type == "gpu" && spec.hardware.gpus < 1) {
          fail(hardware["gpus"], "hardware.gpus",
               "expected at least 1 with `hardware.type: gpu`, found 0");
        }
      }
    }
    if (const auto env = root["env"]) {
      for (size_t i = 0; i < list(env, "env").size(); ++i) {
        const std::string key = fmt::format("env[{}]", i);
        if (env[i].IsMap()) {
          fail(env[i], key,
               "expected a variable name (values come from the submitting "
               "environment and are never written in a spec), found a mapping");
        }
        const std::string name = non_empty(env[i], key);
        const bool valid = (std::isalpha(static_cast<unsigned char>(name[0])) || name[0] == '_') &&
                           std::all_of(name.begin(), name.end(), [](char c) {
                             return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
                           });
        if (!valid || name.find('=') != std::string::npos) {
          fail(env[i], key,
               "expected a variable name like HF_TOKEN (letters, digits, '_'), found '" + name +
                   "'");
        }
        spec.env.push_back(name);
      }
    }
    return spec;
  }

  void read_command(const YAML::Node& root, LabSpec& spec) const {
    const YAML::Node command = root["command"];
    if (!command)
      fail(root, "command",
           "missing; expected a gpulab subcommand with its arguments or a program");
    if (command.IsScalar()) {
      spec.command = split_words(command);
    } else if (command.IsSequence()) {
      for (size_t i = 0; i < command.size(); ++i) {
        spec.command.push_back(scalar(command[i], fmt::format("command[{}]", i)));
      }
    } else {
      fail(command, "command", "expected a list or a string, found " + found(command));
    }
    if (spec.command.empty() || spec.command[0].empty())
      fail(command, "command", "expected a command, found an empty one");
    if (spec.command[0] == "gpulab") {
      spec.command.erase(spec.command.begin());
      if (spec.command.empty())
        fail(command, "command", "expected a gpulab subcommand after 'gpulab'");
      const auto& subs = gpulab_subcommands();
      if (std::find(subs.begin(), subs.end(), spec.command[0]) == subs.end()) {
        fail(command, "command",
             fmt::format("expected a gpulab subcommand ({}), found '{}'", fmt::join(subs, ", "),
                         spec.command[0]));
      }
    }
    const auto& subs = gpulab_subcommands();
    spec.gpulab_command = std::find(subs.begin(), subs.end(), spec.command[0]) != subs.end();
  }

  // Shell-like words: spaces separate, single and double quotes group.
  std::vector<std::string> split_words(const YAML::Node& node) const {
    const std::string& text = node.Scalar();
    std::vector<std::string> words;
    std::string word;
    bool in_word = false;
    char quote = 0;
    for (char c : text) {
      if (quote) {
        if (c == quote) {
          quote = 0;
        } else {
          word += c;
        }
      } else if (c == '\'' || c == '"') {
        quote = c;
        in_word = true;
      } else if (std::isspace(static_cast<unsigned char>(c))) {
        if (in_word) words.push_back(word);
        word.clear();
        in_word = false;
      } else {
        word += c;
        in_word = true;
      }
    }
    if (quote) fail(node, "command", "expected a closing quote in '" + text + "'");
    if (in_word) words.push_back(word);
    return words;
  }

 private:
  std::string source_;
  std::string base_dir_;
};

}  // namespace

std::string LabHardware::to_string() const {
  return type == "gpu" ? "gpu:" + std::to_string(gpus) : type;
}

const std::vector<std::string>& gpulab_subcommands() {
  static const std::vector<std::string> kNames = {"train",  "evaluate", "predict", "stream",
                                                  "export", "info",     "launch",  "bench"};
  return kNames;
}

std::vector<std::string> LabSpec::argv(const std::string& gpulab_binary) const {
  std::vector<std::string> out;
  if (gpulab_command) out.push_back(gpulab_binary);
  out.insert(out.end(), command.begin(), command.end());
  out.insert(out.end(), parameters.begin(), parameters.end());
  return out;
}

LabSpec parse_lab_spec(const std::string& text, const std::string& source,
                       const std::string& base_dir) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::ParserException& e) {
    GPULAB_FAIL(ErrorKind::kInvalidArgument, "lab spec '{}' line {}: not valid YAML: {}", source,
                e.mark.line + 1, e.msg);
  }
  return SpecReader(source, base_dir).read(root);
}

LabSpec load_lab_spec(const std::string& path) {
  GPULAB_CHECK(fs::is_regular_file(path), ErrorKind::kNotFound,
               "lab spec '{}' not found: expected a YAML file (see docs/labs.md)", path);
  const fs::path dir = fs::absolute(path).parent_path();
  return parse_lab_spec(core::read_file(path), path, dir.string());
}

nlohmann::json lab_spec_to_json(const LabSpec& spec) {
  nlohmann::json j;
  j["format_version"] = spec.format_version;
  j["name"] = spec.name;
  j["command"] = spec.gpulab_command ? nlohmann::json::array({"gpulab"}) : nlohmann::json::array();
  for (const auto& word : spec.command) j["command"].push_back(word);
  j["inputs"] = nlohmann::json::array();
  for (const auto& in : spec.inputs) j["inputs"].push_back({{"name", in.name}, {"url", in.url}});
  j["mounts"] = nlohmann::json::array();
  for (const auto& m : spec.mounts) j["mounts"].push_back({{"path", m.path}, {"name", m.name}});
  j["parameters"] = nlohmann::json::array();
  for (const auto& p : spec.parameters) j["parameters"].push_back({{"pass-as", p}});
  j["hardware"] = {{"type", spec.hardware.type}, {"gpus", spec.hardware.gpus}};
  j["env"] = spec.env;
  return j;
}

std::string lab_spec_to_yaml(const LabSpec& spec) {
  // Keep the reader's key order rather than json's sorted one.
  const nlohmann::json j = lab_spec_to_json(spec);
  std::string out;
  for (const auto& key : kTopKeys) {
    nlohmann::json one = nlohmann::json::object();
    one[key] = j[key];
    out += core::json_to_yaml(one);
    if (!out.empty() && out.back() != '\n') out += '\n';
  }
  return out;
}

std::string lab_spec_hash(const LabSpec& spec) {
  return sha256_hex(lab_spec_to_json(spec).dump());
}

}  // namespace gpulab::lab
