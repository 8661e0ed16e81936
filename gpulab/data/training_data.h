// A run's training data: what a run asks of it (DataRequest), what a task's
// datastore gives the loop (TrainingData), and the datastore of tasks that
// read image files or IDX folders (classification, style transfer):
// device-resident when the set is small and needs no augmentation, else
// streamed through the decode threads. What decides, what is printed before
// training and how validation images are decoded (the transforms'
// deterministic part) live here, not in the CLI.
#pragma once

#include <c10/core/Device.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "gpulab/core/log.h"
#include "gpulab/data/batch_source.h"
#include "gpulab/data/data_options.h"
#include "gpulab/data/data_path.h"
#include "gpulab/data/dataset.h"
#include "gpulab/data/normalization.h"
#ifdef GPULAB_WITH_OPENCV
#include "gpulab/data/loader.h"
#else
namespace gpulab::data {
class StreamingLoader;
}
#endif

namespace gpulab::data {

// What a training run asks of its data (the run spec, resolved): the same
// for every task; each task's datastore reads what applies to it.
struct DataRequest {
  DataPath train;
  DataPath validation;  // empty: none, or val_split holds some out
  DataOptions options;
  double val_split = 0;   // fraction (or count) held out per label when validation is empty
  int64_t val_limit = 0;  // only the first N validation images (0 = all)
  uint64_t seed = 0;      // augmentation, and the val_split choice
  c10::Device device = c10::Device(c10::kCPU);
  bool channels_last = false;
  // The initial weights' normalisation for images of `channels` channels;
  // unset, or nullopt, = computed from the training images.
  std::function<std::optional<Normalization>(int64_t channels)> weights_normalization;
  // Data-parallel ranks on this machine: decode threads (loader_threads 0)
  // are the cores divided among them.
  int ranks_on_machine = 1;
  std::string index_cache_dir;  // index caches of read-only folders ("" = none)
  core::Log log;                // what was found, before training
};

// A task's training data as the loop takes it.
struct TrainingData {
  std::unique_ptr<BatchSource> source;  // normalised batches on request.device
  std::optional<Dataset> validation;    // at the training size, unnormalised
  LabelSpec labels;
  PixelLabelCounts label_counts;  // label maps: per-class pixel counts of the training set
  int64_t channels = 0, height = 0, width = 0;  // of the training batches
  Normalization normalization;                  // what `source` applies
  // Files left out so far (resident decoding, validation, missing remote files).
  int64_t skipped_files = 0;
  // The streaming loader when `source` is one (it skips bad files as it meets
  // them during training); null for device-resident data.
  StreamingLoader* streaming = nullptr;
};

// Opens the training (and validation) images. Throws the datastores' errors
// (naming the file), and Error(kInvalidArgument) for options that do not fit
// the data (transforms on an IDX folder, validation classes that differ).
// labelled = false: folders of unlabelled images (every image below the
// root; style transfer).
TrainingData open_image_training_data(const DataRequest& request, bool labelled = true);

#ifdef GPULAB_WITH_OPENCV
// The streaming path's plan, before any image is decoded: the indexed folders
// (classes, limits and val_split applied to the index, not to decoded
// images), the transforms with their output size and channels fixed, and the
// loader options (decode threads shared by the machine's ranks, files named
// by their URL for remote data).
struct StreamingPlan {
  ImageFolderIndex train;
  std::optional<ImageFolderIndex> validation;
  TransformOptions transforms;
  LoaderOptions options;
};
StreamingPlan plan_streaming(const DataRequest& request, bool labelled = true);

// The streaming loader's options for a run: its decode threads (loader_threads,
// else the machine's cores shared among its ranks), prefetch, seed, device,
// layout and bad-file policy.
LoaderOptions training_loader_options(const DataRequest& request);
#endif

// Every image of the folder at `path` (honouring classes, per_class and limit
// of `options`) decoded through `transforms` without their randomness, on
// decode threads, as training decodes its validation images: [N, C, H, W]
// uint8 on the CPU. Files left out under skip_bad_files are counted in
// `skipped`.
Dataset decode_image_folder(const DataPath& path, const DataOptions& options,
                            const TransformOptions& transforms, const std::string& index_cache_dir,
                            int64_t* skipped);

// Loads an IDX or image folder at the size and channels of `options` (and
// their classes, per_class and limit), writing what it found to `log` under
// `role` ("Training", "Test"). `skipped` receives the undecodable files left out.
Dataset load_image_dataset(const DataPath& path, const DataOptions& options, IdxSplit split,
                           const std::string& role, const core::Log& log, int64_t* skipped,
                           bool labelled = true);

}  // namespace gpulab::data
