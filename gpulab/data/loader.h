// The streaming loader: a pool of decode threads turns the steps the trainer
// asks for into uint8 batches (pinned host memory when the device is a GPU),
// `prefetch` steps ahead; the consumer copies each to the device and
// normalises it there. Batch k holds the same samples, in the same order, with
// the same augmentation whatever the thread count. Targets are class indices
// (image folders) or label maps decoded beside their images (pixel labels).
#pragma once

#include <c10/core/Device.h>

#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "gpulab/core/options.h"
#include "gpulab/data/batch_source.h"
#include "gpulab/data/dataset.h"
#include "gpulab/data/image_folder_index.h"
#include "gpulab/data/pixel_label_layout.h"
#include "gpulab/data/resident_batcher.h"
#include "gpulab/data/sample_decoder.h"
#include "gpulab/data/transforms.h"

namespace gpulab::data {

// Reads a sample's encoded bytes by name: local files by default; remote
// datastores plug in here. Must be thread-safe.
using ByteReader = std::function<std::string(const std::string& name)>;

struct LoaderOptions {
  // Decode threads; 0 = one per core.
  GPULAB_ARG(int, threads) = 0;
  // Steps prepared ahead of the one the trainer consumes (>= 1).
  GPULAB_ARG(int, prefetch) = 4;
  // Where next() puts batches; CUDA batches are collated in pinned memory
  // and copied asynchronously on a side stream.
  GPULAB_ARG(c10::Device, device) = c10::Device(c10::kCPU);
  GPULAB_ARG(bool, pin_memory) = true;
  // Keep the device batch NHWC (ChannelsLast) instead of NCHW.
  GPULAB_ARG(bool, channels_last) = false;
  // Augmentation seed: sample i of epoch e uses sample_seed(seed, e, i).
  GPULAB_ARG(uint64_t, seed) = 0;
  // Skip (and count) undecodable images instead of failing; a skipped image
  // makes its batch one smaller (empty when every image of it is bad).
  GPULAB_ARG(bool, skip_bad_files) = false;
  // Images with more pixels are refused (decompression bombs).
  GPULAB_ARG(int64_t, max_pixels) = kDefaultMaxPixels;
  // Decode only the part of each JPEG its crop needs (same pixels, about half
  // the work for a random resized crop); false decodes whole images.
  GPULAB_ARG(bool, jpeg_region_decode) = true;
  // Empty = read local files.
  GPULAB_ARG(ByteReader, reader);
  // Names files in the errors of undecodable images (empty = the path).
  GPULAB_ARG(FileNamer, file_name);
};

// Not copyable. start_epoch/next/next_pixels from one thread only.
class StreamingLoader : public BatchSource {
 public:
  // `transforms` must give a fixed output size (see with_output_size).
  StreamingLoader(ImageFolderIndex samples, TransformOptions transforms,
                  Normalization normalization, LoaderOptions options);
  // Image/label-map pairs (segmentation): each label file is decoded beside
  // its image on the decode threads and the image's transform plan applied to
  // it too (nearest-neighbour, 255 outside the image, no colour change), so
  // targets are [B, H, W] uint8 class ids (255 = no label) aligned with the
  // pixels. A label map of another size than its image is an error naming
  // both (a bad file under skip_bad_files).
  StreamingLoader(const PixelLabelIndex& pairs, TransformOptions transforms,
                  Normalization normalization, LoaderOptions options);
  ~StreamingLoader() override;
  StreamingLoader(const StreamingLoader&) = delete;
  StreamingLoader& operator=(const StreamingLoader&) = delete;

  int64_t size() const override { return samples_.size(); }
  void start_epoch(int64_t epoch, std::vector<at::Tensor> step_indices) override;
  // Normalised float32 [B, C, H, W] and targets on the device: [B] int64
  // class indices, [B, H, W] uint8 label maps, or none for unlabelled
  // folders (B may be 0 under skip_bad_files). Rethrows the error of a bad image (naming the
  // file), or of a step that could not be assembled, when its step comes.
  Batch next() override;
  double wait_seconds() const override;
  bool may_drop_samples() const override { return options_.skip_bad_files(); }

