// Pixel-label decoding with OpenCV: label files through the layout's
// mapping, images through the shared decoder, both resized together.
#include "gpulab/data/pixel_label_decode.h"

#include <torch/torch.h>

#include <optional>

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>
#ifdef GPULAB_WITH_IMGCODECS
#include <opencv2/imgcodecs.hpp>
#endif

#include "gpulab/core/atomic_file.h"
#include "gpulab/core/error.h"
#include "gpulab/core/parallel_for.h"
#include "gpulab/data/image_codec.h"
#include "gpulab/data/image_decode.h"

namespace gpulab::data {
namespace {

constexpr uint8_t kIgnore = 255;

at::Tensor map_grey(const cv::Mat& m, const LabelMapping& mapping, const std::string& path) {
  GPULAB_CHECK(m.type() == CV_8UC1, ErrorKind::kCorruptData,
               "label file '{}': expected an 8-bit grey image of label ids, found {} channel(s) "
               "of {}-byte values; save the label ids as an 8-bit grey PNG",
               path, m.channels(), m.elemSize1());
  at::Tensor out = torch::empty({m.rows, m.cols}, torch::kUInt8);
  uint8_t* dst = out.data_ptr<uint8_t>();
  const auto& table = mapping.grey_table();
  for (int y = 0; y < m.rows; ++y) {
    const uint8_t* row = m.ptr<uint8_t>(y);
    for (int x = 0; x < m.cols; ++x) {
      const int16_t c = table[row[x]];
      GPULAB_CHECK(c != LabelMapping::kInvalid, ErrorKind::kCorruptData,
                   "label file '{}': label id {} at (x {}, y {}) is out of range (the class "
                   "table has ids 0..{}, and 255 = no label)",
                   path, row[x], x, y, std::count_if(table.begin(), table.end(), [](int16_t v) {
                                         return v != LabelMapping::kInvalid;
                                       }) - 2);
      *dst++ = static_cast<uint8_t>(c);
    }
  }
  return out;
}

at::Tensor map_colors(const cv::Mat& m, const LabelMapping& mapping, const std::string& path) {
  GPULAB_CHECK(m.depth() == CV_8U && (m.channels() == 3 || m.channels() == 4),
               ErrorKind::kCorruptData,
               "label file '{}': expected an 8-bit colour image (CamVid colour labels), found {} "
               "channel(s)",
               path, m.channels());
  at::Tensor out = torch::empty({m.rows, m.cols}, torch::kUInt8);
  uint8_t* dst = out.data_ptr<uint8_t>();
  const auto& table = mapping.color_table();
  uint32_t last = 0xffffffff;
  uint8_t last_class = kIgnore;
  for (int y = 0; y < m.rows; ++y) {
    const uint8_t* p = m.ptr<uint8_t>(y);
    for (int x = 0; x < m.cols; ++x, p += m.channels()) {
      const uint32_t rgb = (uint32_t{p[2]} << 16) | (uint32_t{p[1]} << 8) | p[0];  // BGR
      if (rgb != last) {
        auto it = table.find(rgb);
        // Void (0, 0, 0) is CamVid's "no label", never an unknown colour.
        GPULAB_CHECK(it != table.end() || rgb == 0 || !mapping.unknown_is_error(),
                     ErrorKind::kCorruptData,
                     "label file '{}': colour ({}, {}, {}) at (x {}, y {}) is in no class of the "
                     "class table; add it to a class, or let unknown colours be ignored",
                     path, p[2], p[1], p[0], x, y);
        last = rgb;
        last_class = it == table.end() ? kIgnore : it->second;
      }
      *dst++ = last_class;
    }
  }
  return out;
}

// A copy of `m` (8-bit, continuous or not) as [rows, cols, channels] uint8.
at::Tensor to_tensor(const cv::Mat& m) {
  const cv::Mat dense = m.isContinuous() ? m : m.clone();
  return torch::from_blob(dense.data, {dense.rows, dense.cols, dense.channels()}, torch::kUInt8)
      .clone();
}

}  // namespace

at::Tensor decode_label_file(const std::string& path, const LabelMapping& mapping) {
  return decode_label_bytes(path, core::read_file(path), mapping);
}

at::Tensor decode_label_bytes(const std::string& path, const std::string& bytes,
                              const LabelMapping& mapping) {
#ifdef GPULAB_WITH_IMGCODECS
  GPULAB_CHECK(!bytes.empty(), ErrorKind::kCorruptData, "label file '{}' is empty", path);
  cv::Mat m;
  try {
    m = cv::imdecode(
        cv::Mat(1, static_cast<int>(bytes.size()), CV_8UC1, const_cast<char*>(bytes.data())),
        cv::IMREAD_UNCHANGED);
  } catch (const cv::Exception& e) {
    GPULAB_FAIL(ErrorKind::kCorruptData, "label file '{}' cannot be decoded: {}", path, e.what());
  }
  GPULAB_CHECK(!m.empty(), ErrorKind::kCorruptData,
               "label file '{}' cannot be decoded (unreadable or not an image)", path);
  return mapping.is_color() ? map_colors(m, mapping, path) : map_grey(m, mapping, path);
#else
  (void)bytes, (void)mapping;
  GPULAB_FAIL(ErrorKind::kUnavailable,
              "label file '{}': this build decodes JPEG only; PNG label files need OpenCV's "
              "imgcodecs",
              path);
#endif
}

PixelLabelCounts count_each_pixel_label(const PixelLabelIndex& index, int threads) {
  const int64_t classes = index.labels.size();
  // Per image: its pixels of each class (ids of no class fall in an extra
  // last bin), and its pixel count.
  std::vector<at::Tensor> counts(static_cast<size_t>(index.size()));
  std::vector<int64_t> sizes(static_cast<size_t>(index.size()));
  core::parallel_for(index.size(), threads, [&](int64_t i) {
    const at::Tensor ids =
        decode_label_file(index.pairs[static_cast<size_t>(i)].label, index.mapping);
    counts[static_cast<size_t>(i)] =
        torch::bincount(ids.flatten().to(torch::kInt64).clamp_max(classes), {}, classes + 1)
            .narrow(0, 0, classes)
            .contiguous();
    sizes[static_cast<size_t>(i)] = ids.numel();
  });
  PixelLabelCounts out{std::vector<int64_t>(static_cast<size_t>(classes), 0),
                       std::vector<int64_t>(static_cast<size_t>(classes), 0)};
  for (size_t i = 0; i < counts.size(); ++i) {
    const int64_t* n = counts[i].data_ptr<int64_t>();
    for (size_t c = 0; c < out.pixels.size(); ++c) {
      out.pixels[c] += n[c];
      if (n[c] > 0) out.image_pixels[c] += sizes[i];
    }
  }
  return out;
}

DecodedPair decode_pixel_label_pair(const PixelLabelPair& pair, const LabelMapping& mapping,
                                    const PixelLabelDecodeOptions& o) {
  at::Tensor label = decode_label_file(pair.label, mapping);
  at::Tensor image = decode_image_file(pair.image, o.channels(), 0, 0, o.max_pixels());
  GPULAB_CHECK(image.size(1) == label.size(0) && image.size(2) == label.size(1),
               ErrorKind::kCorruptData,
               "label file '{}' is {}x{} (WxH) but its image '{}' is {}x{}; a label map must "
               "have its image's size",
               pair.label, label.size(1), label.size(0), pair.image, image.size(2), image.size(1));
  const int height = o.height() > 0 ? o.height() : static_cast<int>(image.size(1));
  const int width = o.width() > 0 ? o.width() : static_cast<int>(image.size(2));
  if (height == image.size(1) && width == image.size(2)) return {image, label};
  // The image as every decode path resizes it, the label map nearest-neighbour.
  const at::Tensor hwc = image.permute({1, 2, 0}).contiguous();
  const cv::Mat pixels(static_cast<int>(hwc.size(0)), static_cast<int>(hwc.size(1)),
                       CV_8UC(static_cast<int>(hwc.size(2))), hwc.data_ptr<uint8_t>());
  const cv::Mat ids(static_cast<int>(label.size(0)), static_cast<int>(label.size(1)), CV_8UC1,
                    label.data_ptr<uint8_t>());
  cv::Mat ids_resized;
  cv::resize(ids, ids_resized, cv::Size(width, height), 0, 0, cv::INTER_NEAREST_EXACT);
  return {to_tensor(detail::resize_pixels(pixels, height, width)).permute({2, 0, 1}).contiguous(),
          to_tensor(ids_resized).squeeze(2)};
}

Dataset decode_pixel_label_set(const PixelLabelIndex& index, const PixelLabelDecodeOptions& given) {
  GPULAB_CHECK(index.size() > 0, ErrorKind::kInvalidArgument, "'{}' holds no image/label pairs",
               index.root);
  PixelLabelDecodeOptions o = given;
  std::optional<DecodedPair> first;
  if (o.height() == 0 || o.width() == 0) {
    // The set's size is its first image's.
    first = decode_pixel_label_pair(index.pairs[0], index.mapping, o);
    o.size(static_cast<int>(first->label.size(0)), static_cast<int>(first->label.size(1)));
  }
  Dataset ds;
  ds.images = torch::empty({index.size(), o.channels(), o.height(), o.width()}, torch::kUInt8);
  ds.targets = torch::empty({index.size(), o.height(), o.width()}, torch::kUInt8);
  core::parallel_for(index.size(), o.threads(), [&](int64_t i) {
    const DecodedPair p =
        i == 0 && first
            ? *first
            : decode_pixel_label_pair(index.pairs[static_cast<size_t>(i)], index.mapping, o);
    ds.images[i].copy_(p.image);
    ds.targets[i].copy_(p.label);
  });
  ds.label_spec = index.labels;
  ds.source = index.root;
  return ds;
}

}  // namespace gpulab::data
