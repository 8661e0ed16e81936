// write_scenes: checks the options, draws every scene and writes it in the
// chosen folder layout inside a partial folder renamed into place at the end.
#include "examples/segmentation/scene_generator.h"

#include <unistd.h>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <nlohmann/json.hpp>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "examples/segmentation/scene_render.h"
#include "gpulab/core/error.h"
#include "gpulab/core/text.h"

namespace gpulab::examples {
namespace fs = std::filesystem;
namespace {

constexpr int kFormatVersion = 1;  // of scenes.json
constexpr const char* kSplitNames[3] = {"train", "val", "test"};
constexpr const char* kCities[2] = {"aachen", "bremen"};

void check_options(const SceneOptions& o) {
  GPULAB_CHECK(o.count() >= 1, ErrorKind::kInvalidArgument, "scene count must be >= 1, got {}",
               o.count());
  GPULAB_CHECK(o.width() >= 16 && o.height() >= 16 && o.width() <= 8192 && o.height() <= 8192,
               ErrorKind::kInvalidArgument, "scene size must be 16..8192 pixels a side, got {}x{}",
               o.width(), o.height());
  GPULAB_CHECK(o.min_objects() >= 1 && o.min_objects() <= o.max_objects() && o.max_objects() <= 64,
               ErrorKind::kInvalidArgument,
               "objects per scene: need 1 <= min <= max <= 64, got min {} max {}", o.min_objects(),
               o.max_objects());
  GPULAB_CHECK(o.min_scale() > 0 && o.min_scale() <= o.max_scale() && o.max_scale() <= 1,
               ErrorKind::kInvalidArgument,
               "object scale (fraction of the scene height): need 0 < min <= max <= 1, got min {} "
               "max {}",
               o.min_scale(), o.max_scale());
  GPULAB_CHECK(o.mask_threshold() >= 0 && o.mask_threshold() <= 254, ErrorKind::kInvalidArgument,
               "mask threshold must be 0..254, got {}", o.mask_threshold());
  const double sum = o.train_fraction() + o.val_fraction() + o.test_fraction();
  GPULAB_CHECK(o.train_fraction() >= 0 && o.val_fraction() >= 0 && o.test_fraction() >= 0 &&
                   std::abs(sum - 1) < 1e-6,
               ErrorKind::kInvalidArgument,
               "split fractions must be >= 0 and sum to 1, got train {} val {} test {} (sum {})",
               o.train_fraction(), o.val_fraction(), o.test_fraction(), sum);
}

// Scenes per split; train and val rounded, test the rest.
std::array<int64_t, 3> split_sizes(const SceneOptions& o) {
  const int64_t train = static_cast<int64_t>(std::llround(o.train_fraction() * o.count()));
  const int64_t val =
      std::min<int64_t>(o.count() - train, std::llround(o.val_fraction() * o.count()));
  return {train, val, o.count() - train - val};
}

void write_file(const fs::path& path, const void* data, size_t size) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(static_cast<const char*>(data), static_cast<std::streamsize>(size));
  out.close();
  GPULAB_CHECK(out.good(), ErrorKind::kIo, "cannot write '{}': {}", path.string(),
               std::strerror(errno));
}

void write_text(const fs::path& path, const std::string& text) {
  write_file(path, text.data(), text.size());
}

// `image` is RGB (CV_8UC3) or grey (CV_8UC1).
void write_png(const fs::path& path, const cv::Mat& image) {
  cv::Mat encoded = image;
  if (image.channels() == 3) cv::cvtColor(image, encoded, cv::COLOR_RGB2BGR);
  std::vector<uchar> bytes;
  GPULAB_CHECK(cv::imencode(".png", encoded, bytes), ErrorKind::kIo,
               "cannot encode '{}' as PNG (OpenCV built without PNG support?)", path.string());
  write_file(path, bytes.data(), bytes.size());
}

cv::Mat camvid_colours(const cv::Mat& labels) {
  cv::Mat out(labels.size(), CV_8UC3);
  for (int y = 0; y < labels.rows; ++y) {
    const uint8_t* id = labels.ptr<uint8_t>(y);
    cv::Vec3b* px = out.ptr<cv::Vec3b>(y);
    for (int x = 0; x < labels.cols; ++x) {
      SceneRgb c = kCamVidVoid;
      if (id[x] == 0) {
        c = y < labels.rows / 2 ? kCamVidBackgroundTop : kCamVidBackgroundBottom;
      } else if (id[x] < kSceneNumClasses) {
        c = kCamVidColors[id[x]];
      }
      px[x] = cv::Vec3b(c[0], c[1], c[2]);
    }
  }
  return out;
}

// Our class ids to Cityscapes labelIds (train_ids = false) or trainIds.
cv::Mat cityscapes_ids(const cv::Mat& labels, bool train_ids) {
  cv::Mat lut(1, 256, CV_8UC1,
              cv::Scalar(train_ids ? kCityscapesVoidTrainId : kCityscapesVoidLabelId));
  for (int c = 0; c < kSceneNumClasses; ++c) {
    lut.at<uint8_t>(c) =
        train_ids ? kCityscapesMapping[c].train_id : kCityscapesMapping[c].label_id;
  }
  cv::Mat out;
  cv::LUT(labels, lut, out);
  return out;
}

nlohmann::ordered_json rgb_json(const SceneRgb& c) {
  return {c[0], c[1], c[2]};
}

// One class a line: [{"name": ..., "colors": [[r,g,b], ...], "display": [r,g,b]}, ...].
std::string classes_json() {
  std::string text = "[\n";
  for (int c = 0; c < kSceneNumClasses; ++c) {
    nlohmann::ordered_json colours = nlohmann::ordered_json::array();
    if (c == 0) {
      colours.push_back(rgb_json(kCamVidBackgroundTop));
      colours.push_back(rgb_json(kCamVidBackgroundBottom));
    } else {
      colours.push_back(rgb_json(kCamVidColors[c]));
    }
    const nlohmann::ordered_json entry = {{"name", scene_class_names()[c]},
                                          {"colors", colours},
                                          {"display", rgb_json(kCamVidColors[c])}};
    text += "  " + entry.dump() + (c + 1 < kSceneNumClasses ? ",\n" : "\n");
  }
  return text + "]\n";
}

// Writes one scene's files; returns how many.
int write_scene(const fs::path& root, const SceneOptions& o, int64_t index, int split,
                const detail::Scene& scene, std::array<std::string, 3>& split_lists) {
  char stem[32];
  std::snprintf(stem, sizeof(stem), "scene_%05lld", static_cast<long long>(index));
  switch (o.layout()) {
    case SceneLayout::kGeneric:
      write_png(root / "images" / (std::string(stem) + ".png"), scene.rgb);
      write_png(root / "masks" / (std::string(stem) + ".png"), scene.labels);
      split_lists[split] += std::string(stem) + "\n";
      return 2;
    case SceneLayout::kCamVid:
      write_png(root / "images" / (std::string(stem) + ".png"), scene.rgb);
      write_png(root / "labels" / (std::string(stem) + "_L.png"), camvid_colours(scene.labels));
      split_lists[split] += std::string(stem) + "\n";
      return 2;
    case SceneLayout::kCityscapes: {
      const std::string city = kCities[index % 2];
      char name[64];
      std::snprintf(name, sizeof(name), "%s_000000_%06lld", city.c_str(),
                    static_cast<long long>(index));
      const fs::path images = root / "leftImg8bit" / kSplitNames[split] / city;
      const fs::path labels = root / "gtFine" / kSplitNames[split] / city;
      fs::create_directories(images);
      fs::create_directories(labels);
      write_png(images / (std::string(name) + "_leftImg8bit.png"), scene.rgb);
      write_png(labels / (std::string(name) + "_gtFine_labelIds.png"),
                cityscapes_ids(scene.labels, false));
      write_png(labels / (std::string(name) + "_gtFine_labelTrainIds.png"),
                cityscapes_ids(scene.labels, true));
      return 3;
    }
  }
  return 0;
}

std::string metadata_json(const SceneOptions& o, const SceneSetSummary& s) {
  nlohmann::ordered_json j;
  j["format"] = "gpulab-scenes";
  j["format_version"] = kFormatVersion;
  j["layout"] = scene_layout_name(o.layout());
  j["count"] = o.count();
  j["width"] = o.width();
  j["height"] = o.height();
  j["seed"] = o.seed();
  j["objects_per_scene"] = {o.min_objects(), o.max_objects()};
  j["object_scale"] = {o.min_scale(), o.max_scale()};
  j["mask_threshold"] = o.mask_threshold();
  j["split_fractions"] = {
      {"train", o.train_fraction()}, {"val", o.val_fraction()}, {"test", o.test_fraction()}};
  j["scenes_per_split"] = {{"train", s.scenes_per_split[0]},
                           {"val", s.scenes_per_split[1]},
                           {"test", s.scenes_per_split[2]}};
  j["classes"] = scene_class_names();
  j["void_value"] = kSceneVoid;
  j["class_pixels"] = s.class_pixels;
  j["void_pixels"] = s.void_pixels;
  j["fashion_mnist_dir"] = o.fashion_mnist_dir();
  std::vector<std::string> photos;
  for (const auto& p : s.photos) photos.push_back(fs::path(p).filename().string());
  j["photos"] = photos;
  return j.dump(2) + "\n";
}

// The set itself, written into `root` (an empty folder).
SceneSetSummary write_set(const fs::path& root, const SceneOptions& o) {
  const detail::SceneSources sources = detail::load_scene_sources(o);
  SceneSetSummary summary;
  summary.photos = sources.photo_paths;
  summary.scenes_per_split = split_sizes(o);
  if (o.layout() != SceneLayout::kCityscapes) {
    fs::create_directories(root / "images");
    fs::create_directories(root / (o.layout() == SceneLayout::kGeneric ? "masks" : "labels"));
    fs::create_directories(root / "splits");
  }
  std::array<std::string, 3> split_lists;
  int64_t index = 0;
  for (int split = 0; split < 3; ++split) {
    for (int64_t i = 0; i < summary.scenes_per_split[split]; ++i, ++index) {
      const detail::Scene scene = detail::render_scene(sources, o, index, split != 0);
      summary.files += write_scene(root, o, index, split, scene, split_lists);
      summary.objects += scene.objects;
      for (int y = 0; y < scene.labels.rows; ++y) {
        const uint8_t* id = scene.labels.ptr<uint8_t>(y);
        for (int x = 0; x < scene.labels.cols; ++x) {
          if (id[x] < kSceneNumClasses) {
            ++summary.class_pixels[id[x]];
          } else {
            ++summary.void_pixels;
          }
        }
      }
    }
  }
  if (o.layout() != SceneLayout::kCityscapes) {
    for (int split = 0; split < 3; ++split) {
      write_text(root / "splits" / (std::string(kSplitNames[split]) + ".txt"), split_lists[split]);
    }
    summary.files += 3;
  }
  if (o.layout() == SceneLayout::kGeneric) {
    std::string names;
    for (const auto& name : scene_class_names()) names += name + "\n";
    write_text(root / "classes.txt", names);
    ++summary.files;
  } else if (o.layout() == SceneLayout::kCamVid) {
    write_text(root / "classes.json", classes_json());
    ++summary.files;
  }
  write_text(root / "scenes.json", metadata_json(o, summary));
  ++summary.files;
  return summary;
}

}  // namespace

