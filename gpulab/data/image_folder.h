// Datastore for folders of images labelled by sub-folder name, like MATLAB's
// imageDatastore(root, 'IncludeSubfolders', true, 'LabelSource', 'foldernames').
#pragma once

#include <string>
#include <vector>

#include "gpulab/data/dataset.h"
#include "gpulab/data/image_folder_index.h"

namespace gpulab::data {

// Decodes every image into memory. `skipped` (if given) receives the number of
// undecodable files skipped under skip_bad_files.
Dataset load_image_folder(const ImageFolderOptions& options, int64_t* skipped = nullptr);

}  // namespace gpulab::data
