// Pixel-label data sets on disk: which layout a folder has (generic images/
// and masks/, CamVid's colour-coded labels, Cityscapes' leftImg8bit/ and
// gtFine/), its image/label pairs matched by file stem, and how a label
// file's raw values map to class ids. Indexing only: no pixel is decoded here
// (pixel_label_decode.h does that).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "gpulab/data/label_spec.h"

namespace gpulab::data {

enum class PixelLabelLayout {
  kGeneric,     // images/<stem>.*, masks/<stem>.png (grey ids), classes.txt
  kCamVid,      // images/<stem>.*, labels/<stem>_L.png or <stem>.png (RGB), classes.json
  kCityscapes,  // leftImg8bit/<split>/<city>/*_leftImg8bit.png, gtFine/... label files
};

// "generic", "camvid", "cityscapes".
std::string to_string(PixelLabelLayout layout);
// The layout named `name` (any case). Throws Error(kInvalidArgument) listing
// the valid names.
PixelLabelLayout parse_pixel_label_layout(const std::string& name);

// How the raw values of a label file become class ids (255 = no label).
class LabelMapping {
 public:
  // Grey label files: value v -> grey[v]; kInvalid marks a value that is an
  // error (a label id out of range).
  static constexpr int16_t kInvalid = -1;
  static LabelMapping grey(std::array<int16_t, 256> table);
  // Colour label files: packed 0xRRGGBB -> class id; colours not in the map
  // are the ignore label, or an error when `unknown_is_error` (except Void,
  // (0, 0, 0), which always carries no label unless the table maps it).
  static LabelMapping colors(std::unordered_map<uint32_t, uint8_t> table, bool unknown_is_error);

  bool is_color() const { return color_; }
  const std::array<int16_t, 256>& grey_table() const { return grey_; }
  const std::unordered_map<uint32_t, uint8_t>& color_table() const { return colors_; }
  bool unknown_is_error() const { return unknown_is_error_; }

 private:
  bool color_ = false;
  std::array<int16_t, 256> grey_{};
  std::unordered_map<uint32_t, uint8_t> colors_;
  bool unknown_is_error_ = false;
};

struct PixelLabelPair {
  std::string stem;   // the name both files share, e.g. "0016E5_08109" or "aachen_000000_000019"
  std::string image;  // path of the image file
  std::string label;  // path of its label file
};

// An indexed pixel-label set: pairs in stem order, their classes and how
// label values map onto them.
struct PixelLabelIndex {
  std::string root;
  PixelLabelLayout layout = PixelLabelLayout::kGeneric;
  LabelSpec labels;  // ignore_value 255
  LabelMapping mapping;
  std::vector<PixelLabelPair> pairs;

  int64_t size() const { return static_cast<int64_t>(pairs.size()); }
};

// What to index. Chained setters, like LibTorch's options.
struct PixelLabelOptions {
  explicit PixelLabelOptions(std::string root) : root_(std::move(root)) {}
  PixelLabelOptions& split(std::string v) {
    split_ = std::move(v);
    return *this;
  }
  PixelLabelOptions& class_table(std::string v) {
    class_table_ = std::move(v);
    return *this;
  }
  PixelLabelOptions& unknown_colors_are_errors(bool v) {
    unknown_colors_are_errors_ = v;
    return *this;
  }
  const std::string& root() const { return root_; }
  const std::string& split() const { return split_; }
  const std::string& class_table() const { return class_table_; }
  bool unknown_colors_are_errors() const { return unknown_colors_are_errors_; }

 private:
  std::string root_;
  // "train", "val", "test": generic and CamVid read the stems listed in
  // splits/<split>.txt, Cityscapes the <split> folders. "" = every pair
  // (Cityscapes: "train").
  std::string split_;
  // The class table: classes.txt (generic: one name per line, id order) or
  // classes.json (CamVid: [{"name", "colors": [[r,g,b],...], "display": [r,g,b]}]);
  // "" = the one in the root (CamVid: else CamVid's 32->11 table).
  std::string class_table_;
  // CamVid: a colour in no class is an error naming the file (default: the
  // ignore label, as MATLAB's <undefined>).
  bool unknown_colors_are_errors_ = false;
};

// Whether `path` is a folder in one of the three layouts.
bool is_pixel_label_folder(const std::string& path);

// The folder's layout. Throws Error(kInvalidArgument) naming the folder and
// what each layout expects when it is none of them.
PixelLabelLayout detect_pixel_label_layout(const std::string& root);

// Indexes the pairs. Throws Error(kNotFound) for a missing folder or split
// file, Error(kInvalidArgument) naming the file for an image without its
// label file (or the reverse), and Error(kCorruptData) for a malformed class
// table.
PixelLabelIndex index_pixel_labels(const PixelLabelOptions& options);

// The pairs of `index` at `rows`, in that order.
PixelLabelIndex subset(const PixelLabelIndex& index, const std::vector<int64_t>& rows);

// CamVid's 32 colours grouped into MATLAB's 11 classes (Sky, Building, Pole,
// Road, Pavement, Tree, SignSymbol, Fence, Car, Pedestrian, Bicyclist) with
// MATLAB's camvidColorMap as the palette; Void (0,0,0) is not in it (ignore).
LabelSpec camvid_11_classes();

// Cityscapes' 19 train classes (road ... bicycle) and their colours, with
// source_ids the labelIds each train id comes from.
LabelSpec cityscapes_19_classes();

}  // namespace gpulab::data
