// What a data set's targets mean: class names in index order and, for pixel
// labels, the raw values each class groups, the value that carries no label
// and a display palette. It replaces bare class-name lists everywhere (data,
// tasks, model files).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace gpulab::data {

using Rgb = std::array<uint8_t, 3>;

struct LabelSpec {
  // Class index -> name. Empty for unlabelled data (e.g. style transfer).
  std::vector<std::string> names;
  // Optional: for each class, the raw values in label files that map to it
  // (grey label ids, or colours packed as 0xRRGGBB), so one class can group
  // several ids or colours (MATLAB's pixelLabelIDs). Empty = identity.
  std::vector<std::vector<int64_t>> source_ids;
  // Target value of pixels (or samples) with no label; -1 = none. Pixel-label
  // targets use 255.
  int64_t ignore_value = -1;
  // Optional display colour per class (overlays, colour label maps).
  std::vector<Rgb> palette;

  int64_t size() const { return static_cast<int64_t>(names.size()); }
  bool empty() const { return names.empty(); }

  static LabelSpec from_names(std::vector<std::string> names);

  // {"names": [...], "ignore_value": v, "source_ids": [[...]], "palette": [[r,g,b],...]}
  // (absent keys for empty members).
  nlohmann::json to_json() const;
  // Throws Error(kCorruptData) naming `source` for a malformed object or one
  // whose source_ids/palette do not have one entry per class.
  static LabelSpec from_json(const nlohmann::json& j, const std::string& source);

  bool operator==(const LabelSpec& other) const;
  bool operator!=(const LabelSpec& other) const { return !(*this == other); }
};

// A palette of `n` distinct colours for classes that come without one
// (Cityscapes-like first colours, then an evenly spread hue wheel).
std::vector<Rgb> default_palette(int64_t n);

}  // namespace gpulab::data
