// Augmentation and loader flags shared by `train` and `bench loader`; they go
// into the run spec's data_options under the same keys as in --config YAML.
#pragma once

#include <map>
#include <string>

#include <nlohmann/json.hpp>

namespace CLI {
class App;
}

namespace gpulab::app {

struct LoaderFlags {
  std::map<std::string, std::string> transforms;  // data_options key -> flag text
  std::string loader = "auto";                    // auto | stream | resident
  int threads = 0;                                // decode threads, 0 = one per core
  int prefetch = 4;                               // steps prepared ahead
  int64_t max_pixels = 0;                         // 0 = the default limit

  void add_to(CLI::App& cmd);
  // The flags given on the command line into `data_options`.
  void to_spec(nlohmann::json& data_options, const CLI::App& cmd) const;
};

// The loader settings of a spec's data_options (defaults filled in).
struct LoaderSettings {
  nlohmann::json transforms = nlohmann::json::object();  // transform keys only
  std::string loader = "auto";
  int threads = 0;
  int prefetch = 4;
  int64_t max_pixels = 0;
};
LoaderSettings loader_settings(const nlohmann::json& data_options);

// Keys of data_options that belong to the loader or the transforms (a
// --config file may give them at its top level).
bool is_loader_key(const std::string& key);

}  // namespace gpulab::app
