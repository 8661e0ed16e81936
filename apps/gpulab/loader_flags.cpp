// Flag table for the transforms and the loader.
#include "apps/gpulab/loader_flags.h"

#include <CLI/CLI.hpp>

#include "gpulab/core/error.h"
#include "gpulab/data/transforms.h"

namespace gpulab::app {
namespace {

struct TransformFlag {
  const char* flag;
  const char* key;
  const char* help;
};

// Valued flags; a range is MIN,MAX (write --flag=-3,3 when MIN is negative).
const std::vector<TransformFlag> kTransformFlags = {
    {"--augment", "augment",
     "Shorthands, comma-separated: x-reflection, y-reflection, random-resized-crop (224), "
     "translation (-3,3 px), scale (0.9,1.1), color-jitter (0.2,0.2,0.2)"},
    {"--resize", "resize", "Resize every image to HxW (or NxN) before a centre crop"},
    {"--center-crop", "center_crop", "Centre crop N or HxW (after --resize)"},
    {"--random-resized-crop", "random_resized_crop",
     "RandomResizedCrop to NxN (area --crop-scale, aspect --crop-ratio)"},
    {"--crop-scale", "crop_scale", "Random resized crop: area fraction MIN,MAX (0.08,1)"},
    {"--crop-ratio", "crop_ratio", "Random resized crop: aspect ratio MIN,MAX (0.75,1.333)"},
    {"--rand-x-translation", "rand_x_translation",
     "RandXTranslation: shift MIN,MAX pixels (or V for -V,V), zero fill"},
    {"--rand-y-translation", "rand_y_translation", "RandYTranslation: as --rand-x-translation"},
    {"--rand-x-scale", "rand_x_scale", "RandXScale: factor MIN,MAX about the centre"},
    {"--rand-y-scale", "rand_y_scale", "RandYScale: factor MIN,MAX about the centre"},
    {"--rand-scale", "rand_scale", "RandScale: the same factor range for x and y"},
    {"--color-jitter", "color_jitter",
     "ColorJitter BRIGHTNESS,CONTRAST,SATURATION (factors in [1-v, 1+v])"},
};

}  // namespace

void LoaderFlags::add_to(CLI::App& cmd) {
  for (const auto& f : kTransformFlags) {
    cmd.add_option_function<std::string>(
           f.flag, [this, key = std::string(f.key)](const std::string& v) { transforms[key] = v; },
           f.help)
        ->allow_extra_args(false)
        ->group("Augmentation");
  }
  cmd.add_flag_callback(
         "--rand-x-reflection", [this] { transforms["rand_x_reflection"] = "true"; },
         "RandXReflection: mirror left-right with probability 1/2")
      ->group("Augmentation");
  cmd.add_flag_callback(
         "--rand-y-reflection", [this] { transforms["rand_y_reflection"] = "true"; },
         "RandYReflection: mirror up-down with probability 1/2")
      ->group("Augmentation");
  cmd.add_option("--loader", loader,
                 "auto | stream | resident (default auto: image folders stream when a "
                 "transform is set or the decoded set would exceed 4 GiB)")
      ->group("Loader");
  cmd.add_option("--loader-threads", threads, "Decode threads (default 0 = one per core)")
      ->group("Loader");
  cmd.add_option("--prefetch", prefetch, "Batches prepared ahead (default 4)")->group("Loader");
  cmd.add_option("--max-pixels", max_pixels,
                 "Refuse images with more pixels (default 178956970, as PIL)")
      ->group("Loader");
}

void LoaderFlags::to_spec(nlohmann::json& d, const CLI::App& cmd) const {
  for (const auto& [key, text] : transforms) d[key] = text;
  if (cmd.count("--loader")) d["loader"] = loader;
  if (cmd.count("--loader-threads")) d["loader_threads"] = threads;
  if (cmd.count("--prefetch")) d["prefetch"] = prefetch;
  if (cmd.count("--max-pixels")) d["max_pixels"] = max_pixels;
}

}  // namespace gpulab::app
