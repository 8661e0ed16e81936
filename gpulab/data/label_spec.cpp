// LabelSpec to and from JSON, and default palettes.
#include "gpulab/data/label_spec.h"

#include <nlohmann/json.hpp>

#include <cmath>

#include "gpulab/core/error.h"

namespace gpulab::data {

LabelSpec LabelSpec::from_names(std::vector<std::string> names) {
  LabelSpec spec;
  spec.names = std::move(names);
  return spec;
}

nlohmann::json LabelSpec::to_json() const {
  nlohmann::json j = {{"names", names}};
  if (ignore_value >= 0) j["ignore_value"] = ignore_value;
  if (!source_ids.empty()) j["source_ids"] = source_ids;
  if (!palette.empty()) j["palette"] = palette;
  return j;
}

LabelSpec LabelSpec::from_json(const nlohmann::json& j, const std::string& source) {
  LabelSpec spec;
  try {
    spec.names = j.at("names").get<std::vector<std::string>>();
    spec.ignore_value = j.value("ignore_value", int64_t{-1});
    if (j.contains("source_ids")) {
      spec.source_ids = j.at("source_ids").get<std::vector<std::vector<int64_t>>>();
    }
    if (j.contains("palette")) spec.palette = j.at("palette").get<std::vector<Rgb>>();
  } catch (const nlohmann::json::exception& e) {
    GPULAB_FAIL(ErrorKind::kCorruptData, "'{}': malformed label spec ({})", source, e.what());
  }
  GPULAB_CHECK(spec.source_ids.empty() || spec.source_ids.size() == spec.names.size(),
               ErrorKind::kCorruptData,
               "'{}': the label spec has {} classes but source ids for {}; give one list per class",
               source, spec.names.size(), spec.source_ids.size());
  GPULAB_CHECK(spec.palette.empty() || spec.palette.size() == spec.names.size(),
               ErrorKind::kCorruptData,
               "'{}': the label spec has {} classes but {} palette colours; give one per class",
               source, spec.names.size(), spec.palette.size());
  return spec;
}

bool LabelSpec::operator==(const LabelSpec& other) const {
  return names == other.names && source_ids == other.source_ids &&
         ignore_value == other.ignore_value && palette == other.palette;
}

std::vector<Rgb> default_palette(int64_t n) {
  // Cityscapes' first colours are familiar to segmentation users; past them,
  // hues spread by the golden angle stay distinct for any count.
  static const Rgb kFirst[] = {{128, 64, 128},  {244, 35, 232},  {70, 70, 70},   {102, 102, 156},
                               {190, 153, 153}, {153, 153, 153}, {250, 170, 30}, {220, 220, 0},
                               {107, 142, 35},  {152, 251, 152}, {70, 130, 180}, {220, 20, 60},
                               {255, 0, 0},     {0, 0, 142},     {0, 0, 70},     {0, 60, 100},
                               {0, 80, 100},    {0, 0, 230},     {119, 11, 32}};
  const int64_t first = static_cast<int64_t>(sizeof(kFirst) / sizeof(kFirst[0]));
  std::vector<Rgb> palette;
  for (int64_t i = 0; i < n; ++i) {
    if (i < first) {
      palette.push_back(kFirst[i]);
      continue;
    }
    const double hue = std::fmod(static_cast<double>(i) * 137.508, 360.0) / 60.0;
    const double x = 1 - std::fabs(std::fmod(hue, 2.0) - 1);
    const double rgb[6][3] = {{1, x, 0}, {x, 1, 0}, {0, 1, x}, {0, x, 1}, {x, 0, 1}, {1, 0, x}};
    const auto* c = rgb[static_cast<int>(hue) % 6];
    palette.push_back({static_cast<uint8_t>(55 + 200 * c[0]), static_cast<uint8_t>(55 + 200 * c[1]),
                       static_cast<uint8_t>(55 + 200 * c[2])});
  }
  return palette;
}

}  // namespace gpulab::data
