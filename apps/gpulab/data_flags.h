// Flags shared by the commands that read classification data.
#pragma once

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
  int channels = 0;        // 0 = first image's
  bool skip_bad_files = false;
  int64_t limit = 0;                 // use only the first N images (0 = all)
  std::vector<std::string> classes;  // keep only these classes (names or indices)
  int64_t per_class = 0;             // then the first N images of each (0 = all)
  // Remote --data (s3://, http(s) URL lists): cache folder ("" = the default,
  // ~/.cache/gpulab/remote) and parallel downloads.
  std::string cache_dir;
  int fetch_threads = 8;

  void add_to(CLI::App& cmd);
  data::DatastoreOptions options(data::IdxSplit split) const;
};

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

}  // namespace gpulab::app
