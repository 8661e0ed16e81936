// Opening image training data: the resident path (decode once, keep on the
// device) and the streaming path (index, then decode threads per step).
#include "gpulab/data/training_data.h"

#include <torch/torch.h>

#include <filesystem>
#include <thread>

#include "gpulab/core/device.h"
#include "gpulab/core/error.h"
#include "gpulab/data/idx_datastore.h"
#include "gpulab/data/resident_batch_source.h"
#include "gpulab/data/split.h"
#ifdef GPULAB_WITH_OPENCV
#include "gpulab/data/loader.h"
#endif

namespace gpulab::data {
namespace fs = std::filesystem;
namespace {

// Above this the decoded set stays on disk and streams.
constexpr double kResidentBudgetBytes = 4.0 * (1 << 30);

Dataset take_first(const Dataset& ds, int64_t limit) {
  if (limit <= 0 || limit >= ds.size()) return ds;
  return subset(ds, torch::arange(limit, torch::kInt64));
}

std::string describe_labels(const LabelSpec& labels) {
  return labels.empty() ? "unlabelled" : fmt::format("{} classes", labels.size());
}

// Splits off the validation images when no validation data is given.
void hold_out(Dataset& train, std::optional<Dataset>& validation, const DataRequest& r) {
  if (!r.validation.empty() || r.val_split <= 0) return;
  auto parts = split_each_label(train, r.val_split, r.seed);
  validation = std::move(parts.first);
  train = std::move(parts.second);
  r.log.line(fmt::format("Held out {} images ({:.0f}% of each label) for validation",
                         validation->size(), 100 * r.val_split));
}

TrainingData open_resident(const DataRequest& r, bool labelled) {
  TrainingData out;
  Dataset train = load_image_dataset(r.train, r.options, IdxSplit::kTrain, "Training", r.log,
                                     &out.skipped_files, labelled);
  std::optional<Dataset> validation;
  if (!r.validation.empty()) {
    DataOptions val = r.options;
    val.limit = r.val_limit;
    val.per_class = 0;
    // Same decoded size and channels as the training images.
    val.height = static_cast<int>(train.height());
    val.width = static_cast<int>(train.width());
    val.channels = static_cast<int>(train.channels());
    int64_t skipped = 0;
    validation = load_image_dataset(r.validation, val, IdxSplit::kTest, "Validation", r.log,
                                    &skipped, labelled);
    out.skipped_files += skipped;
    GPULAB_CHECK(
        validation->label_spec.names == train.label_spec.names, ErrorKind::kInvalidArgument,
        "validation data '{}' has classes [{}] but the training data has [{}]", r.validation.source,
        fmt::join(validation->label_spec.names, ", "), fmt::join(train.label_spec.names, ", "));
  }
  hold_out(train, validation, r);
  if (!train.label_spec.empty()) r.log.line(format_label_counts(train));
  const std::optional<Normalization> given =
      r.weights_normalization ? r.weights_normalization(train.channels()) : std::nullopt;
  out.normalization = given ? *given : compute_normalization(train);
  GPULAB_CHECK(static_cast<int64_t>(out.normalization.mean.size()) == train.channels(),
               ErrorKind::kInvalidArgument,
               "the initial weights expect {}-channel images but the training data has {}; "
               "convert the images (data option channels = {})",
               out.normalization.mean.size(), train.channels(), out.normalization.mean.size());
  out.labels = train.label_spec;
  out.channels = train.channels();
  out.height = train.height();
  out.width = train.width();
  out.validation = std::move(validation);
  out.source = std::make_unique<ResidentBatchSource>(
      std::make_shared<const ResidentBatcher>(train, out.normalization, r.device, r.channels_last));
  return out;
}

#ifdef GPULAB_WITH_OPENCV
// Index of an image folder with the index cache on, honouring classes,
// per_class (when `per_class`) and limit.
ImageFolderIndex index_folder(const std::string& path, const DataOptions& options, bool per_class,
                              bool labelled, const std::string& index_cache_dir) {
  GPULAB_CHECK(fs::exists(path), ErrorKind::kNotFound, "data path '{}' does not exist", path);
  ImageFolderIndex index = index_image_folder(
      ImageFolderOptions(path).labelled(labelled).cache_index(true).cache_dir(index_cache_dir));
  if (!options.classes.empty()) index = select_classes(index, options.classes);
  if (per_class && options.per_class > 0) index = take_each_label(index, options.per_class);
  if (options.limit > 0 && options.limit < index.size()) {
    std::vector<int64_t> rows(static_cast<size_t>(options.limit));
    for (size_t i = 0; i < rows.size(); ++i) rows[i] = static_cast<int64_t>(i);
    index = subset(index, rows);
  }
  return index;
}

LoaderOptions loader_options(const DataOptions& o, uint64_t seed, c10::Device device) {
  LoaderOptions l;
  l.threads(o.loader_threads).prefetch(o.prefetch).seed(seed).device(device);
  l.skip_bad_files(o.skip_bad_files).max_pixels(o.pixel_limit());
  return l;
}

// Every image of `index` through the transforms' deterministic part, not
// normalised, on the CPU: how validation (and evaluation) images are decoded.
Dataset decode_unaugmented(const ImageFolderIndex& index, const TransformOptions& transforms,
                           LoaderOptions options, int64_t* skipped) {
  const int channels = transforms.channels();
  const Normalization identity{std::vector<double>(channels, 0.0),
                               std::vector<double>(channels, 1.0)};
  options.device(c10::Device(c10::kCPU));
  StreamingLoader loader(index, transforms.deterministic(), identity, options);
  Dataset ds = decode_all(loader);
  if (skipped != nullptr) *skipped = loader.skipped_files();
  return ds;
}

// Whether to stream: loader "stream", or "auto" with an image folder and a
// transform set or more than 4 GiB decoded.
bool streams(const DataRequest& r, bool labelled) {
  const std::string& path = r.train.local;
  const DataOptions& o = r.options;
  const bool idx = fs::is_directory(path) && is_idx_folder(path);
  const bool transforms = !o.transforms.empty();
  if (o.loader == "stream") {
    GPULAB_CHECK(!idx, ErrorKind::kInvalidArgument,
                 "loader 'stream' reads image folders; '{}' is an IDX folder (it is small "
                 "enough to stay on the device: use loader 'auto')",
                 path);
    return true;
  }
  if (o.loader == "resident") {
    GPULAB_CHECK(!transforms, ErrorKind::kInvalidArgument,
                 "transforms and augmentation ({}) need the streaming loader; drop loader "
                 "'resident'",
                 o.transforms.dump());
    return false;
  }
  GPULAB_CHECK(!(idx && transforms), ErrorKind::kInvalidArgument,
               "transforms ({}) apply to image folders; '{}' is an IDX folder", o.transforms.dump(),
               path);
  if (idx || !fs::is_directory(path)) return false;  // load_datastore reports a bad path
  if (transforms) return true;
  const ImageFolderIndex index = index_folder(path, o, true, labelled, r.index_cache_dir);
  const TransformOptions t = with_output_size(o.base_transforms(), index, nullptr, o.pixel_limit());
  const double bytes = static_cast<double>(index.size()) * t.height() * t.width() *
                       (t.channels() == 0 ? 3 : t.channels());
  return bytes > kResidentBudgetBytes;
}

TrainingData open_streaming(const DataRequest& r, bool labelled) {
  TrainingData out;
  StreamingPlan plan = plan_streaming(r, labelled);
  const ImageFolderIndex& train = plan.train;
  const std::optional<ImageFolderIndex>& validation = plan.validation;
  const TransformOptions& transforms = plan.transforms;
  const LoaderOptions& options = plan.options;
  r.log.line(fmt::format(
      "Training data: '{}' (image-folder{}, streaming), {} images to {}x{}x{}, {}", r.train.source,
      train.from_cache ? ", cached index" : "", train.size(), transforms.channels(),
      transforms.height(), transforms.width(), describe_labels(train.label_spec)));
  if (validation) {
    r.log.line(fmt::format("Validation: {} images{}", validation->size(),
                           r.validation.empty()
                               ? fmt::format(" ({:.0f}% of each label held out)", 100 * r.val_split)
                               : ""));
  }
  if (!train.label_spec.empty()) r.log.line(format_label_counts(train));
  // Decoding without augmentation: statistics and the validation images.
  const int channels = transforms.channels();
  const Normalization identity{std::vector<double>(channels, 0.0),
                               std::vector<double>(channels, 1.0)};
  LoaderOptions cpu = options;
  cpu.device(c10::Device(c10::kCPU));
  const std::optional<Normalization> given =
      r.weights_normalization ? r.weights_normalization(channels) : std::nullopt;
  if (given) {
    out.normalization = *given;
  } else {
    StreamingLoader probe(train, transforms.deterministic(), identity, cpu);
    out.normalization = estimate_normalization(probe);
  }
  if (validation) {
    out.validation = decode_unaugmented(*validation, transforms, options, &out.skipped_files);
  }
  auto loader = std::make_unique<StreamingLoader>(train, transforms, out.normalization, options);
  r.log.line(fmt::format(
      "Loader: {} decode threads, {} batches ahead; normalisation mean [{:.3f}] std [{:.3f}]",
      options.threads() > 0 ? options.threads()
                            : static_cast<int>(std::max(1u, std::thread::hardware_concurrency())),
      options.prefetch(), fmt::join(out.normalization.mean, ", "),
      fmt::join(out.normalization.std, ", ")));
  out.labels = train.label_spec;
  out.channels = transforms.channels();
  out.height = transforms.height();
  out.width = transforms.width();
  out.streaming = loader.get();
  out.source = std::move(loader);
  return out;
}
#endif

}  // namespace

Dataset load_image_dataset(const DataPath& path, const DataOptions& options, IdxSplit split,
                           const std::string& role, const core::Log& log, int64_t* skipped,
                           bool labelled) {
  LoadedData loaded = load_datastore(
      path.local, options.datastore(split).labelled(labelled).file_name(path.file_namer()));
  Dataset ds = std::move(loaded.dataset);
  if (skipped != nullptr) *skipped = loaded.skipped_files;
  if (!options.classes.empty()) ds = select_classes(ds, options.classes);
  if (options.per_class > 0) ds = take_each_label(ds, options.per_class);
  ds = take_first(ds, options.limit);
  log.line(fmt::format(
      "{} data: '{}' ({}{}), {} images of {}x{}x{}, {}", role, path.source, loaded.kind,
      loaded.kind == "idx" ? (split == IdxSplit::kTrain ? ", train-* files" : ", t10k-* files")
                           : "",
      ds.size(), ds.channels(), ds.height(), ds.width(), describe_labels(ds.label_spec)));
  if (loaded.skipped_files > 0) {
    log.line(fmt::format("Skipped {} undecodable files (skip_bad_files)", loaded.skipped_files));
  }
  return ds;
}

TrainingData open_image_training_data(const DataRequest& request, bool labelled) {
#ifdef GPULAB_WITH_OPENCV
  TrainingData out = streams(request, labelled) ? open_streaming(request, labelled)
                                                : open_resident(request, labelled);
#else
  GPULAB_CHECK(request.options.transforms.empty() && request.options.loader != "stream",
               ErrorKind::kUnavailable,
               "transforms and the streaming loader need OpenCV; this build has none");
  TrainingData out = open_resident(request, labelled);
#endif
  out.skipped_files += request.train.missing_files + request.validation.missing_files;
  return out;
}

#ifdef GPULAB_WITH_OPENCV
LoaderOptions training_loader_options(const DataRequest& r) {
  LoaderOptions options = loader_options(r.options, r.seed, r.device);
  options.channels_last(r.channels_last);
  // Ranks on one machine share its cores: loader_threads 0 gives each its part.
  if (options.threads() == 0 && r.ranks_on_machine > 1) {
    options.threads(
        core::resolve_threads(0, r.ranks_on_machine, std::thread::hardware_concurrency()));
  }
  return options;
}

StreamingPlan plan_streaming(const DataRequest& r, bool labelled) {
  StreamingPlan plan;
  ImageFolderIndex& train = plan.train;
  train = index_folder(r.train.local, r.options, true, labelled, r.index_cache_dir);
  std::optional<ImageFolderIndex>& validation = plan.validation;
  if (!r.validation.empty()) {
    DataOptions val = r.options;
    val.limit = r.val_limit;
    validation = index_folder(r.validation.local, val, false, labelled, r.index_cache_dir);
    GPULAB_CHECK(
        validation->label_spec.names == train.label_spec.names, ErrorKind::kInvalidArgument,
        "validation data '{}' has classes [{}] but the training data has [{}]", r.validation.source,
        fmt::join(validation->label_spec.names, ", "), fmt::join(train.label_spec.names, ", "));
  } else if (r.val_split > 0) {
    auto parts = split_each_label(train, r.val_split, r.seed);
    validation = std::move(parts.first);
    train = std::move(parts.second);
  }
  plan.transforms =
      with_output_size(r.options.base_transforms(), train, nullptr, r.options.pixel_limit());
  LoaderOptions& options = plan.options;
  options = training_loader_options(r);
  if (r.train.sources || r.validation.sources) {
    // Errors about a cached remote file name its URL.
    options.file_name([train_path = r.train, val_path = r.validation](const std::string& file) {
      const std::string named = train_path.describe(file);
      return named != file ? named : val_path.describe(file);
    });
  }
  return plan;
}

Dataset decode_image_folder(const DataPath& path, const DataOptions& options,
                            const TransformOptions& transforms, const std::string& index_cache_dir,
                            int64_t* skipped) {
  LoaderOptions loader = loader_options(options, 0, c10::Device(c10::kCPU));
  if (path.sources) loader.file_name(path.file_namer());
  return decode_unaugmented(index_folder(path.local, options, true, true, index_cache_dir),
                            transforms, loader, skipped);
}
#endif

}  // namespace gpulab::data
