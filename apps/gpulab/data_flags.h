// Flags shared by the commands that read classification data.
#pragma once

#include <string>
#include <vector>

#include "gpulab/data/datastore.h"

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

// Loads `path` (a local folder, or s3:// / an http(s) URL list fetched into
// the cache first, with one "Fetched …" line), applies the limit, prints
// per-label counts (unless quiet) and how many bad files were skipped.
// `skipped` (if given) receives the number of undecodable files skipped.
data::Dataset load_classification_data(const std::string& path, const DataFlags& flags,
                                       data::IdxSplit split, const std::string& role, bool quiet,
                                       int64_t* skipped = nullptr);

}  // namespace gpulab::app
