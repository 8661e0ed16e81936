// Segmentation's data: pixel-label folders decoded once and kept on the
// device (augmented jointly per batch there), or streamed through the decode
// threads, which decode each label map beside its image and transform both.
#include <torch/torch.h>

#include <filesystem>

#include "gpulab/core/error.h"
#include "gpulab/data/joint_augmentation.h"
#include "gpulab/data/normalization.h"
#include "gpulab/data/resident_batch_source.h"
#include "gpulab/data/training_data.h"
#include "gpulab/tasks/segmentation.h"
#ifdef GPULAB_WITH_OPENCV
#include "gpulab/data/loader.h"
#include "gpulab/data/pixel_label_decode.h"
#endif

namespace gpulab::tasks {
namespace fs = std::filesystem;
namespace {

#ifdef GPULAB_WITH_OPENCV
// The split to read: `wanted` when the folder has it (Cityscapes always
// names one), "" (every pair) for a generic or CamVid folder without
// splits/<wanted>.txt.
std::string split_of(const std::string& root, const std::string& wanted) {
  if (data::detect_pixel_label_layout(root) == data::PixelLabelLayout::kCityscapes) return wanted;
  return fs::exists(fs::path(root) / "splits" / (wanted + ".txt")) ? wanted : "";
}

bool has_split(const std::string& root, const std::string& split) {
  if (data::detect_pixel_label_layout(root) == data::PixelLabelLayout::kCityscapes) {
    return fs::is_directory(fs::path(root) / "leftImg8bit" / split);
  }
  return fs::exists(fs::path(root) / "splits" / (split + ".txt"));
}

data::PixelLabelIndex index_of(const data::DataPath& path, const std::string& split,
                               const SegmentationOptions& o) {
  GPULAB_CHECK(fs::is_directory(path.local), ErrorKind::kInvalidArgument,
               "segmentation reads local pixel-label folders; '{}' is not a folder", path.source);
  return data::index_pixel_labels(data::PixelLabelOptions(path.local)
                                      .split(split)
                                      .class_table(o.class_table)
                                      .unknown_colors_are_errors(o.unknown_colors_are_errors));
}

data::PixelLabelIndex first_rows(const data::PixelLabelIndex& index, int64_t limit) {
  if (limit <= 0 || limit >= index.size()) return index;
  std::vector<int64_t> rows(static_cast<size_t>(limit));
  for (size_t i = 0; i < rows.size(); ++i) rows[i] = static_cast<int64_t>(i);
  return data::subset(index, rows);
}

// Holds out `amount` (a fraction, or a count when >= 1) of the images,
// chosen by a seeded permutation.
std::pair<data::PixelLabelIndex, data::PixelLabelIndex> hold_out(const data::PixelLabelIndex& all,
                                                                 double amount, uint64_t seed) {
  const int64_t n = all.size();
  const int64_t held = amount >= 1
                           ? static_cast<int64_t>(amount)
                           : static_cast<int64_t>(std::llround(amount * static_cast<double>(n)));
  GPULAB_CHECK(held > 0 && held < n, ErrorKind::kInvalidArgument,
               "`val_split` {} holds out {} of {} images; leave at least one for each side", amount,
               held, n);
  torch::Generator gen = at::detail::createCPUGenerator(seed);
  const at::Tensor perm = torch::randperm(n, gen, torch::kInt64);
  std::vector<int64_t> val(perm.data_ptr<int64_t>(), perm.data_ptr<int64_t>() + held);
  std::vector<int64_t> train(perm.data_ptr<int64_t>() + held, perm.data_ptr<int64_t>() + n);
  std::sort(val.begin(), val.end());
  std::sort(train.begin(), train.end());
  return {data::subset(all, train), data::subset(all, val)};
}

data::PixelLabelDecodeOptions decode_options(const data::DataOptions& o, int channels, int height,
                                             int width) {
  return data::PixelLabelDecodeOptions()
      .channels(channels)
      .size(height, width)
      .threads(o.loader_threads)
      .max_pixels(o.pixel_limit());
}

void check_options(const data::DataOptions& o) {
  GPULAB_CHECK(o.classes.empty() && o.per_class == 0, ErrorKind::kInvalidArgument,
               "`classes` and `per_class` choose images by class; segmentation images hold "
               "many classes: use `limit`, or a split file");
}

// Above this the decoded pairs stay on disk and stream.
constexpr double kResidentBudgetBytes = 4.0 * (1 << 30);

// Whether training streams the pairs through the decode threads: loader
// 'stream'; or 'auto' with a transform only the decode threads do (a crop, a
// resize, colour jitter), or pairs above 4 GiB decoded. 'resident' keeps them
// on the device, where reflection, scale and translation are done per batch.
bool streams(const data::DataRequest& r, const data::PixelLabelIndex& train, int channels) {
  const data::DataOptions& o = r.options;
  const std::string decode_thread_only = data::unsupported_joint_transform(o.base_transforms());
  if (o.loader == "stream") return true;
  if (o.loader == "resident") {
    GPULAB_CHECK(decode_thread_only.empty(), ErrorKind::kInvalidArgument,
                 "`{}` needs the streaming loader (device-resident segmentation data is "
                 "augmented by reflection, scale and translation only); drop loader 'resident'",
                 decode_thread_only);
    return false;
  }
  if (!decode_thread_only.empty()) return true;
  const data::TransformOptions size = data::with_output_size(
      o.base_transforms().channels(channels), data::image_index(train), nullptr, o.pixel_limit());
  const double bytes = static_cast<double>(train.size()) * size.height() * size.width() *
                       (channels + 1);  // pixels and their label ids
  return bytes > kResidentBudgetBytes;
}

data::TrainingData open_resident(const data::DataRequest& r, const data::PixelLabelIndex& train,
                                 const std::optional<data::PixelLabelIndex>& val,
                                 const std::string& val_from, int channels) {
  const data::Dataset ds = data::decode_pixel_label_set(
      train, decode_options(r.options, channels, r.options.height, r.options.width));
  data::TrainingData out;
  r.log.line(fmt::format("Training data: '{}' ({} layout), {} images at {}x{}x{}, {} classes",
                         r.train.source, data::to_string(train.layout), ds.size(), ds.channels(),
                         ds.height(), ds.width(), ds.label_spec.size()));
  if (val) {
    out.validation = data::decode_pixel_label_set(
        *val, decode_options(r.options, channels, static_cast<int>(ds.height()),
                             static_cast<int>(ds.width())));
    r.log.line(fmt::format("Validation: {} images ({})", out.validation->size(), val_from));
  }
  r.log.line(data::format_label_counts(ds));
  out.label_counts = data::count_each_pixel_label(ds);
  const std::optional<data::Normalization> given =
      r.weights_normalization ? r.weights_normalization(ds.channels()) : std::nullopt;
  out.normalization = given ? *given : data::compute_normalization(ds);
  out.labels = ds.label_spec;
  out.channels = ds.channels();
  out.height = ds.height();
  out.width = ds.width();
  std::unique_ptr<data::BatchSource> source =
      std::make_unique<data::ResidentBatchSource>(std::make_shared<const data::ResidentBatcher>(
          ds, out.normalization, r.device, r.channels_last));
  data::TransformOptions transforms = r.options.base_transforms();
  if (transforms.random()) {
    source = std::make_unique<data::JointAugmentingSource>(std::move(source), transforms, r.seed);
    r.log.line(fmt::format("Augmentation (image and label map together, on the device): {}",
                           r.options.transforms.dump()));
  }
  out.source = std::move(source);
  return out;
}

data::TrainingData open_streamed(const data::DataRequest& r, const data::PixelLabelIndex& train,
                                 const std::optional<data::PixelLabelIndex>& val,
                                 const std::string& val_from, int channels) {
  const data::TransformOptions transforms =
      data::with_output_size(r.options.base_transforms().channels(channels),
                             data::image_index(train), nullptr, r.options.pixel_limit());
  const data::LoaderOptions options = data::training_loader_options(r);
  data::TrainingData out;
  r.log.line(fmt::format(
      "Training data: '{}' ({} layout, streaming), {} images to {}x{}x{}, {} classes",
      r.train.source, data::to_string(train.layout), train.size(), transforms.channels(),
      transforms.height(), transforms.width(), train.labels.size()));
  // The size the network is applied at (validation here; evaluate's and
  // predict's default, from the model file): the batches' size, except that a
  // crop's is a training patch's, so with crops it is the images' own (the
  // first one's) or image_size.
  const bool crops = transforms.random_resized_crop() > 0 || transforms.center_crop_height() > 0 ||
                     transforms.center_crop_width() > 0;
  data::TransformOptions applied = transforms;
  if (crops) {
    applied = data::with_output_size(
        data::TransformOptions().channels(channels).height(r.options.height).width(r.options.width),
        data::image_index(train), nullptr, r.options.pixel_limit());
  }
  if (val) {
    out.validation = data::decode_pixel_label_set(
        *val, decode_options(r.options, channels, applied.height(), applied.width()));
    r.log.line(fmt::format("Validation: {} images at {}x{} ({})", out.validation->size(),
                           out.validation->height(), out.validation->width(), val_from));
  }
  out.label_counts = data::count_each_pixel_label(train, options.threads());
  r.log.line(data::format_label_counts(train.labels, out.label_counts));
  const std::optional<data::Normalization> given =
      r.weights_normalization ? r.weights_normalization(channels) : std::nullopt;
  if (given) {
    out.normalization = *given;
  } else {
    const data::Normalization identity{std::vector<double>(channels, 0.0),
                                       std::vector<double>(channels, 1.0)};
    data::LoaderOptions cpu = options;
    cpu.device(c10::Device(c10::kCPU));
    data::StreamingLoader probe(train, transforms.deterministic(), identity, cpu);
    out.normalization = data::estimate_normalization(probe);
  }
  auto loader =
      std::make_unique<data::StreamingLoader>(train, transforms, out.normalization, options);
  if (transforms.random()) {
    r.log.line(fmt::format("Augmentation (image and label map together, in the decode threads): {}",
                           r.options.transforms.dump()));
  }
  out.labels = train.labels;
  out.channels = transforms.channels();
  out.height = applied.height();
  out.width = applied.width();
  out.streaming = loader.get();
  out.source = std::move(loader);
  return out;
}
#endif

}  // namespace

data::TrainingData SegmentationTask::open_training_data(const data::DataRequest& r) const {
#ifdef GPULAB_WITH_OPENCV
  check_options(r.options);
  data::PixelLabelIndex train = index_of(r.train, split_of(r.train.local, "train"), options_);
  std::optional<data::PixelLabelIndex> val;
  std::string val_from;
  if (!r.validation.empty()) {
    val = index_of(r.validation, split_of(r.validation.local, "val"), options_);
    val_from = r.validation.source;
  } else if (r.val_split > 0) {
    auto parts = hold_out(train, r.val_split, r.seed);
    train = std::move(parts.first);
    val = std::move(parts.second);
    val_from = fmt::format("{:.0f}% of the images held out", 100 * r.val_split);
  } else if (has_split(r.train.local, "val") && has_split(r.train.local, "train")) {
    val = index_of(r.train, "val", options_);
    val_from = "split 'val'";
  }
  train = first_rows(train, r.options.limit);
  if (val) {
    *val = first_rows(*val, r.val_limit);
    GPULAB_CHECK(val->labels.names == train.labels.names, ErrorKind::kInvalidArgument,
                 "validation data '{}' has classes [{}] but the training data has [{}]", val_from,
                 fmt::join(val->labels.names, ", "), fmt::join(train.labels.names, ", "));
  }
  const int channels = r.options.channels > 0 ? r.options.channels : 3;
  return streams(r, train, channels) ? open_streamed(r, train, val, val_from, channels)
                                     : open_resident(r, train, val, val_from, channels);
#else
  (void)r;
  GPULAB_FAIL(ErrorKind::kUnavailable, "segmentation data needs a build with OpenCV");
#endif
}

data::Dataset SegmentationTask::open_evaluation_data(const data::DataPath& path,
                                                     const data::DataOptions& options,
                                                     const models::ModelMetadata& model,
                                                     const std::string& /*index_cache_dir*/,
                                                     const core::Log& log, int64_t* skipped) const {
#ifdef GPULAB_WITH_OPENCV
  check_options(options);
  const bool cityscapes =
      data::detect_pixel_label_layout(path.local) == data::PixelLabelLayout::kCityscapes;
  const std::string split = split_of(path.local, cityscapes ? "val" : "test");
  const data::PixelLabelIndex index = first_rows(index_of(path, split, options_), options.limit);
  const std::vector<std::string> model_classes = model.class_names();
  GPULAB_CHECK(index.labels.names == model_classes, ErrorKind::kInvalidArgument,
               "data '{}' has classes [{}] but the model was trained on [{}]; evaluate on data "
               "with the model's class table",
               path.source, fmt::join(index.labels.names, ", "), fmt::join(model_classes, ", "));
  const int height = options.height > 0 ? options.height : static_cast<int>(model.config.height);
  const int width = options.width > 0 ? options.width : static_cast<int>(model.config.width);
  data::Dataset ds = data::decode_pixel_label_set(
      index, decode_options(options, static_cast<int>(model.config.in_channels), height, width));
  log.line(fmt::format("Test data: '{}' ({} layout{}), {} images at {}x{}, {} classes", path.source,
                       data::to_string(index.layout),
                       split.empty() ? "" : fmt::format(", split '{}'", split), ds.size(),
                       ds.height(), ds.width(), ds.label_spec.size()));
  if (skipped != nullptr) *skipped = path.missing_files;
  ds.label_spec = data::LabelSpec::from_json(model.labels, path.source);
  return ds;
#else
  (void)path, (void)options, (void)model, (void)log, (void)skipped;
  GPULAB_FAIL(ErrorKind::kUnavailable, "segmentation data needs a build with OpenCV");
#endif
}

}  // namespace gpulab::tasks
