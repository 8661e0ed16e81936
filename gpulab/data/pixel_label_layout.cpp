// Pixel-label layouts: detection, pairing by stem, class tables.
#include "gpulab/data/pixel_label_layout.h"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "gpulab/core/error.h"
#include "gpulab/core/text.h"
#include "gpulab/data/image_files.h"

namespace gpulab::data {
namespace fs = std::filesystem;
namespace {

constexpr uint8_t kIgnore = 255;

uint32_t pack(int r, int g, int b) {
  return (static_cast<uint32_t>(r) << 16) | (static_cast<uint32_t>(g) << 8) |
         static_cast<uint32_t>(b);
}

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t\r\n") - b + 1);
}

// Non-empty, non-comment lines of a text file.
std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream in(path);
  GPULAB_CHECK(in.good(), ErrorKind::kNotFound, "cannot read '{}'", path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) {
    line = trim(line);
    if (!line.empty() && line[0] != '#') lines.push_back(line);
  }
  return lines;
}

// Image files directly in `dir` by stem (the file name without extension and
// without `suffix`), sorted.
std::map<std::string, std::string> files_by_stem(const std::string& dir,
                                                 const std::string& suffix = "") {
  GPULAB_CHECK(fs::is_directory(dir), ErrorKind::kNotFound, "folder '{}' does not exist", dir);
  std::map<std::string, std::string> out;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string path = entry.path().string();
    if (!entry.is_regular_file() || !has_image_extension(path)) continue;
    std::string stem = entry.path().stem().string();
    if (!suffix.empty()) {
      if (!core::ends_with(stem, suffix)) continue;
      stem = stem.substr(0, stem.size() - suffix.size());
    }
    out[stem] = path;
  }
  return out;
}

// Pairs images with labels by stem; a file without its partner is an error.
std::vector<PixelLabelPair> pair_by_stem(const std::map<std::string, std::string>& images,
                                         const std::map<std::string, std::string>& labels,
                                         const std::string& label_pattern) {
  std::vector<PixelLabelPair> pairs;
  for (const auto& [stem, image] : images) {
    auto it = labels.find(stem);
    GPULAB_CHECK(it != labels.end(), ErrorKind::kInvalidArgument,
                 "image '{}' has no label file (expected {}); add it or remove the image", image,
                 fmt::format(fmt::runtime(label_pattern), stem));
    pairs.push_back({stem, image, it->second});
  }
  for (const auto& [stem, label] : labels) {
    GPULAB_CHECK(images.count(stem) > 0, ErrorKind::kInvalidArgument,
                 "label file '{}' has no image named '{}.*'; add the image or remove the label",
                 label, stem);
  }
  return pairs;
}

// Keeps the pairs whose stems splits/<split>.txt lists, in its order.
std::vector<PixelLabelPair> select_split(const std::vector<PixelLabelPair>& pairs,
                                         const std::string& root, const std::string& split) {
  if (split.empty()) return pairs;
  const std::string file = (fs::path(root) / "splits" / (split + ".txt")).string();
  GPULAB_CHECK(fs::exists(file), ErrorKind::kNotFound,
               "split '{}' needs the stem list '{}', which does not exist", split, file);
  std::map<std::string, const PixelLabelPair*> by_stem;
  for (const auto& p : pairs) by_stem[p.stem] = &p;
  std::vector<PixelLabelPair> out;
  for (const std::string& stem : read_lines(file)) {
    auto it = by_stem.find(stem);
    GPULAB_CHECK(it != by_stem.end(), ErrorKind::kInvalidArgument,
                 "'{}' lists '{}', which has no image/label pair in '{}'", file, stem, root);
    out.push_back(*it->second);
  }
  return out;
}

std::string default_table(const std::string& root, const std::string& name) {
  return (fs::path(root) / name).string();
}

PixelLabelIndex index_generic(const PixelLabelOptions& o) {
  PixelLabelIndex index;
  const std::string table =
      o.class_table().empty() ? default_table(o.root(), "classes.txt") : o.class_table();
  GPULAB_CHECK(fs::exists(table), ErrorKind::kNotFound,
               "generic pixel-label folder '{}' needs its class names in '{}' (one per line, in "
               "label-id order)",
               o.root(), table);
  index.labels.names = read_lines(table);
  const int64_t n = index.labels.size();
  GPULAB_CHECK(n > 0 && n < kIgnore, ErrorKind::kCorruptData,
               "'{}' names {} classes; give between 1 and 254", table, n);
  std::array<int16_t, 256> grey;
  grey.fill(LabelMapping::kInvalid);
  for (int64_t v = 0; v < n; ++v) grey[static_cast<size_t>(v)] = static_cast<int16_t>(v);
  grey[kIgnore] = kIgnore;
  index.mapping = LabelMapping::grey(grey);
  index.pairs = pair_by_stem(files_by_stem((fs::path(o.root()) / "images").string()),
                             files_by_stem((fs::path(o.root()) / "masks").string()),
                             (fs::path(o.root()) / "masks" / "{}.png").string());
  return index;
}

