// StreamingLoader: workers claim samples in step order, at most `prefetch`
// steps ahead of the consumer, and write them into their step's buffer; the
// consumer takes steps in order. Work is per sample (not per batch) so two
// threads share a batch, and the order of completion never matters.
#include "gpulab/data/loader.h"

#include <torch/torch.h>

#include <opencv2/core.hpp>

#ifdef GPULAB_WITH_CUDA
#include <ATen/cuda/CUDAContext.h>
#include <ATen/cuda/CUDAEvent.h>
#include <c10/cuda/CUDAGuard.h>
#endif

#include "gpulab/core/atomic_file.h"
#include "gpulab/core/error.h"
#include "gpulab/core/stopwatch.h"
#include "gpulab/data/image_header.h"
#include "gpulab/data/pixel_label_decode.h"

namespace gpulab::data {

struct StreamingLoader::Step {
  at::Tensor pixels;         // [B, H, W, C] uint8, one slot per sample
  at::Tensor labels;         // [B] int64, [B, H, W] uint8 label maps, or undefined
  std::vector<char> ok;      // written by the worker owning that slot
  size_t remaining = 0;      // slots not yet finished (guarded by mutex_)
  std::exception_ptr error;  // the first failed slot's error (guarded)
  size_t error_position = 0;
};

ImageFolderIndex image_index(const PixelLabelIndex& pairs) {
  ImageFolderIndex index;
  index.files.reserve(pairs.pairs.size());
  for (const auto& pair : pairs.pairs) index.files.push_back(pair.image);
  index.label_spec = pairs.labels;
  index.root = pairs.root;
  return index;
}

StreamingLoader::StreamingLoader(ImageFolderIndex samples, TransformOptions transforms,
                                 Normalization normalization, LoaderOptions options)
    : StreamingLoader(std::move(samples), std::move(transforms), std::move(normalization),
                      std::move(options), nullptr) {}

namespace {

std::vector<std::string> label_files(const PixelLabelIndex& pairs) {
  std::vector<std::string> files;
  files.reserve(pairs.pairs.size());
  for (const auto& pair : pairs.pairs) files.push_back(pair.label);
  return files;
}

}  // namespace

StreamingLoader::StreamingLoader(const PixelLabelIndex& pairs, TransformOptions transforms,
                                 Normalization normalization, LoaderOptions options)
    : StreamingLoader(
          image_index(pairs), std::move(transforms), std::move(normalization), std::move(options),
          std::make_shared<const LabelMaps>(LabelMaps{label_files(pairs), pairs.mapping})) {}

StreamingLoader::StreamingLoader(ImageFolderIndex samples, TransformOptions transforms,
                                 Normalization normalization, LoaderOptions options,
                                 std::shared_ptr<const LabelMaps> label_maps)
    : samples_(std::move(samples)),
      label_maps_(std::move(label_maps)),
      decoder_(std::move(transforms), options.max_pixels(), options.jpeg_region_decode()),
      options_(std::move(options)),
      reader_(options_.reader() ? options_.reader() : ByteReader(core::read_file)) {
  GPULAB_CHECK(options_.prefetch() >= 1, ErrorKind::kInvalidArgument,
               "prefetch must be at least 1 step, got {}", options_.prefetch());
  GPULAB_CHECK(static_cast<int>(normalization.mean.size()) == decoder_.channels(),
               ErrorKind::kInvalidArgument, "normalisation has {} channels but the loader makes {}",
               normalization.mean.size(), decoder_.channels());
  affine_ = pixel_affine(normalization, options_.device());
  const int threads = options_.threads() > 0
                          ? options_.threads()
                          : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  for (int t = 0; t < threads; ++t) workers_.emplace_back([this] { work(); });
}

StreamingLoader::~StreamingLoader() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  work_ready_.notify_all();
  for (auto& t : workers_) t.join();
}

void StreamingLoader::start_epoch(int64_t epoch, std::vector<at::Tensor> step_indices) {
  std::vector<std::vector<int64_t>> steps;
  for (const auto& t : step_indices) {
    auto idx = t.to(torch::kCPU, torch::kInt64).contiguous();
    const int64_t* p = idx.data_ptr<int64_t>();
    for (int64_t i = 0; i < idx.numel(); ++i) {
      GPULAB_CHECK(p[i] >= 0 && p[i] < size(), ErrorKind::kInvalidArgument,
                   "sample index {} outside the set of {}", p[i], size());
    }
    steps.emplace_back(p, p + idx.numel());
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    // Workers still decoding the old epoch write into buffers nobody takes.
    epoch_ = epoch;
    steps_ = std::move(steps);
    open_.clear();
    claim_step_ = claim_pos_ = 0;
    consumed_ = 0;
  }
  work_ready_.notify_all();
}

