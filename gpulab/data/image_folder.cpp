// Image-folder indexing and decoding into an in-memory Dataset.
#include "gpulab/data/image_folder.h"

#include <torch/torch.h>

#include <algorithm>
#include <cstring>
#include <filesystem>

#include "gpulab/core/atomic_file.h"
#include "gpulab/core/error.h"
#include "gpulab/core/parallel_for.h"
#include "gpulab/data/image_codec.h"
#include "gpulab/data/image_decode.h"
#include "gpulab/data/loader.h"
#include "gpulab/data/sample_decoder.h"

namespace gpulab::data {

Dataset load_image_folder(const ImageFolderOptions& options, int64_t* skipped) {
  const ImageFolderIndex index = index_image_folder(options);
  const int64_t n = index.size();
  auto name_of = [&](const std::string& file) {
    return options.file_name() ? options.file_name()(file) : file;
  };
  auto skippable = [&](const Error& e) {
    return options.skip_bad_files() && e.kind() == ErrorKind::kCorruptData;
  };
  std::vector<char> bad(static_cast<size_t>(n), 0);
  int channels = options.channels();
  int height = options.height();
  int width = options.width();
  int64_t first = 0;
  if (channels == 0 || height == 0 || width == 0) {
    // The first decodable image fixes what was left open; colour wins when
    // any sampled image is colour (torchvision always gives RGB).
    for (; first < n; ++first) {
      const std::string& file = index.files[static_cast<size_t>(first)];
      try {
        const auto probe =
            SampleDecoder::probe(name_of(file), core::read_file(file), options.max_pixels());
        if (channels == 0) channels = probe[2] != 1 || any_colour_image(index.files) ? 3 : 1;
        if (height == 0) height = probe[0];
        if (width == 0) width = probe[1];
        break;
      } catch (const Error& e) {
        if (!skippable(e)) throw;
        bad[static_cast<size_t>(first)] = 1;
      }
    }
  }
  GPULAB_CHECK(first < n, ErrorKind::kCorruptData,
               "image folder '{}' has no decodable images ({} skipped)", options.root(), first);

  // Decoded in parallel straight into the set's tensor; parallel_for names
  // the first bad file a sequential pass would meet, whatever the threads.
  at::Tensor images = torch::empty({n, channels, height, width}, torch::kUInt8);
  const int64_t row_bytes = int64_t{channels} * height * width;
  core::parallel_for(n - first, options.decode_threads(), [&](int64_t k) {
    const int64_t i = first + k;
    const std::string& file = index.files[static_cast<size_t>(i)];
    try {
      const at::Tensor pixels = decode_image_bytes(name_of(file), core::read_file(file), channels,
                                                   height, width, options.max_pixels())
                                    .contiguous();
      std::memcpy(images.data_ptr<uint8_t>() + i * row_bytes, pixels.data_ptr<uint8_t>(),
                  static_cast<size_t>(row_bytes));
    } catch (const Error& e) {
      if (!skippable(e)) throw;
      bad[static_cast<size_t>(i)] = 1;
    }
  });

  std::vector<int64_t> keep;
  for (int64_t i = 0; i < n; ++i) {
    if (!bad[static_cast<size_t>(i)]) keep.push_back(i);
  }
  const int64_t bad_count = n - static_cast<int64_t>(keep.size());
  GPULAB_CHECK(!keep.empty(), ErrorKind::kCorruptData,
               "image folder '{}' has no decodable images ({} skipped)", options.root(), bad_count);
  if (skipped) *skipped = bad_count;
  Dataset ds;
  if (!index.labels.empty()) ds.targets = torch::tensor(index.labels, torch::kInt64);
  ds.images = images;
  if (bad_count > 0) {
    const at::Tensor rows = torch::tensor(keep, torch::kInt64);
    ds.images = images.index_select(0, rows);
    if (ds.targets.defined()) ds.targets = ds.targets.index_select(0, rows);
  }
  ds.label_spec = index.label_spec;
  ds.source = options.root();
  return ds;
}

}  // namespace gpulab::data