LabelSpec read_color_table(const std::string& path) {
  std::ifstream in(path);
  GPULAB_CHECK(in.good(), ErrorKind::kNotFound, "cannot read class table '{}'", path);
  LabelSpec spec;
  try {
    const nlohmann::json j = nlohmann::json::parse(in);
    GPULAB_CHECK(j.is_array() && !j.empty(), ErrorKind::kCorruptData,
                 "class table '{}': expected a JSON array of {{\"name\", \"colors\"}} objects",
                 path);
    for (const auto& c : j) {
      spec.names.push_back(c.at("name").get<std::string>());
      std::vector<int64_t> ids;
      for (const auto& rgb : c.at("colors")) {
        const auto v = rgb.get<std::array<int, 3>>();
        ids.push_back(pack(v[0], v[1], v[2]));
      }
      GPULAB_CHECK(!ids.empty(), ErrorKind::kCorruptData,
                   "class table '{}': class '{}' lists no colours", path, spec.names.back());
      spec.source_ids.push_back(ids);
      spec.palette.push_back(c.contains("display") ? c.at("display").get<Rgb>()
                                                   : c.at("colors").at(0).get<Rgb>());
    }
  } catch (const nlohmann::json::exception& e) {
    GPULAB_FAIL(ErrorKind::kCorruptData, "class table '{}' is malformed: {}", path, e.what());
  }
  return spec;
}

LabelMapping color_mapping(const LabelSpec& spec, bool unknown_is_error, const std::string& table) {
  std::unordered_map<uint32_t, uint8_t> colors;
  for (size_t c = 0; c < spec.source_ids.size(); ++c) {
    for (int64_t packed : spec.source_ids[c]) {
      const auto [it, added] =
          colors.emplace(static_cast<uint32_t>(packed), static_cast<uint8_t>(c));
      GPULAB_CHECK(added, ErrorKind::kCorruptData,
                   "class table '{}': colour #{:06x} belongs to both '{}' and '{}'", table, packed,
                   spec.names[it->second], spec.names[c]);
    }
  }
  return LabelMapping::colors(std::move(colors), unknown_is_error);
}

PixelLabelIndex index_camvid(const PixelLabelOptions& o) {
  PixelLabelIndex index;
  std::string table = o.class_table();
  if (table.empty() && fs::exists(default_table(o.root(), "classes.json"))) {
    table = default_table(o.root(), "classes.json");
  }
  index.labels = table.empty() ? camvid_11_classes() : read_color_table(table);
  GPULAB_CHECK(index.labels.size() < kIgnore, ErrorKind::kCorruptData,
               "class table '{}' has {} classes; at most 254 fit uint8 label maps", table,
               index.labels.size());
  index.mapping = color_mapping(index.labels, o.unknown_colors_are_errors(),
                                table.empty() ? "CamVid 11-class table" : table);
  const std::string labels_dir = (fs::path(o.root()) / "labels").string();
  auto labels = files_by_stem(labels_dir, "_L");
  if (labels.empty()) labels = files_by_stem(labels_dir);
  index.pairs = pair_by_stem(files_by_stem((fs::path(o.root()) / "images").string()), labels,
                             (fs::path(labels_dir) / "{}_L.png").string());
  return index;
}

// Cityscapes labelId -> trainId (cityscapesScripts labels.py); others ignore.
std::array<int16_t, 256> cityscapes_label_ids() {
  std::array<int16_t, 256> grey;
  grey.fill(kIgnore);
  const LabelSpec spec = cityscapes_19_classes();
  for (size_t c = 0; c < spec.source_ids.size(); ++c) {
    for (int64_t id : spec.source_ids[c]) grey[static_cast<size_t>(id)] = static_cast<int16_t>(c);
  }
  return grey;
}