void StreamingLoader::work() {
  cv::setNumThreads(0);  // one decode per thread; OpenCV's own pool would oversubscribe
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    work_ready_.wait(lock, [this] {
      return stop_ || (claim_step_ < steps_.size() &&
                       claim_step_ < consumed_ + static_cast<size_t>(options_.prefetch()));
    });
    if (stop_) return;
    const size_t k = claim_step_, j = claim_pos_;
    std::shared_ptr<Step>& slot = open_[k];
    if (!slot) {
      slot = std::make_shared<Step>();
      const auto& ids = steps_[k];
      const int64_t b = static_cast<int64_t>(ids.size());
      slot->ok.assign(ids.size(), 0);
      slot->remaining = ids.size();
      try {
        auto opts = torch::TensorOptions().dtype(torch::kUInt8);
        if (options_.device().is_cuda() && options_.pin_memory()) opts = opts.pinned_memory(true);
        slot->pixels = torch::empty({b, height(), width(), channels()}, opts);
        if (label_maps_) {  // written by the decode threads
          slot->labels = torch::empty({b, height(), width()}, opts);
        } else if (!samples_.labels.empty()) {  // unlabelled folders carry no targets
          slot->labels = torch::empty({b}, torch::kInt64);
          int64_t* labels = slot->labels.data_ptr<int64_t>();
          for (int64_t i = 0; i < b; ++i) labels[i] = samples_.labels[static_cast<size_t>(ids[i])];
        }
      } catch (const std::exception& e) {
        // An exception leaving a worker would end the process; the step
        // carries it to the consumer instead, and its samples are not decoded.
        slot->pixels = at::Tensor();
        slot->error = std::make_exception_ptr(
            Error(ErrorKind::kRuntime,
                  fmt::format("cannot allocate step {} ({} images of {}x{}x{}) from '{}': {}",
                              k + 1, b, height(), width(), channels(), samples_.root, e.what())));
      }
    }
    if (steps_[k].empty()) {
      // A rank's slice of a last global mini-batch smaller than the world:
      // an empty batch, ready at once.
      claim_pos_ = 0;
      ++claim_step_;
      step_done_.notify_all();
      continue;
    }
    std::shared_ptr<Step> step = slot;
    const int64_t sample = steps_[k][j];
    const int64_t epoch = epoch_;
    if (++claim_pos_ == steps_[k].size()) {
      claim_pos_ = 0;
      ++claim_step_;
    }
    lock.unlock();
    decode_one(step, j, sample, epoch);
    lock.lock();
    if (--step->remaining == 0) step_done_.notify_all();
  }
}

void StreamingLoader::decode_one(const std::shared_ptr<Step>& step, size_t position, int64_t sample,
                                 int64_t epoch) {
  const std::string& file = samples_.files[static_cast<size_t>(sample)];
  const std::string name = options_.file_name() ? options_.file_name()(file) : file;
  auto fail = [&](std::exception_ptr error) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!step->error || position < step->error_position) {
      step->error = std::move(error);
      step->error_position = position;
    }
  };
  if (!step->pixels.defined()) return;  // its buffer could not be allocated (step->error)
  try {
    const std::string bytes = reader_(file);
    uint8_t* out =
        step->pixels.data_ptr<uint8_t>() + static_cast<int64_t>(position) * decoder_.sample_bytes();
    const uint64_t seed = sample_seed(options_.seed(), epoch, sample);
    if (label_maps_) {
      const std::string& label_file = label_maps_->files[static_cast<size_t>(sample)];
      const std::string label_name =
          options_.file_name() ? options_.file_name()(label_file) : label_file;
      const at::Tensor ids =
          decode_label_bytes(label_name, reader_(label_file), label_maps_->mapping);
      uint8_t* label_out =
          step->labels.data_ptr<uint8_t>() + static_cast<int64_t>(position) * height() * width();
      decoder_.decode(name, bytes, seed, out, ids, label_name, label_out);
    } else {
      decoder_.decode(name, bytes, seed, out);
    }
    step->ok[position] = 1;
  } catch (const Error& e) {
    const bool bad_data = e.kind() == ErrorKind::kCorruptData || e.kind() == ErrorKind::kNotFound;
    if (options_.skip_bad_files() && bad_data) {
      std::lock_guard<std::mutex> lock(mutex_);
      bad_samples_.insert(sample);
    } else {
      fail(std::current_exception());
    }
  } catch (const std::exception& e) {
    // E.g. std::bad_alloc or a cv::Exception: say which file it was.
    fail(std::make_exception_ptr(
        Error(ErrorKind::kRuntime,
              fmt::format("loading '{}' (from '{}'): {}", name, samples_.root, e.what()))));
  }
}

