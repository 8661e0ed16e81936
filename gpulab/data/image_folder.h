// Datastore for folders of images labelled by sub-folder name, like MATLAB's
// imageDatastore(root, 'IncludeSubfolders', true, 'LabelSource', 'foldernames').
#pragma once

#include <string>
#include <vector>

#include "gpulab/core/options.h"
#include "gpulab/data/dataset.h"

namespace gpulab::data {

struct ImageFolderOptions {
  explicit ImageFolderOptions(std::string root) : root_(std::move(root)) {}
  // Folder whose immediate sub-folders are the classes (sorted by name).
  GPULAB_ARG(std::string, root);
  // Lower-case file extensions kept; other files are ignored.
  GPULAB_ARG(std::vector<std::string>, extensions) = {".png",  ".jpg", ".jpeg", ".bmp", ".tif",
                                                      ".tiff", ".pgm", ".ppm",  ".webp"};
  // Channels of the decoded images: 1 or 3; 0 = take the first image's.
  GPULAB_ARG(int, channels) = 0;
  // Size every image is resized to; 0 = the first image's size.
  GPULAB_ARG(int, height) = 0;
  GPULAB_ARG(int, width) = 0;
  // Skip (and count) images that cannot be decoded instead of failing.
  GPULAB_ARG(bool, skip_bad_files) = false;
};

struct ImageFolderIndex {
  std::vector<std::string> files;  // sorted by class, then file name
  std::vector<int64_t> labels;     // class index per file
  std::vector<std::string> class_names;
};

// Lists the image files per class. Throws Error(kNotFound) for a missing root
// and Error(kCorruptData) for a root without class folders or a class folder
// without images (naming it).
ImageFolderIndex index_image_folder(const ImageFolderOptions& options);

// Decodes every image into memory. `skipped` (if given) receives the number of
// undecodable files skipped under skip_bad_files.
Dataset load_image_folder(const ImageFolderOptions& options, int64_t* skipped = nullptr);

}  // namespace gpulab::data
