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

  void add_to(CLI::App& cmd);
  data::DatastoreOptions options(data::IdxSplit split) const;
};

// Loads `path`, applies the limit, prints per-label counts (unless quiet) and
// how many bad files were skipped.
// `skipped` (if given) receives the number of undecodable files skipped.
data::Dataset load_classification_data(const std::string& path, const DataFlags& flags,
                                       data::IdxSplit split, const std::string& role, bool quiet,
                                       int64_t* skipped = nullptr);

}  // namespace gpulab::app
