// Shared data flags and --weights' input flags.
#include "apps/gpulab/data_flags.h"

#include <CLI/CLI.hpp>

#include "gpulab/core/error.h"
#include "gpulab/data/data_options.h"

namespace gpulab::app {

void DataFlags::add_to(CLI::App& cmd) {
  cmd.add_option("--image-size", image_size,
                 "Image folders: resize every image to HxW (default: the first image's size)")
      ->group("Data");
  cmd.add_option("--channels", channels,
                 "1 (grey) or 3 (RGB; grey images are replicated, e.g. for ImageNet "
                 "weights); default: with --weights, the weights' input channels, else the "
                 "data's (image folders: RGB when any of 64 sampled images is colour)")
      ->group("Data");
  cmd.add_flag("--skip-bad-files", skip_bad_files,
               "Skip undecodable images (reported with their count) instead of failing")
      ->group("Data");
  cmd.add_option("--limit", limit, "Use only the first N images of the data (0 = all)")
      ->group("Data");
  cmd.add_option("--classes", classes,
                 "Keep only these classes, by name or index, comma-separated (e.g. 0,1,2); "
                 "relabelled in the order given")
      ->delimiter(',')
      ->group("Data");
  cmd.add_option("--per-class", per_class,
                 "Training data: use only the first N images of each class (0 = all)")
      ->group("Data");
  cmd.add_option("--cache-dir", cache_dir,
                 "Remote data (s3://, http(s) URL lists): cache folder (default "
                 "$XDG_CACHE_HOME/gpulab/remote or ~/.cache/gpulab/remote)")
      ->group("Remote data");
  cmd.add_option("--fetch-threads", fetch_threads, "Remote data: parallel downloads (default 8)")
      ->group("Remote data");
}

void DataFlags::to_spec(nlohmann::json& d, const CLI::App& cmd) const {
  if (cmd.count("--image-size")) d["image_size"] = image_size;
  if (cmd.count("--channels")) d["channels"] = channels;
  if (cmd.count("--skip-bad-files")) d["skip_bad_files"] = true;
  if (cmd.count("--limit")) d["limit"] = limit;
  if (cmd.count("--classes")) d["classes"] = classes;
  if (cmd.count("--per-class")) d["per_class"] = per_class;
  if (cmd.count("--cache-dir")) d["cache_dir"] = cache_dir;
  if (cmd.count("--fetch-threads")) d["fetch_threads"] = fetch_threads;
}

void InputFlags::add_to(CLI::App& cmd) {
  cmd.add_option("--image-size", image_size,
                 "With --weights that record no input size (plain safetensors, TorchScript "
                 "without gpulab.json): the network's input HxW (default 224x224)");
  cmd.add_option("--channels", channels,
                 "With such --weights: the network's input channels, 1 or 3 (default 3; other "
                 "than 3, pixels are fed in [0, 1] without ImageNet's mean/std)");
}

models::PretrainedOptions InputFlags::options() const {
  GPULAB_CHECK(channels == 0 || channels == 1 || channels == 3, ErrorKind::kInvalidArgument,
               "--channels must be 1 or 3, got {}", channels);
  models::PretrainedOptions o;
  o.channels(channels);
  if (!image_size.empty()) {
    const auto [h, w] = data::parse_image_size(image_size);
    o.height(h).width(w);
  }
  return o;
}

}  // namespace gpulab::app
