// Streaming setup for `gpulab train`.
#include "apps/gpulab/streaming_data.h"

#include <cstdlib>
#include <filesystem>

#include "gpulab/core/atomic_file.h"
#include "gpulab/core/error.h"
#include "gpulab/data/idx_datastore.h"

namespace gpulab::app {
namespace fs = std::filesystem;
namespace {

// Above this the decoded set stays on disk and streams.
constexpr double kResidentBudgetBytes = 4.0 * (1 << 30);

data::TransformOptions base_transforms(const DataFlags& flags, const LoaderSettings& loader) {
  data::TransformOptions t;
  t.channels(flags.channels);
  const auto o = flags.options(data::IdxSplit::kTrain);  // parses --image-size
  t.height(o.height()).width(o.width());
  data::apply_transform_json(t, loader.transforms);
  return t;
}

int64_t max_pixels(const LoaderSettings& s) {
  return s.max_pixels > 0 ? s.max_pixels : data::kDefaultMaxPixels;
}

data::LoaderOptions loader_options(const DataFlags& flags, const LoaderSettings& s, uint64_t seed,
                                   c10::Device device) {
  data::LoaderOptions o;
  o.threads(s.threads).prefetch(s.prefetch).seed(seed).device(device);
  o.skip_bad_files(flags.skip_bad_files);
  o.max_pixels(max_pixels(s));
  return o;
}

// Every image of `index` through the transforms' deterministic part, not
// normalised, on the CPU: how validation (and evaluation) images are decoded.
data::Dataset decode_unaugmented(const data::ImageFolderIndex& index,
                                 const data::TransformOptions& transforms,
                                 data::LoaderOptions options, int64_t* skipped) {
  const int channels = transforms.channels();
  const data::Normalization identity{std::vector<double>(channels, 0.0),
                                     std::vector<double>(channels, 1.0)};
  options.device(c10::Device(c10::kCPU));
  data::StreamingLoader loader(index, transforms.deterministic(), identity, options);
  data::Dataset ds = data::decode_all(loader);
  if (skipped != nullptr) *skipped = loader.skipped_files();
  return ds;
}

}  // namespace

std::string index_cache_dir() {
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg)
    return (fs::path(xdg) / "gpulab").string();
  if (const char* home = std::getenv("HOME"); home && *home)
    return (fs::path(home) / ".cache" / "gpulab").string();
  return "";
}

data::ImageFolderIndex index_folder(const std::string& path, const DataFlags& flags,
                                    bool per_class) {
  GPULAB_CHECK(fs::exists(path), ErrorKind::kNotFound, "data path '{}' does not exist", path);
  data::ImageFolderIndex index = data::index_image_folder(
      data::ImageFolderOptions(path).cache_index(true).cache_dir(index_cache_dir()));
  if (!flags.classes.empty()) index = data::select_classes(index, flags.classes);
  if (per_class && flags.per_class > 0) index = data::take_each_label(index, flags.per_class);
  if (flags.limit > 0 && flags.limit < index.size()) {
    std::vector<int64_t> rows(static_cast<size_t>(flags.limit));
    for (size_t i = 0; i < rows.size(); ++i) rows[i] = static_cast<int64_t>(i);
    index = data::subset(index, rows);
  }
  return index;
}

bool use_streaming(const std::string& path, const DataFlags& flags, const LoaderSettings& loader) {
  const bool idx = fs::is_directory(path) && data::is_idx_folder(path);
  const bool transforms = !loader.transforms.empty();
  if (loader.loader == "stream") {
    GPULAB_CHECK(!idx, ErrorKind::kInvalidArgument,
                 "--loader stream reads image folders; '{}' is an IDX folder (it is small "
                 "enough to stay on the device: use --loader auto)",
                 path);
    return true;
  }
  if (loader.loader == "resident") {
    GPULAB_CHECK(!transforms, ErrorKind::kInvalidArgument,
                 "transforms and augmentation ({}) need the streaming loader; drop "
                 "--loader resident",
                 loader.transforms.dump());
    return false;
  }
  GPULAB_CHECK(!(idx && transforms), ErrorKind::kInvalidArgument,
               "transforms ({}) apply to image folders; '{}' is an IDX folder",
               loader.transforms.dump(), path);
  if (idx || !fs::is_directory(path)) return false;  // load_datastore reports a bad path
  if (transforms) return true;
  const data::ImageFolderIndex index = index_folder(path, flags, true);
  const data::TransformOptions t =
      data::with_output_size(base_transforms(flags, loader), index, nullptr, max_pixels(loader));
  const double bytes = static_cast<double>(index.size()) * t.height() * t.width() *
                       (t.channels() == 0 ? 3 : t.channels());
  return bytes > kResidentBudgetBytes;
}

