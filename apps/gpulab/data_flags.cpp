// Shared data flags and loading with the report users see before training.
#include "apps/gpulab/data_flags.h"

#include <torch/torch.h>
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cctype>

#include "gpulab/core/error.h"
#include "gpulab/data/split.h"
#ifdef GPULAB_WITH_CURL
#include "gpulab/data/remote_datastore.h"
#endif

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

std::string DataPath::describe(const std::string& file) const {
  const std::string root = local + "/";
  if (!sources || file.compare(0, root.size(), root) != 0) return file;
  const auto it = sources->find(file.substr(root.size()));
  return it == sources->end() ? file : file + " (from " + it->second + ")";
}

data::FileNamer DataPath::file_namer() const {
  if (!sources) return nullptr;
  return [self = *this](const std::string& file) { return self.describe(file); };
}

// The one place the CLI turns a remote --data/--val-data into a local folder.
DataPath resolve_data_path(const std::string& path, const DataFlags& flags, bool quiet) {
  std::string scheme =
      path.substr(0, path.find("://") == std::string::npos ? 0 : path.find("://") + 3);
  std::transform(scheme.begin(), scheme.end(), scheme.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  if (scheme != "s3://" && scheme != "http://" && scheme != "https://")
    return {path, path, nullptr};
#ifdef GPULAB_WITH_CURL
  GPULAB_CHECK(flags.fetch_threads >= 1, ErrorKind::kInvalidArgument,
               "--fetch-threads must be >= 1, got {}", flags.fetch_threads);
  data::RemoteDataOptions options(
      flags.cache_dir.empty() ? data::default_cache_dir_from_environment() : flags.cache_dir);
  options.fetch_threads(flags.fetch_threads)
      .s3(data::S3Options::from_environment())
      .skip_missing(flags.skip_bad_files);
  data::RemoteData remote = data::fetch_remote_dataset(path, options);
  if (!quiet) {
    std::printf("%s\n", remote.summary().c_str());
    if (remote.skipped > 0) {
      std::printf("Left out %lld objects that are not images inside a class folder\n",
                  static_cast<long long>(remote.skipped));
    }
    if (!remote.missing.empty()) {
      std::printf(
          "Skipped %zu URLs that were not found (HTTP 404/410; --skip-bad-files), e.g. "
          "%s\n",
          remote.missing.size(), remote.missing.front().c_str());
    }
  }
  DataPath resolved{
      data::redact_url(path), remote.local_path,
      std::make_shared<const std::map<std::string, std::string>>(std::move(remote.sources))};
  resolved.missing_files = static_cast<int64_t>(remote.missing.size());
  return resolved;
#else
  (void)flags;
  (void)quiet;
  GPULAB_FAIL(ErrorKind::kUnavailable,
              "'{}': this gpulab was built without remote data support (GPULAB_WITH_CURL=OFF); "
              "copy the data to a local folder",
              path);
#endif
}

std::pair<int, int> parse_image_size(const std::string& text) {
  int h = 0, w = 0;
  char x = 0;
  GPULAB_CHECK(std::sscanf(text.c_str(), "%d%c%d", &h, &x, &w) == 3 && (x == 'x' || x == 'X') &&
                   h > 0 && w > 0,
               ErrorKind::kInvalidArgument, "--image-size must look like 28x28, got '{}'", text);
  return {h, w};
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
    const auto [h, w] = parse_image_size(image_size);
    o.height(h).width(w);
  }
  return o;
}

data::DatastoreOptions DataFlags::options(data::IdxSplit split) const {
  data::DatastoreOptions o;
  o.idx_split(split).channels(channels).skip_bad_files(skip_bad_files);
  if (max_pixels > 0) o.max_pixels(max_pixels);
  if (!image_size.empty()) {
    const auto [h, w] = parse_image_size(image_size);
    o.height(h).width(w);
  }
  GPULAB_CHECK(channels == 0 || channels == 1 || channels == 3, ErrorKind::kInvalidArgument,
               "--channels must be 1 or 3, got {}", channels);
  return o;
}

data::Dataset load_classification_data(const std::string& path, const DataFlags& flags,
                                       data::IdxSplit split, const std::string& role, bool quiet,
                                       int64_t* skipped) {
  return load_classification_data(resolve_data_path(path, flags, quiet), flags, split, role, quiet,
                                  skipped);
}

data::Dataset load_classification_data(const DataPath& path, const DataFlags& flags,
                                       data::IdxSplit split, const std::string& role, bool quiet,
                                       int64_t* skipped) {
  GPULAB_CHECK(flags.limit >= 0, ErrorKind::kInvalidArgument, "--limit must be >= 0, got {}",
               flags.limit);
  data::LoadedData loaded =
      data::load_datastore(path.local, flags.options(split).file_name(path.file_namer()));
  data::Dataset ds = std::move(loaded.dataset);
  if (skipped) *skipped = loaded.skipped_files;
  GPULAB_CHECK(flags.per_class >= 0, ErrorKind::kInvalidArgument,
               "--per-class must be >= 0, got {}", flags.per_class);
  if (!flags.classes.empty()) ds = data::select_classes(ds, flags.classes);
  if (flags.per_class > 0) ds = data::take_each_label(ds, flags.per_class);
  if (flags.limit > 0 && flags.limit < ds.size()) {
    ds = data::subset(ds, torch::arange(flags.limit, torch::kInt64));
  }
  if (!quiet) {
    std::printf("%s data: '%s' (%s%s), %lld images of %lldx%lldx%lld, %zu classes\n", role.c_str(),
                path.source.c_str(), loaded.kind.c_str(),
                loaded.kind == "idx"
                    ? (split == data::IdxSplit::kTrain ? ", train-* files" : ", t10k-* files")
                    : "",
                static_cast<long long>(ds.size()), static_cast<long long>(ds.channels()),
                static_cast<long long>(ds.height()), static_cast<long long>(ds.width()),
                ds.class_names.size());
    if (loaded.skipped_files > 0) {
      std::printf("Skipped %lld undecodable files (--skip-bad-files)\n",
                  static_cast<long long>(loaded.skipped_files));
    }
  }
  return ds;
}

}  // namespace gpulab::app
