// Label counts, per-label splits and class selection on an index, by running
// the Dataset versions on a Dataset whose "images" are the row numbers.
#include <torch/torch.h>

#include "gpulab/core/text_table.h"
#include "gpulab/data/dataset.h"
#include "gpulab/data/image_folder_index.h"
#include "gpulab/data/split.h"

namespace gpulab::data {
namespace {

Dataset rows_as_dataset(const ImageFolderIndex& index) {
  Dataset ds;
  ds.images = torch::arange(index.size(), torch::kInt64).view({index.size(), 1, 1, 1});
  ds.targets = torch::tensor(index.labels, torch::kInt64).view({index.size()});
  ds.label_spec = index.label_spec;
  ds.source = index.root;
  return ds;
}

ImageFolderIndex from_rows(const ImageFolderIndex& index, const Dataset& rows) {
  auto r = rows.images.flatten().contiguous();
  ImageFolderIndex out =
      subset(index, std::vector<int64_t>(r.data_ptr<int64_t>(), r.data_ptr<int64_t>() + r.numel()));
  auto l = rows.targets.contiguous();
  out.labels.assign(l.data_ptr<int64_t>(), l.data_ptr<int64_t>() + l.numel());
  out.label_spec = rows.label_spec;
  return out;
}

}  // namespace

ImageFolderIndex subset(const ImageFolderIndex& index, const std::vector<int64_t>& rows) {
  ImageFolderIndex out;
  out.label_spec.names = index.label_spec.names;
  out.root = index.root;
  out.from_cache = index.from_cache;
  for (int64_t r : rows) {
    out.files.push_back(index.files.at(static_cast<size_t>(r)));
    if (!index.labels.empty()) out.labels.push_back(index.labels.at(static_cast<size_t>(r)));
  }
  return out;
}

std::vector<int64_t> count_each_label(const ImageFolderIndex& index) {
  std::vector<int64_t> counts(index.label_spec.names.size(), 0);
  for (int64_t l : index.labels) ++counts.at(static_cast<size_t>(l));
  return counts;
}

std::string format_label_counts(const ImageFolderIndex& index) {
  core::TextTable table({"Label", "Count"});
  auto counts = count_each_label(index);
  for (size_t c = 0; c < counts.size(); ++c) {
    table.add_row({index.label_spec.names[c], std::to_string(counts[c])});
  }
  return table.render();
}

std::pair<ImageFolderIndex, ImageFolderIndex> split_each_label(const ImageFolderIndex& index,
                                                               double amount, uint64_t seed) {
  auto parts = split_each_label(rows_as_dataset(index), amount, seed);
  return {from_rows(index, parts.first), from_rows(index, parts.second)};
}

ImageFolderIndex take_each_label(const ImageFolderIndex& index, int64_t count) {
  return from_rows(index, take_each_label(rows_as_dataset(index), count));
}

ImageFolderIndex select_classes(const ImageFolderIndex& index,
                                const std::vector<std::string>& wanted) {
  return from_rows(index, select_classes(rows_as_dataset(index), wanted));
}

}  // namespace gpulab::data
