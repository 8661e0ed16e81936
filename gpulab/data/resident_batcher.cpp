// Device-resident batching: index_select + one fused normalisation.
#include "gpulab/data/resident_batcher.h"

#include <torch/torch.h>

#include "gpulab/core/error.h"

namespace gpulab::data {

ResidentBatcher::ResidentBatcher(const Dataset& ds, const Normalization& norm, c10::Device device,
                                 bool channels_last)
    : device_(device) {
  GPULAB_CHECK(static_cast<int64_t>(norm.mean.size()) == ds.channels(), ErrorKind::kInvalidArgument,
               "normalisation has {} channels but the images have {}", norm.mean.size(),
               ds.channels());
  images_ = ds.images.to(device);
  if (channels_last) images_ = images_.contiguous(at::MemoryFormat::ChannelsLast);
  if (ds.targets.defined()) targets_ = ds.targets.to(device);
  affine_ = pixel_affine(norm, device);
}

Batch ResidentBatcher::normalise(const at::Tensor& images, const at::Tensor& targets) const {
  return {affine_.apply(images), targets};
}

Batch ResidentBatcher::batch(const at::Tensor& indices) const {
  auto idx = indices.to(device_, /*non_blocking=*/true);
  return normalise(images_.index_select(0, idx),
                   targets_.defined() ? targets_.index_select(0, idx) : at::Tensor());
}

Batch ResidentBatcher::range(int64_t begin, int64_t end) const {
  return normalise(images_.slice(0, begin, end),
                   targets_.defined() ? targets_.slice(0, begin, end) : at::Tensor());
}

}  // namespace gpulab::data
