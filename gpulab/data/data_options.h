// A run's data options: the spec's `data_options` object, with the keys of
// --config YAML and spec.yaml, parsed and checked once. The CLI's data flags,
// lab parameters and the server's JSON all fill this in.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "gpulab/data/datastore.h"
#include "gpulab/data/transforms.h"

namespace gpulab::data {

struct DataOptions {
  int height = 0, width = 0;         // image_size "HxW"; 0 = the first image's size
  int channels = 0;                  // 1 or 3; 0 = the data's (or the weights')
  bool skip_bad_files = false;       // leave out (and count) undecodable files
  int64_t limit = 0;                 // only the first N images (0 = all)
  std::vector<std::string> classes;  // only these classes (names or indices)
  int64_t per_class = 0;             // then only the first N images of each
  std::string cache_dir;             // remote data cache ("" = the default)
  int fetch_threads = 8;             // parallel downloads of remote data
  nlohmann::json transforms = nlohmann::json::object();  // transform keys only
  std::string loader = "auto";                           // auto | stream | resident
  int loader_threads = 0;                                // decode threads, 0 = one per core
  int prefetch = 4;                                      // batches prepared ahead
  int64_t max_pixels = 0;  // larger images are refused; 0 = kDefaultMaxPixels

  // From a data_options object. Throws Error(kInvalidArgument) naming
  // `origin` (a file, "flags") and the key for an unknown key, a value of the
  // wrong type or out of range, or a transform that does not parse.
  static DataOptions from_json(const nlohmann::json& data_options, const std::string& origin);

  int64_t pixel_limit() const { return max_pixels > 0 ? max_pixels : kDefaultMaxPixels; }
  // For load_datastore: split, channels, size, skipping, pixel limit.
  DatastoreOptions datastore(IdxSplit split) const;
  // The transforms at the chosen size and channels (output size not yet fixed).
  TransformOptions base_transforms() const;
};

// Whether `key` is a data option (a data key or a transform key).
bool is_data_option(const std::string& key);

// Checks one data option where it is given, so the error names its origin
// (the --config file, a flag): a known key, a value of its type, a
// transform that parses. Throws Error(kInvalidArgument).
void check_data_option(const std::string& key, const nlohmann::json& value,
                       const std::string& origin);

// "HxW" (e.g. "28x28") as {height, width}. Throws Error(kInvalidArgument)
// naming the option key image_size.
std::pair<int, int> parse_image_size(const std::string& text);

}  // namespace gpulab::data