const std::vector<std::string>& scene_class_names() {
  static const std::vector<std::string> names = {
      "Background", "T-shirt/top", "Trouser", "Pullover", "Dress",     "Coat",
      "Sandal",     "Shirt",       "Sneaker", "Bag",      "Ankle boot"};
  return names;
}

SceneLayout parse_scene_layout(const std::string& name) {
  return data::parse_pixel_label_layout(name);
}

std::string scene_layout_name(SceneLayout layout) {
  return data::to_string(layout);
}

SceneSetSummary write_scenes(const std::string& out_dir, const SceneOptions& options) {
  check_options(options);
  fs::path out = fs::path(out_dir).lexically_normal();
  if (!out.has_filename()) out = out.parent_path();  // "dir/" -> "dir"
  GPULAB_CHECK(!out.empty() && out != ".", ErrorKind::kInvalidArgument,
               "scene output folder '{}': name a new folder", out_dir);
  if (fs::exists(out)) {
    GPULAB_CHECK(fs::is_directory(out), ErrorKind::kInvalidArgument,
                 "scene output '{}' exists and is not a folder", out.string());
    GPULAB_CHECK(fs::is_empty(out), ErrorKind::kInvalidArgument,
                 "scene output folder '{}' exists and is not empty; name a new folder or remove "
                 "this one (scene sets are never merged)",
                 out.string());
  }
  const fs::path partial = out.string() + ".partial-" + std::to_string(::getpid());
  try {
    fs::remove_all(partial);  // left by an earlier process with the same pid
    fs::create_directories(partial);
    SceneSetSummary summary = write_set(partial, options);
    if (fs::exists(out)) fs::remove(out);  // empty, checked above
    fs::rename(partial, out);
    return summary;
  } catch (const fs::filesystem_error& e) {
    std::error_code ignored;
    fs::remove_all(partial, ignored);
    GPULAB_FAIL(ErrorKind::kIo, "writing scenes to '{}' failed: {}", out.string(), e.what());
  } catch (...) {
    std::error_code ignored;
    fs::remove_all(partial, ignored);
    throw;
  }
}

}  // namespace gpulab::examples
