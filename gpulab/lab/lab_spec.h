// The lab spec: a YAML file naming a command, its inputs (fetched before the
// run), mounts (read-only folders), parameters, hardware and the names of
// environment variables to pass. docs/labs.md is the reference.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace gpulab::lab {

// Written into every stored spec; loaders accept this version and older.
constexpr int kLabSpecFormatVersion = 1;

struct LabInput {
  std::string name;  // file name under inputs/ (no '/', not "." or "..")
  // http(s)://…, s3://BUCKET/KEY, exec://EXECUTION_ID/outputs/PATH, or a file
  // or folder path (made absolute against the spec file's folder).
  std::string url;
};

struct LabMount {
  std::string path;  // an existing folder, absolute after loading
  std::string name;  // link name under mounts/
};

struct LabHardware {
  std::string type = "cpu";       // "cpu" or "gpu"
  int gpus = 0;                   // 0 for cpu; >= 1 for gpu (default 1)
  std::string to_string() const;  // "cpu" or "gpu:N"
};

struct LabSpec {
  int format_version = kLabSpecFormatVersion;
  std::string name;
  // argv without parameters. When `gpulab_command`, command[0] is a gpulab
  // subcommand (train, predict…) and the running gpulab binary is prepended
  // at launch; otherwise command[0] is a program looked up on PATH.
  std::vector<std::string> command;
  bool gpulab_command = false;
  std::vector<LabInput> inputs;
  std::vector<LabMount> mounts;
  std::vector<std::string> parameters;  // each `pass-as`, appended in order
  LabHardware hardware;
  std::vector<std::string> env;  // variable names only, never values

  // argv as launched: [gpulab_binary] + command + parameters.
  std::vector<std::string> argv(const std::string& gpulab_binary) const;
};

// Parses spec text. `source` names it in messages ("lab.yaml"); relative
// file paths of inputs and mounts are made absolute against `base_dir`
// ("" = the current folder). Throws Error(kInvalidArgument) naming the
// source, the line and the key with what was expected:
//   "lab spec 'lab.yaml' line 7: `hardware.type`: expected cpu or gpu, found 'tpu'".
LabSpec parse_lab_spec(const std::string& text, const std::string& source,
                       const std::string& base_dir = "");

// Reads and parses a spec file (paths relative to its folder). Throws
// Error(kNotFound) for a missing file.
LabSpec load_lab_spec(const std::string& path);

// The spec as JSON (every key, defaults filled in), and as the YAML that is
// stored with each execution; parse_lab_spec reads both back.
nlohmann::json lab_spec_to_json(const LabSpec& spec);
std::string lab_spec_to_yaml(const LabSpec& spec);

// sha256 of the canonical form (compact JSON, keys sorted) as 64 hex digits:
// equal specs hash equal whatever their YAML layout.
std::string lab_spec_hash(const LabSpec& spec);

// The gpulab subcommands a `command` may start with.
const std::vector<std::string>& gpulab_subcommands();

}  // namespace gpulab::lab
