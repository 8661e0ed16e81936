// Image-folder indexing and decoding into an in-memory Dataset.
#include "gpulab/data/image_folder.h"

#include <torch/torch.h>

#include <algorithm>
#include <filesystem>

#include "gpulab/core/atomic_file.h"
#include "gpulab/core/error.h"
#include "gpulab/data/image_codec.h"
#include "gpulab/data/image_decode.h"
#include "gpulab/data/loader.h"
#include "gpulab/data/sample_decoder.h"

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
    const std::string name = options.file_name() ? options.file_name()(file) : file;
    try {
      const std::string bytes = core::read_file(file);
      if (channels == 0 || height == 0 || width == 0) {
        // The first decodable image fixes what was left open; colour wins
        // when any sampled image is colour (torchvision always gives RGB).
        const auto probe = SampleDecoder::probe(name, bytes, options.max_pixels());
        if (channels == 0) channels = probe[2] != 1 || any_colour_image(index.files) ? 3 : 1;
        if (height == 0) height = probe[0];
        if (width == 0) width = probe[1];
      }
      images.push_back(
          decode_image_bytes(name, bytes, channels, height, width, options.max_pixels()));
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
