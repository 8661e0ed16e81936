// Image-folder indexing and decoding into an in-memory Dataset.
#include "gpulab/data/image_folder.h"

#include <torch/torch.h>

#include <algorithm>
#include <filesystem>

#include "gpulab/core/atomic_file.h"
#include "gpulab/core/error.h"
#include "gpulab/data/image_codec.h"
#include "gpulab/data/image_decode.h"

namespace gpulab::data {

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
        const cv::Mat probe =
            detail::decode_image(file, core::read_file(file), /*channels=*/0).pixels;
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