PixelLabelIndex index_cityscapes(const PixelLabelOptions& o) {
  PixelLabelIndex index;
  index.labels = cityscapes_19_classes();
  const std::string split = o.split().empty() ? "train" : o.split();
  const fs::path images_root = fs::path(o.root()) / "leftImg8bit" / split;
  const fs::path labels_root = fs::path(o.root()) / "gtFine" / split;
  GPULAB_CHECK(fs::is_directory(images_root), ErrorKind::kNotFound,
               "Cityscapes folder '{}' has no split '{}' ('{}' does not exist)", o.root(), split,
               images_root.string());
  std::vector<std::string> cities;
  for (const auto& e : fs::directory_iterator(images_root)) {
    if (e.is_directory()) cities.push_back(e.path().filename().string());
  }
  std::sort(cities.begin(), cities.end());
  std::map<std::string, std::string> images, train_ids, label_ids;
  for (const auto& city : cities) {
    for (const auto& [stem, path] : files_by_stem((images_root / city).string(), "_leftImg8bit")) {
      images[stem] = path;
    }
    if (!fs::is_directory(labels_root / city)) continue;
    for (const auto& [stem, path] :
         files_by_stem((labels_root / city).string(), "_gtFine_labelTrainIds")) {
      train_ids[stem] = path;
    }
    for (const auto& [stem, path] :
         files_by_stem((labels_root / city).string(), "_gtFine_labelIds")) {
      label_ids[stem] = path;
    }
  }
  // Train ids when every image has them (createTrainIdLabelImgs.py ran), else labelIds.
  const bool use_train_ids = !train_ids.empty() && train_ids.size() >= images.size();
  std::array<int16_t, 256> grey;
  if (use_train_ids) {
    grey.fill(LabelMapping::kInvalid);
    for (int16_t c = 0; c < index.labels.size(); ++c) grey[static_cast<size_t>(c)] = c;
    grey[kIgnore] = kIgnore;
  } else {
    grey = cityscapes_label_ids();
  }
  index.mapping = LabelMapping::grey(grey);
  index.pairs =
      pair_by_stem(images, use_train_ids ? train_ids : label_ids,
                   (labels_root / "<city>" /
                    (use_train_ids ? "{}_gtFine_labelTrainIds.png" : "{}_gtFine_labelIds.png"))
                       .string());
  return index;
}

}  // namespace

std::string to_string(PixelLabelLayout layout) {
  switch (layout) {
    case PixelLabelLayout::kGeneric:
      return "generic";
    case PixelLabelLayout::kCamVid:
      return "camvid";
    case PixelLabelLayout::kCityscapes:
      return "cityscapes";
  }
  return "?";
}

PixelLabelLayout parse_pixel_label_layout(const std::string& name) {
  const std::string key = core::to_lower(name);
  for (const auto layout :
       {PixelLabelLayout::kGeneric, PixelLabelLayout::kCamVid, PixelLabelLayout::kCityscapes}) {
    if (key == to_string(layout)) return layout;
  }
  GPULAB_FAIL(ErrorKind::kInvalidArgument,
              "unknown pixel-label layout '{}'; valid layouts: generic, camvid, cityscapes", name);
}

LabelMapping LabelMapping::grey(std::array<int16_t, 256> table) {
  LabelMapping m;
  m.grey_ = table;
  return m;
}

LabelMapping LabelMapping::colors(std::unordered_map<uint32_t, uint8_t> table,
                                  bool unknown_is_error) {
  LabelMapping m;
  m.color_ = true;
  m.colors_ = std::move(table);
  m.unknown_is_error_ = unknown_is_error;
  return m;
}

bool is_pixel_label_folder(const std::string& path) {
  const fs::path p(path);
  if (!fs::is_directory(p)) return false;
  return (fs::is_directory(p / "images") &&
          (fs::is_directory(p / "masks") || fs::is_directory(p / "labels"))) ||
         (fs::is_directory(p / "leftImg8bit") && fs::is_directory(p / "gtFine"));
}

PixelLabelLayout detect_pixel_label_layout(const std::string& root) {
  const fs::path p(root);
  GPULAB_CHECK(fs::is_directory(p), ErrorKind::kNotFound, "data folder '{}' does not exist", root);
  if (fs::is_directory(p / "leftImg8bit") && fs::is_directory(p / "gtFine")) {
    return PixelLabelLayout::kCityscapes;
  }
  if (fs::is_directory(p / "images") && fs::is_directory(p / "masks")) {
    return PixelLabelLayout::kGeneric;
  }
  if (fs::is_directory(p / "images") && fs::is_directory(p / "labels")) {
    return PixelLabelLayout::kCamVid;
  }
  GPULAB_FAIL(ErrorKind::kInvalidArgument,
              "'{}' is not a pixel-label data set: expected images/ with masks/ (grey label ids "
              "and classes.txt), images/ with labels/ (CamVid colour labels), or leftImg8bit/ "
              "with gtFine/ (Cityscapes)",
              root);
}

