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

PixelLabelCounts count_each_pixel_label(const Dataset& ds) {
  const int64_t classes = ds.label_spec.size();
  PixelLabelCounts out{std::vector<int64_t>(static_cast<size_t>(classes), 0),
                       std::vector<int64_t>(static_cast<size_t>(classes), 0)};
  if (ds.size() == 0) return out;
  const at::Tensor maps = ds.targets.cpu().to(torch::kInt64).reshape({ds.size(), -1});
  const int64_t pixels = maps.size(1);
  // One bincount per image: [N, classes + 1] with the last column for ids
  // outside the classes (no label).
  const at::Tensor ids =
      maps.clamp_max(classes) + torch::arange(ds.size()).unsqueeze(1) * (classes + 1);
  const at::Tensor per_image = torch::bincount(ids.flatten(), {}, ds.size() * (classes + 1))
                                   .reshape({ds.size(), classes + 1});
  const at::Tensor counts = per_image.narrow(1, 0, classes);
  const at::Tensor total = counts.sum(0).contiguous();
  const at::Tensor present = (counts.gt(0).to(torch::kInt64) * pixels).sum(0).contiguous();
  for (int64_t c = 0; c < classes; ++c) {
    out.pixels[static_cast<size_t>(c)] = total.data_ptr<int64_t>()[c];
    out.image_pixels[static_cast<size_t>(c)] = present.data_ptr<int64_t>()[c];
  }
  return out;
}

std::string format_label_counts(const Dataset& ds) {
  if (ds.targets.defined() && ds.targets.dim() == 3) {
    return format_label_counts(ds.label_spec, count_each_pixel_label(ds));
  }
  core::TextTable table({"Label", "Count"});
  auto counts = count_each_label(ds);
  for (size_t c = 0; c < counts.size(); ++c) {
    table.add_row({ds.label_spec.names[c], std::to_string(counts[c])});
  }
  return table.render();
}

std::string format_label_counts(const LabelSpec& labels, const PixelLabelCounts& counts) {
  core::TextTable table({"Label", "PixelCount", "ImagePixelCount"});
  for (size_t c = 0; c < counts.pixels.size(); ++c) {
    table.add_row({labels.names[c], std::to_string(counts.pixels[c]),
                   std::to_string(counts.image_pixels[c])});
  }
  return table.render();
}

}  // namespace gpulab::data