std::shared_ptr<StreamingLoader::Step> StreamingLoader::take_step() {
  std::unique_lock<std::mutex> lock(mutex_);
  GPULAB_CHECK(consumed_ < steps_.size(), ErrorKind::kInternal,
               "next() called after the last of {} steps of the epoch", steps_.size());
  core::Stopwatch waited;
  step_done_.wait(lock, [this] {
    auto it = open_.find(consumed_);
    return it != open_.end() && it->second->remaining == 0;
  });
  wait_seconds_ += waited.seconds();
  auto it = open_.find(consumed_);
  std::shared_ptr<Step> step = std::move(it->second);
  open_.erase(it);
  ++consumed_;
  lock.unlock();
  work_ready_.notify_all();
  return step;
}

std::pair<at::Tensor, at::Tensor> StreamingLoader::next_pixels() {
  std::shared_ptr<Step> step = take_step();
  if (step->error) std::rethrow_exception(step->error);
  std::vector<int64_t> keep;
  for (size_t i = 0; i < step->ok.size(); ++i) {
    if (step->ok[i]) keep.push_back(static_cast<int64_t>(i));
  }
  if (keep.size() == step->ok.size()) return {step->pixels, step->labels};
  // Every image of the step may have been skipped: an empty batch, on which
  // the trainer makes no update (as a rank with no samples in data-parallel).
  auto rows = torch::tensor(keep, torch::kInt64);
  return {step->pixels.index_select(0, rows),
          step->labels.defined() ? step->labels.index_select(0, rows) : at::Tensor()};
}

Batch StreamingLoader::next() {
  auto [pixels, labels] = next_pixels();
  at::Tensor x = pixels.permute({0, 3, 1, 2});  // NCHW view of the NHWC buffer
  at::Tensor y = labels;
  const c10::Device device = options_.device();
  if (device.is_cuda()) {
#ifdef GPULAB_WITH_CUDA
    // Copy on a side stream so it overlaps the previous step's kernels; the
    // compute stream waits for it, and the allocator is told who uses it.
    auto side = c10::cuda::getStreamFromPool(false, device.index());
    auto compute = c10::cuda::getCurrentCUDAStream(device.index());
    {
      c10::cuda::CUDAStreamGuard guard(side);
      x = x.to(device, /*non_blocking=*/true);
      if (y.defined()) y = y.to(device, /*non_blocking=*/true);
    }
    at::cuda::CUDAEvent copied;
    copied.record(side);
    copied.block(compute);
    x.record_stream(compute);
    if (y.defined()) y.record_stream(compute);
#else
    GPULAB_FAIL(ErrorKind::kUnavailable, "this build of gpulab has no CUDA support");
#endif
  }
  // The cast into the wanted layout is part of the normalisation's one pass.
  return {affine_.apply(x, options_.channels_last() ? at::MemoryFormat::ChannelsLast
                                                    : at::MemoryFormat::Contiguous),
          y};
}

double StreamingLoader::wait_seconds() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return wait_seconds_;
}

int64_t StreamingLoader::skipped_files() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return static_cast<int64_t>(bad_samples_.size());
}

std::vector<int64_t> StreamingLoader::skipped_samples() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return {bad_samples_.begin(), bad_samples_.end()};
}

