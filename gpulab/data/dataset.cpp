// Dataset helpers.
#include "gpulab/data/dataset.h"

#include <torch/torch.h>

#include "gpulab/core/text_table.h"

namespace gpulab::data {

Dataset subset(const Dataset& ds, const at::Tensor& indices) {
  Dataset out;
  out.images = ds.images.index_select(0, indices).contiguous();
  if (ds.targets.defined()) out.targets = ds.targets.index_select(0, indices).contiguous();
  out.label_spec = ds.label_spec;
  out.source = ds.source;
  return out;
}

std::vector<int64_t> count_each_label(const Dataset& ds) {
  auto counts = torch::bincount(ds.targets.cpu(), {}, ds.label_spec.size());
  return std::vector<int64_t>(counts.data_ptr<int64_t>(),
                              counts.data_ptr<int64_t>() + counts.numel());
}

std::string format_label_counts(const Dataset& ds) {
  core::TextTable table({"Label", "Count"});
  auto counts = count_each_label(ds);
  for (size_t c = 0; c < counts.size(); ++c) {
    table.add_row({ds.label_spec.names[c], std::to_string(counts[c])});
  }
  return table.render();
}

}  // namespace gpulab::data