  // The next step as collated: [B, H, W, C] uint8 CPU pixels and the
  // targets (what next() copies and normalises).
  std::pair<at::Tensor, at::Tensor> next_pixels();

  // Distinct files skipped so far under skip_bad_files.
  int64_t skipped_files() const;
  // Their rows in samples(), ascending (data-parallel ranks merge these: a
  // file may fall to different ranks in different epochs).
  std::vector<int64_t> skipped_samples() const;
  int channels() const { return decoder_.channels(); }
  int height() const { return decoder_.out_height(); }
  int width() const { return decoder_.out_width(); }
  // The images (pairs: their image files, no per-file labels).
  const ImageFolderIndex& samples() const { return samples_; }

 private:
  // Pairs' label files and colour/id mapping; null for image folders.
  struct LabelMaps {
    std::vector<std::string> files;
    LabelMapping mapping;
  };
  StreamingLoader(ImageFolderIndex samples, TransformOptions transforms,
                  Normalization normalization, LoaderOptions options,
                  std::shared_ptr<const LabelMaps> label_maps);

  struct Step;  // one batch being assembled
  void work();
  void decode_one(const std::shared_ptr<Step>& step, size_t position, int64_t sample,
                  int64_t epoch);
  std::shared_ptr<Step> take_step();

  const ImageFolderIndex samples_;
  const std::shared_ptr<const LabelMaps> label_maps_;
  const SampleDecoder decoder_;
  const LoaderOptions options_;
  ByteReader reader_;
  PixelAffine affine_;

  mutable std::mutex mutex_;            // guards everything below
  std::condition_variable work_ready_;  // workers: a sample may be claimed, or stop
  std::condition_variable step_done_;   // consumer: a step completed
  bool stop_ = false;
  int64_t epoch_ = 0;
  std::vector<std::vector<int64_t>> steps_;       // this epoch's sample indices per step
  std::map<size_t, std::shared_ptr<Step>> open_;  // claimed, not yet consumed
  size_t claim_step_ = 0, claim_pos_ = 0;         // next sample to hand a worker
  size_t consumed_ = 0;                           // steps handed to the consumer
  double wait_seconds_ = 0;
  std::set<int64_t> bad_samples_;
  std::vector<std::thread> workers_;
};

// The image files of `pairs` as an unlabelled index with the pairs' classes
// (what with_output_size and any_colour_image read).
ImageFolderIndex image_index(const PixelLabelIndex& pairs);

// `transforms` with its output size fixed in height/width (and channels 0
// resolved: 3 when the first readable image or any_colour_image() is
// colour, else 1): the crop/resize/size set, else the first readable image's
// (images above `max_pixels` by their header are passed over unread).
TransformOptions with_output_size(TransformOptions transforms, const ImageFolderIndex& samples,
                                  const ByteReader& reader = nullptr,
                                  int64_t max_pixels = kDefaultMaxPixels);

// Whether any of up to `samples` of `files`, spread evenly, is a colour image
// by its header (undecoded). Unreadable files and formats without a header
// parser count as grey.
bool any_colour_image(const std::vector<std::string>& files, const ByteReader& reader = nullptr,
                      int64_t samples = 64);

// Mean and standard deviation per channel of up to `max_samples` images spread
// evenly over the set, through `loader`'s transforms (epoch 0). Call before
// the first start_epoch.
Normalization estimate_normalization(StreamingLoader& loader, int64_t max_samples = 512);

// Decodes every sample of `loader` in order into an in-memory Dataset
// (e.g. the validation set at the training size). Call before start_epoch.
Dataset decode_all(StreamingLoader& loader, int64_t batch_size = 64);

}  // namespace gpulab::data
