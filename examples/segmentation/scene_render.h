// The inputs of the scene generator (photos, Fashion-MNIST objects) and the
// drawing of one scene; write_scenes puts the scenes into a folder layout.
#pragma once

#include <opencv2/core.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "examples/segmentation/scene_generator.h"

namespace gpulab::examples::detail {

struct FashionObjects {
  std::vector<cv::Mat> images;  // 28x28 CV_8UC1, white object on black
  std::vector<uint8_t> labels;  // Fashion-MNIST class 0..9
  std::string source;           // the IDX files, for messages
};

struct SceneSources {
  std::vector<cv::Mat> photos;  // CV_8UC3 RGB, longest side <= 640
  std::vector<std::string> photo_paths;
  FashionObjects train;     // objects of train scenes
  FashionObjects held_out;  // objects of val/test scenes (t10k-*, else = train)
};

// Loads the photos and the Fashion-MNIST images `options` names. Throws
// Error(kNotFound) naming the folders and the Debian package when there are
// none.
SceneSources load_scene_sources(const SceneOptions& options);

struct Scene {
  cv::Mat rgb;     // CV_8UC3 RGB, height x width
  cv::Mat labels;  // CV_8UC1: class id 0..10, kSceneVoid on object borders
  int64_t objects = 0;
};

// Draws scene number `index`: its random choices come from (seed, index)
// alone, so a scene does not depend on the others.
Scene render_scene(const SceneSources& sources, const SceneOptions& options, int64_t index,
                   bool held_out);

}  // namespace gpulab::examples::detail