StreamingData plan_streaming(const DataPath& path, const DataPath& val_path, const DataFlags& flags,
                             const LoaderSettings& loader, double val_split, int64_t val_limit,
                             uint64_t seed, c10::Device device, bool quiet) {
  StreamingData out;
  out.train = index_folder(path.local, flags, true);
  if (!val_path.local.empty()) {
    DataFlags val_flags = flags;
    val_flags.limit = val_limit;
    out.validation = index_folder(val_path.local, val_flags, false);
    GPULAB_CHECK(out.validation->class_names == out.train.class_names, ErrorKind::kInvalidArgument,
                 "validation data '{}' has classes [{}] but the training data has [{}]",
                 val_path.source, fmt::join(out.validation->class_names, ", "),
                 fmt::join(out.train.class_names, ", "));
  } else if (val_split > 0) {
    auto parts = data::split_each_label(out.train, val_split, seed);
    out.validation = std::move(parts.first);
    out.train = std::move(parts.second);
  }
  out.transforms = data::with_output_size(base_transforms(flags, loader), out.train, nullptr,
                                          max_pixels(loader));
  out.options = loader_options(flags, loader, seed, device);
  if (path.sources || val_path.sources) {
    // Errors about a cached remote file name its URL.
    out.options.file_name([path, val_path](const std::string& file) {
      const std::string named = path.describe(file);
      return named != file ? named : val_path.describe(file);
    });
  }
  if (!quiet) {
    std::printf(
        "Training data: '%s' (image-folder%s, streaming), %lld images to %dx%dx%d, "
        "%zu classes\n",
        path.source.c_str(), out.train.from_cache ? ", cached index" : "",
        static_cast<long long>(out.train.size()), out.transforms.channels(),
        out.transforms.height(), out.transforms.width(), out.train.class_names.size());
    if (out.validation) {
      std::printf("Validation: %lld images%s\n", static_cast<long long>(out.validation->size()),
                  val_path.local.empty()
                      ? fmt::format(" ({:.0f}% of each label held out)", 100 * val_split).c_str()
                      : "");
    }
  }
  return out;
}

StreamingSet open_streaming(const StreamingData& data,
                            std::optional<data::Normalization> normalization, bool quiet) {
  StreamingSet out;
  const data::TransformOptions fixed = data.transforms.deterministic();
  const int channels = data.transforms.channels();
  // Decoding without augmentation: statistics and the validation images.
  const data::Normalization identity{std::vector<double>(channels, 0.0),
                                     std::vector<double>(channels, 1.0)};
  data::LoaderOptions cpu = data.options;
  cpu.device(c10::Device(c10::kCPU));
  if (!normalization) {
    data::StreamingLoader probe(data.train, fixed, identity, cpu);
    normalization = data::estimate_normalization(probe);
  }
  out.normalization = *normalization;
  if (data.validation) {
    out.validation = decode_unaugmented(*data.validation, data.transforms, data.options,
                                        &out.skipped_validation);
  }
  out.loader = std::make_unique<data::StreamingLoader>(data.train, data.transforms,
                                                       out.normalization, data.options);
  if (!quiet) {
    std::printf("Loader: %d decode threads, %d batches ahead; normalisation mean [%s] std [%s]\n",
                data.options.threads() > 0
                    ? data.options.threads()
                    : static_cast<int>(std::max(1u, std::thread::hardware_concurrency())),
                data.options.prefetch(),
                fmt::format("{:.3f}", fmt::join(out.normalization.mean, ", ")).c_str(),
                fmt::format("{:.3f}", fmt::join(out.normalization.std, ", ")).c_str());
  }
  return out;
}

data::Dataset decode_image_folder(const DataPath& path, const DataFlags& flags,
                                  const data::TransformOptions& transforms, int64_t* skipped) {
  LoaderSettings settings;
  settings.max_pixels = flags.max_pixels;
  data::LoaderOptions options = loader_options(flags, settings, 0, c10::Device(c10::kCPU));
  if (path.sources) options.file_name(path.file_namer());
  return decode_unaugmented(index_folder(path.local, flags, true), transforms, options, skipped);
}

}  // namespace gpulab::app
