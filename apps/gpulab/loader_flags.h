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

}  // namespace gpulab::app
