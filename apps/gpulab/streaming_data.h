// The streaming path of `gpulab train`: when to stream, the indexed folders
// (classes, limits and the validation split applied to the index, not to
// decoded images), and the loader built from them.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "apps/gpulab/data_flags.h"
#include "apps/gpulab/loader_flags.h"
#include "gpulab/data/image_folder_index.h"
#include "gpulab/data/loader.h"
#include "gpulab/data/resident_batcher.h"
#include "gpulab/data/transforms.h"

namespace gpulab::app {

// Whether `path` (local: see resolve_data_path) is trained through the streaming loader: --loader
// stream, or auto with an image folder and a transform set or more than 4 GiB decoded. Throws
// Error(kInvalidArgument) for streaming IDX data or for transforms with --loader resident.
bool use_streaming(const std::string& path, const DataFlags& flags, const LoaderSettings& loader);

// $XDG_CACHE_HOME/gpulab (or ~/.cache/gpulab): index caches of read-only folders.
std::string index_cache_dir();

// Index of an image folder with the index cache on, honouring --classes,
// --per-class (when per_class is set) and --limit.
data::ImageFolderIndex index_folder(const std::string& path, const DataFlags& flags,
                                    bool per_class);

struct StreamingData {
  data::ImageFolderIndex train;
  std::optional<data::ImageFolderIndex> validation;  // --val-data or --val-split
  data::TransformOptions transforms;                 // output size and channels resolved
  data::LoaderOptions options;
};

// Indexes the training (and validation, when val_path.local is set: its first
// val_limit images, 0 = all) folders, splits off --val-split per label and
// resolves the transforms. Prints what it found (naming each path's source)
// unless quiet.
StreamingData plan_streaming(const DataPath& path, const DataPath& val_path, const DataFlags& flags,
                             const LoaderSettings& loader, double val_split, int64_t val_limit,
                             uint64_t seed, c10::Device device, bool quiet);

struct StreamingSet {
  std::unique_ptr<data::StreamingLoader> loader;
  std::optional<data::Dataset> validation;  // decoded at the training size, no augmentation
  data::Normalization normalization;
  int64_t skipped_validation = 0;
};

// Builds the loader; `normalization` unset = estimated from the training
// images (through the transforms without their randomness).
StreamingSet open_streaming(const StreamingData& data,
                            std::optional<data::Normalization> normalization, bool quiet);

// Every image of the folder at `path` (honouring --classes, --per-class and
// --limit) decoded through `transforms` without their randomness, on decode
// threads, as training decodes its validation images: [N, C, H, W] uint8.
// Files left out under --skip-bad-files are counted in `skipped`.
data::Dataset decode_image_folder(const DataPath& path, const DataFlags& flags,
                                  const data::TransformOptions& transforms, int64_t* skipped);

}  // namespace gpulab::app
