// One entry point for classification data: decides from the path whether it is
// an IDX folder or an image folder and loads it.
#pragma once

#include <string>

#include "gpulab/core/options.h"
#include "gpulab/data/dataset.h"
#include "gpulab/data/idx_datastore.h"
#include "gpulab/data/image_folder_index.h"
#include "gpulab/data/image_header.h"

namespace gpulab::data {

struct DatastoreOptions {
  // For IDX folders: which files (train-* or t10k-*).
  GPULAB_ARG(IdxSplit, idx_split) = IdxSplit::kTrain;
  // Channels (0 = the data's own): image folders decode to 1 (grey) or 3
  // (RGB); IDX folders of grey images replicate grey to RGB for 3.
  GPULAB_ARG(int, channels) = 0;
  // For image folders: decoded size (0 = first image's).
  GPULAB_ARG(int, height) = 0;
  GPULAB_ARG(int, width) = 0;
  GPULAB_ARG(bool, skip_bad_files) = false;
  // For image folders: false reads every image below the root, unlabelled.
  GPULAB_ARG(bool, labelled) = true;
  // For image folders: images with more pixels are refused.
  GPULAB_ARG(int64_t, max_pixels) = kDefaultMaxPixels;
  // Names files in the errors of undecodable images (empty = the path).
  GPULAB_ARG(FileNamer, file_name);
};

struct LoadedData {
  Dataset dataset;
  std::string kind;           // "idx" or "image-folder"
  int64_t skipped_files = 0;  // undecodable files skipped
};

// Throws Error(kNotFound) when `path` does not exist, Error(kInvalidArgument)
// when it is neither an IDX folder nor a folder of class sub-folders.
LoadedData load_datastore(const std::string& path, const DatastoreOptions& options);

}  // namespace gpulab::data
