// Listing an image folder (one sub-folder per class) quickly: class folders
// are walked in parallel, and the list is cached beside the images so a
// million-file folder is indexed once. Needs no decoder.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "gpulab/core/options.h"
#include "gpulab/data/image_files.h"
#include "gpulab/data/image_header.h"
#include "gpulab/data/label_spec.h"

namespace gpulab::data {

// How a file is named in messages, e.g. a cached remote object by its URL.
// Empty = by its path. Must be thread-safe.
using FileNamer = std::function<std::string(const std::string& file)>;

struct ImageFolderOptions {
  explicit ImageFolderOptions(std::string root) : root_(std::move(root)) {}
  // Folder whose immediate sub-folders are the classes (sorted by name).
  GPULAB_ARG(std::string, root);
  // false: the folder is a flat (or nested) set of unlabelled images, every
  // image below root in one sorted list with no labels (style transfer's
  // training set).
  GPULAB_ARG(bool, labelled) = true;
  // Lower-case file extensions kept; other files are ignored.
  GPULAB_ARG(std::vector<std::string>, extensions) = image_extensions();
  // Channels of the decoded images: 1 or 3; 0 = 3 when the first image or
  // any of a sample of the others is colour (as torchvision), else 1.
  GPULAB_ARG(int, channels) = 0;
  // Size every image is resized to; 0 = the first image's size.
  GPULAB_ARG(int, height) = 0;
  GPULAB_ARG(int, width) = 0;
  // Skip (and count) images that cannot be decoded instead of failing.
  GPULAB_ARG(bool, skip_bad_files) = false;
  // Images with more pixels are refused (decompression bombs), by their
  // header before decoding where the format has one.
  GPULAB_ARG(int64_t, max_pixels) = kDefaultMaxPixels;
  // Names files in the errors of undecodable images (empty = the path).
  GPULAB_ARG(FileNamer, file_name);
  // Threads walking class folders; 0 = one per core.
  GPULAB_ARG(int, index_threads) = 0;
  // Threads decoding images (load_image_folder); 0 = one per core. The
  // result is the same for any count.
  GPULAB_ARG(int, decode_threads) = 0;
  // Cache the index: in ROOT/.gpulab-index.json when ROOT is writable, else
  // in cache_dir (when set) under a name derived from ROOT. A cached index is
  // used while every class folder, and every folder below one, keeps its
  // modification time (adding or removing a file changes its folder's).
  // Symbolic links to folders are followed, each folder walked once.
  GPULAB_ARG(bool, cache_index) = false;
  GPULAB_ARG(std::string, cache_dir) = "";
};

struct ImageFolderIndex {
  std::vector<std::string> files;  // sorted by class, then file name
  std::vector<int64_t> labels;     // class index per file; empty when unlabelled
  LabelSpec label_spec;     // the class folders' names, or empty for a flat unlabelled folder
  std::string root;         // where it came from, for messages
  bool from_cache = false;  // read from the index cache

  int64_t size() const { return static_cast<int64_t>(files.size()); }
};

// Lists the image files per class (or, unlabelled, every image below root).
// Throws Error(kNotFound) for a missing root and Error(kCorruptData) for a
// labelled root without class folders or a folder without images (naming it).
ImageFolderIndex index_image_folder(const ImageFolderOptions& options);

// Where the index of `options.root()` is cached ("" when nowhere).
std::string index_cache_path(const ImageFolderOptions& options);

// The entries at `rows` (in that order), keeping classes and root.
ImageFolderIndex subset(const ImageFolderIndex& index, const std::vector<int64_t>& rows);

// As the Dataset versions in dataset.h and split.h, on an index.
std::vector<int64_t> count_each_label(const ImageFolderIndex& index);
std::string format_label_counts(const ImageFolderIndex& index);
std::pair<ImageFolderIndex, ImageFolderIndex> split_each_label(const ImageFolderIndex& index,
                                                               double amount, uint64_t seed);
ImageFolderIndex take_each_label(const ImageFolderIndex& index, int64_t count);
ImageFolderIndex select_classes(const ImageFolderIndex& index,
                                const std::vector<std::string>& wanted);

}  // namespace gpulab::data
