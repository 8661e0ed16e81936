// Flags shared by the commands that read classification data.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "gpulab/data/datastore.h"
#include "gpulab/models/pretrained.h"

namespace CLI {
class App;
}

namespace gpulab::app {

struct DataFlags {
  std::string image_size;  // "HxW" or "" (first image's size)
  int channels = 0;        // 0 = the weights' or the data's (see --help)
  bool skip_bad_files = false;
  int64_t limit = 0;                 // use only the first N images (0 = all)
  std::vector<std::string> classes;  // keep only these classes (names or indices)
  int64_t per_class = 0;             // then the first N images of each (0 = all)
  // Remote --data (s3://, http(s) URL lists): cache folder ("" = the default,
  // ~/.cache/gpulab/remote) and parallel downloads.
  std::string cache_dir;
  int fetch_threads = 8;
  // Image folders: images with more pixels are refused (0 = the default
  // limit, kDefaultMaxPixels). Set from --max-pixels by the commands that
  // have it.
  int64_t max_pixels = 0;

  void add_to(CLI::App& cmd);
  data::DatastoreOptions options(data::IdxSplit split) const;
};

// --data/--val-data resolved once: remote data (s3://, an http(s) URL list)
// is fetched into the cache and read from its local view; `source` is what
// messages and spec.yaml show (a URL with its credentials redacted).
struct DataPath {
  std::string source;
  std::string local;
  // Remote data: each file of `local` (relative path) -> its object's URL;
  // null for local data.
  std::shared_ptr<const std::map<std::string, std::string>> sources;
  // Remote files left out as not found (--skip-bad-files): skipped files too.
  int64_t missing_files = 0;

  // How errors name `file`: "FILE (from URL)" for a file of remote data,
  // else FILE.
  std::string describe(const std::string& file) const;
  // describe() as a data::FileNamer; empty for local data.
  data::FileNamer file_namer() const;
};

// Fetches remote `path` (one "Fetched …" line unless quiet) or passes a
// local path through. Credentials and endpoint come from the AWS_* variables.
DataPath resolve_data_path(const std::string& path, const DataFlags& flags, bool quiet);

// predict and export with --weights: the input of weights whose file records
// none (plain safetensors, TorchScript without gpulab.json).
struct InputFlags {
  std::string image_size;  // "HxW" or "" (224x224)
  int channels = 0;        // 0 = 3

  void add_to(CLI::App& cmd);
  models::PretrainedOptions options() const;
};

// "HxW" (e.g. "28x28") as {height, width}. Throws Error(kInvalidArgument).
std::pair<int, int> parse_image_size(const std::string& text);

// Loads `path` (a local folder, or s3:// / an http(s) URL list fetched into
// the cache first, with one "Fetched …" line), applies the limit, prints
// per-label counts (unless quiet) and how many bad files were skipped.
// `skipped` (if given) receives the number of undecodable files skipped.
data::Dataset load_classification_data(const std::string& path, const DataFlags& flags,
                                       data::IdxSplit split, const std::string& role, bool quiet,
                                       int64_t* skipped = nullptr);
// As above, for a path already resolved.
data::Dataset load_classification_data(const DataPath& path, const DataFlags& flags,
                                       data::IdxSplit split, const std::string& role, bool quiet,
                                       int64_t* skipped = nullptr);

}  // namespace gpulab::app
