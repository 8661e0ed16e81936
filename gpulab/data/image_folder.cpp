// Image-folder indexing and decoding into an in-memory Dataset.
#include "gpulab/data/image_folder.h"

#include <torch/torch.h>

#include <algorithm>
#include <filesystem>

#include "gpulab/core/error.h"
#include "gpulab/data/image_decode.h"

#include <opencv2/imgcodecs.hpp>

namespace gpulab::data {
namespace fs = std::filesystem;
namespace {

std::string lower_extension(const fs::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), ::tolower);
  return ext;
}

}  // namespace

ImageFolderIndex index_image_folder(const ImageFolderOptions& options) {
  const std::string& root = options.root();
  GPULAB_CHECK(fs::is_directory(root), ErrorKind::kNotFound, "image folder '{}' does not exist",
               root);
  std::vector<fs::path> class_dirs;
  for (const auto& entry : fs::directory_iterator(root)) {
    if (entry.is_directory()) class_dirs.push_back(entry.path());
  }
  std::sort(class_dirs.begin(), class_dirs.end());
  GPULAB_CHECK(!class_dirs.empty(), ErrorKind::kCorruptData,
               "image folder '{}' has no sub-folders; expected one sub-folder per "
               "class (e.g. '{}/cat/*.jpg')",
               root, root);

  ImageFolderIndex index;
  for (const auto& dir : class_dirs) {
    std::vector<std::string> files;
    std::error_code ec;
    fs::recursive_directory_iterator it(dir, ec), end;
    GPULAB_CHECK(!ec, ErrorKind::kIo, "cannot read class folder '{}': {}", dir.string(),
                 ec.message());
    for (; it != end; it.increment(ec)) {
      GPULAB_CHECK(!ec, ErrorKind::kIo, "cannot read class folder '{}': {}", dir.string(),
                   ec.message());
      if (!it->is_regular_file()) continue;
      const auto& exts = options.extensions();
      if (std::find(exts.begin(), exts.end(), lower_extension(it->path())) == exts.end()) continue;
      files.push_back(it->path().string());
    }
    GPULAB_CHECK(!files.empty(), ErrorKind::kCorruptData,
                 "class folder '{}' holds no images with extensions {}; remove it "
                 "or add images",
                 dir.string(), fmt::join(options.extensions(), " "));
    std::sort(files.begin(), files.end());
    int64_t label = static_cast<int64_t>(index.class_names.size());
    index.class_names.push_back(dir.filename().string());
    for (auto& f : files) {
      index.files.push_back(std::move(f));
      index.labels.push_back(label);
    }
  }
  return index;
}

Dataset load_image_folder(const ImageFolderOptions& options, int64_t* skipped) {
  ImageFolderIndex index = index_image_folder(options);
  int channels = options.channels();
  int height = options.height();
  int width = options.width();
  std::vector<at::Tensor> images;
  std::vector<int64_t> labels;
  int64_t bad = 0;
  for (size_t i = 0; i < index.files.size(); ++i) {
    const std::string& file = index.files[i];
    try {
      if (channels == 0 || height == 0 || width == 0) {
        // The first decodable image fixes what was left open.
        cv::Mat probe = cv::imread(file, cv::IMREAD_UNCHANGED);
        GPULAB_CHECK(!probe.empty(), ErrorKind::kCorruptData,
                     "cannot decode image '{}' (use --skip-bad-files to skip such "
                     "files)",
                     file);
        if (channels == 0) channels = probe.channels() == 1 ? 1 : 3;
        if (height == 0) height = probe.rows;
        if (width == 0) width = probe.cols;
      }
      images.push_back(decode_image_file(file, channels, height, width));
      labels.push_back(index.labels[i]);
    } catch (const Error& e) {
      if (!options.skip_bad_files() || e.kind() != ErrorKind::kCorruptData) throw;
      ++bad;
    }
  }
  GPULAB_CHECK(!images.empty(), ErrorKind::kCorruptData,
               "image folder '{}' has no decodable images ({} skipped)", options.root(), bad);
  if (skipped) *skipped = bad;
  Dataset ds;
  ds.images = torch::stack(images);
  ds.labels = torch::tensor(labels, torch::kInt64);
  ds.class_names = index.class_names;
  ds.source = options.root();
  return ds;
}

}  // namespace gpulab::data