bool any_colour_image(const std::vector<std::string>& files, const ByteReader& reader,
                      int64_t samples) {
  const ByteReader read = reader ? reader : ByteReader(core::read_file);
  const int64_t n = static_cast<int64_t>(files.size());
  const int64_t count = std::min(n, samples);
  for (int64_t i = 0; i < count; ++i) {
    const std::string& file = files[static_cast<size_t>(i * n / count)];
    try {
      const auto header = read_image_header(read(file));
      if (header && header->channels == 3) return true;
    } catch (const Error&) {
      // An unreadable file is the loader's to report.
    }
  }
  return false;
}

TransformOptions with_output_size(TransformOptions transforms, const ImageFolderIndex& samples,
                                  const ByteReader& reader, int64_t max_pixels) {
  const auto size = transforms.output_size(0, 0);
  if (size[0] > 0 && size[1] > 0 && transforms.channels() != 0) {
    // height/width then always say the output size (a crop's wins anyway).
    return transforms.height(size[0]).width(size[1]);
  }
  const ByteReader read = reader ? reader : ByteReader(core::read_file);
  for (const auto& file : samples.files) {
    try {
      const auto probe = SampleDecoder::probe(file, read(file), max_pixels);
      if (transforms.channels() == 0) {
        // As torchvision (always RGB): colour when any sampled image is.
        transforms.channels(probe[2] != 1 || any_colour_image(samples.files, read) ? 3 : 1);
      }
      const auto out = transforms.output_size(probe[0], probe[1]);
      return transforms.height(out[0]).width(out[1]);
    } catch (const Error&) {
      // A bad (or too large) first file: the loader reports it in its place;
      // try the next.
    }
  }
  GPULAB_FAIL(ErrorKind::kCorruptData, "'{}' has no decodable images (within `max_pixels` {})",
              samples.root, max_pixels);
}

namespace {

std::vector<at::Tensor> steps_over(const std::vector<int64_t>& rows, int64_t batch_size) {
  std::vector<at::Tensor> steps;
  for (size_t b = 0; b < rows.size(); b += static_cast<size_t>(batch_size)) {
    const size_t e = std::min(rows.size(), b + static_cast<size_t>(batch_size));
    steps.push_back(
        torch::tensor(std::vector<int64_t>(rows.begin() + b, rows.begin() + e), torch::kInt64));
  }
  return steps;
}

}  // namespace

Normalization estimate_normalization(StreamingLoader& loader, int64_t max_samples) {
  const int64_t n = std::min(loader.size(), max_samples);
  std::vector<int64_t> rows;
  for (int64_t i = 0; i < n; ++i) rows.push_back(i * loader.size() / n);
  auto steps = steps_over(rows, 64);
  const size_t count = steps.size();
  loader.start_epoch(0, std::move(steps));
  const int c = loader.channels();
  std::vector<double> sum(c, 0.0), sum_sq(c, 0.0);
  double pixels = 0;
  for (size_t s = 0; s < count; ++s) {
    auto x = loader.next_pixels().first.to(torch::kFloat64).div_(255.0).view({-1, c});
    auto s1 = x.sum(0), s2 = x.pow(2).sum(0);
    for (int k = 0; k < c; ++k) {
      sum[k] += s1[k].item<double>();
      sum_sq[k] += s2[k].item<double>();
    }
    pixels += static_cast<double>(x.size(0));
  }
  Normalization norm;
  for (int k = 0; k < c; ++k) {
    const double mean = sum[k] / pixels;
    norm.mean.push_back(mean);
    norm.std.push_back(std::sqrt(std::max(sum_sq[k] / pixels - mean * mean, 1e-12)));
  }
  return norm;
}

Dataset decode_all(StreamingLoader& loader, int64_t batch_size) {
  std::vector<int64_t> rows(static_cast<size_t>(loader.size()));
  for (size_t i = 0; i < rows.size(); ++i) rows[i] = static_cast<int64_t>(i);
  auto steps = steps_over(rows, batch_size);
  const size_t count = steps.size();
  loader.start_epoch(0, std::move(steps));
  std::vector<at::Tensor> images, labels;
  for (size_t s = 0; s < count; ++s) {
    auto [x, y] = loader.next_pixels();
    images.push_back(x);
    if (y.defined()) labels.push_back(y);
  }
  Dataset ds;
  ds.images = torch::cat(images).permute({0, 3, 1, 2}).contiguous();
  if (!labels.empty()) ds.targets = torch::cat(labels);
  ds.label_spec = loader.samples().label_spec;
  ds.source = loader.samples().root;
  return ds;
}

}  // namespace gpulab::data