PixelLabelIndex index_pixel_labels(const PixelLabelOptions& o) {
  PixelLabelIndex index;
  const PixelLabelLayout layout = detect_pixel_label_layout(o.root());
  switch (layout) {
    case PixelLabelLayout::kGeneric:
      index = index_generic(o);
      index.pairs = select_split(index.pairs, o.root(), o.split());
      break;
    case PixelLabelLayout::kCamVid:
      index = index_camvid(o);
      index.pairs = select_split(index.pairs, o.root(), o.split());
      break;
    case PixelLabelLayout::kCityscapes:
      index = index_cityscapes(o);
      break;
  }
  index.root = o.root();
  index.layout = layout;
  index.labels.ignore_value = kIgnore;
  if (index.labels.palette.empty()) index.labels.palette = default_palette(index.labels.size());
  GPULAB_CHECK(!index.pairs.empty(), ErrorKind::kInvalidArgument,
               "pixel-label folder '{}'{} holds no image/label pairs", o.root(),
               o.split().empty() ? "" : fmt::format(" (split '{}')", o.split()));
  return index;
}

PixelLabelIndex subset(const PixelLabelIndex& index, const std::vector<int64_t>& rows) {
  PixelLabelIndex out = index;
  out.pairs.clear();
  for (int64_t r : rows) out.pairs.push_back(index.pairs.at(static_cast<size_t>(r)));
  return out;
}

LabelSpec camvid_11_classes() {
  // references.md B4: MATLAB's camvidPixelLabelIDs and camvidColorMap.
  LabelSpec s;
  s.names = {"Sky",        "Building", "Pole", "Road",       "Pavement", "Tree",
             "SignSymbol", "Fence",    "Car",  "Pedestrian", "Bicyclist"};
  const std::vector<std::vector<std::array<int, 3>>> colors = {
      {{128, 128, 128}},
      {{0, 128, 64}, {128, 0, 0}, {64, 192, 0}, {64, 0, 64}, {192, 0, 128}},
      {{192, 192, 128}, {0, 0, 64}},
      {{128, 64, 128}, {128, 0, 192}, {192, 0, 64}},
      {{0, 0, 192}, {64, 192, 128}, {128, 128, 192}},
      {{128, 128, 0}, {192, 192, 0}},
      {{192, 128, 128}, {128, 128, 64}, {0, 64, 64}},
      {{64, 64, 128}},
      {{64, 0, 128}, {64, 128, 192}, {192, 128, 192}, {192, 64, 128}, {128, 64, 64}},
      {{64, 64, 0}, {192, 128, 64}, {64, 0, 192}, {64, 128, 64}},
      {{0, 128, 192}, {192, 0, 192}}};
  for (const auto& group : colors) {
    std::vector<int64_t> ids;
    for (const auto& c : group) ids.push_back(pack(c[0], c[1], c[2]));
    s.source_ids.push_back(ids);
  }
  s.palette = {{128, 128, 128}, {128, 0, 0},   {192, 192, 192}, {128, 64, 128},
               {60, 40, 222},   {128, 128, 0}, {192, 128, 128}, {64, 64, 128},
               {64, 0, 128},    {64, 64, 0},   {0, 128, 192}};
  s.ignore_value = kIgnore;
  return s;
}

LabelSpec cityscapes_19_classes() {
  // references.md C3 (cityscapesScripts labels.py).
  LabelSpec s;
  s.names = {"road", "sidewalk",      "building",     "wall",       "fence",
             "pole", "traffic light", "traffic sign", "vegetation", "terrain",
             "sky",  "person",        "rider",        "car",        "truck",
             "bus",  "train",         "motorcycle",   "bicycle"};
  const std::vector<int64_t> ids = {7,  8,  11, 12, 13, 17, 19, 20, 21, 22,
                                    23, 24, 25, 26, 27, 28, 31, 32, 33};
  for (int64_t id : ids) s.source_ids.push_back({id});
  s.palette = {{128, 64, 128},  {244, 35, 232}, {70, 70, 70},  {102, 102, 156}, {190, 153, 153},
               {153, 153, 153}, {250, 170, 30}, {220, 220, 0}, {107, 142, 35},  {152, 251, 152},
               {70, 130, 180},  {220, 20, 60},  {255, 0, 0},   {0, 0, 142},     {0, 0, 70},
               {0, 60, 100},    {0, 80, 100},   {0, 0, 230},   {119, 11, 32}};
  s.ignore_value = kIgnore;
  return s;
}

}  // namespace gpulab::data
