// Semantic-segmentation data sets with real content and no download:
// Fashion-MNIST objects, tinted and pasted over crops of the photos Debian
// ships, written in the generic, CamVid or Cityscapes folder layout.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "gpulab/core/options.h"
#include "gpulab/data/pixel_label_layout.h"

namespace gpulab::examples {

// Class ids: 0 = background, 1..10 = the Fashion-MNIST classes (its label + 1).
inline constexpr int kSceneNumClasses = 11;
// Mask value of the one-pixel band just outside each object's pixels.
inline constexpr uint8_t kSceneVoid = 255;

// "Background", "T-shirt/top", "Trouser", ..., "Ankle boot" (kSceneNumClasses names).
const std::vector<std::string>& scene_class_names();

// The layouts gpulab's pixel-label datastores read (data/pixel_label_layout.h),
// as written here:
// - kGeneric: images/<stem>.png (RGB), masks/<stem>.png (grey: class id,
//   255 = void), classes.txt, splits/{train,val,test}.txt; stems scene_00000...
// - kCamVid: images/<stem>.png, labels/<stem>_L.png (RGB colour per class,
//   void = (0,0,0)), classes.json, splits/{train,val,test}.txt.
// - kCityscapes: leftImg8bit/<split>/<city>/<city>_000000_<nnnnnn>_leftImg8bit.png
//   and gtFine/<split>/<city>/<city>_000000_<nnnnnn>_gtFine_{labelIds,labelTrainIds}.png
//   (grey), cities "aachen" (even scene numbers) and "bremen" (odd).
using SceneLayout = data::PixelLabelLayout;

// "generic", "camvid", "cityscapes" (any case). Throws Error(kInvalidArgument)
// listing the valid names.
SceneLayout parse_scene_layout(const std::string& name);
std::string scene_layout_name(SceneLayout layout);

// CamVid layout: class 0 groups two colours, one for the background pixels
// of the scene's top half (rows < height / 2) and one for its bottom half, so
// readers that group several colours into one class get exercised.
using SceneRgb = std::array<uint8_t, 3>;
inline constexpr SceneRgb kCamVidBackgroundTop = {128, 128, 128};
inline constexpr SceneRgb kCamVidBackgroundBottom = {128, 64, 128};
inline constexpr SceneRgb kCamVidVoid = {0, 0, 0};
// Colour of each class; [0] is the background's display colour (= top).
inline constexpr std::array<SceneRgb, kSceneNumClasses> kCamVidColors = {{
    {128, 128, 128},  // Background (display; labels use top/bottom above)
    {192, 0, 128},    // T-shirt/top
    {0, 128, 192},    // Trouser
    {128, 128, 0},    // Pullover
    {192, 128, 128},  // Dress
    {64, 64, 128},    // Coat
    {64, 0, 128},     // Sandal
    {192, 192, 128},  // Shirt
    {0, 0, 192},      // Sneaker
    {64, 128, 64},    // Bag
    {128, 0, 0},      // Ankle boot
}};

// Cityscapes layout: each of our classes written as one of the 19 Cityscapes
// train classes (its labelId in *_labelIds.png, trainId in *_labelTrainIds.png).
struct CityscapesClass {
  uint8_t label_id;
  uint8_t train_id;
  const char* name;  // the Cityscapes class name
};
inline constexpr std::array<CityscapesClass, kSceneNumClasses> kCityscapesMapping = {{
    {7, 0, "road"},            // Background
    {8, 1, "sidewalk"},        // T-shirt/top
    {11, 2, "building"},       // Trouser
    {12, 3, "wall"},           // Pullover
    {13, 4, "fence"},          // Dress
    {17, 5, "pole"},           // Coat
    {19, 6, "traffic light"},  // Sandal
    {20, 7, "traffic sign"},   // Shirt
    {21, 8, "vegetation"},     // Sneaker
    {22, 9, "terrain"},        // Bag
    {23, 10, "sky"},           // Ankle boot
}};
inline constexpr uint8_t kCityscapesVoidLabelId = 0;    // "unlabeled"
inline constexpr uint8_t kCityscapesVoidTrainId = 255;  // ignore

struct SceneOptions {
  GPULAB_ARG(int64_t, count) = 40;       // scenes in all splits together
  GPULAB_ARG(int64_t, width) = 160;      // pixels
  GPULAB_ARG(int64_t, height) = 120;     // pixels
  GPULAB_ARG(int64_t, min_objects) = 1;  // per scene, inclusive
  GPULAB_ARG(int64_t, max_objects) = 4;  // per scene, inclusive
  // Object side (objects are square, 28x28 Fashion-MNIST images scaled up)
  // as a fraction of the scene height, drawn uniformly in [min, max].
  GPULAB_ARG(double, min_scale) = 0.25;
  GPULAB_ARG(double, max_scale) = 0.7;
  // An object pixel is one whose bilinearly scaled Fashion-MNIST intensity
  // (0..255) is above this, or in an enclosed hole of at most 1% of the
  // object's square (dark texture, not the gaps between a sandal's straps).
  GPULAB_ARG(int64_t, mask_threshold) = 30;
  GPULAB_ARG(uint64_t, seed) = 1;
  GPULAB_ARG(SceneLayout, layout) = SceneLayout::kGeneric;
  // Fractions of `count` per split, >= 0 and summing to 1; scenes are
  // numbered train first, then val, then test (train and val rounded).
  GPULAB_ARG(double, train_fraction) = 0.6;
  GPULAB_ARG(double, val_fraction) = 0.2;
  GPULAB_ARG(double, test_fraction) = 0.2;
  // IDX folder (Debian: dataset-fashion-mnist). Train scenes take objects from
  // train-*, val and test scenes from t10k-* when present (no object shared).
  GPULAB_ARG(std::string, fashion_mnist_dir) = "/usr/share/datasets/fashion-mnist";
  // Folders whose *.jpg/*.jpeg/*.png files (not recursive) give the
  // backgrounds; images under 96 pixels on a side, without colour or flat
  // (drawings, logos) are skipped. Debian: opencv-doc, python3-skimage.
  GPULAB_ARG(std::vector<std::string>, photo_dirs) = std::vector<std::string>{
      "/usr/share/doc/opencv-doc/examples/data", "/usr/lib/python3/dist-packages/skimage/data"};
};

// What write_scenes wrote.
struct SceneSetSummary {
  std::array<int64_t, 3> scenes_per_split{};  // train, val, test
  std::array<int64_t, kSceneNumClasses> class_pixels{};
  int64_t void_pixels = 0;
  int64_t objects = 0;              // pasted, including fully occluded ones
  int64_t files = 0;                // files written, scenes.json included
  std::vector<std::string> photos;  // the photos backgrounds were cut from
};

// Writes `options.count()` scenes in `options.layout()` to `out_dir`, plus
// scenes.json (format version, resolved options, splits, pixel counts). The
// set is written into a sibling folder "<out_dir>.partial-<pid>" and renamed
// to `out_dir` at the end, so `out_dir` never holds half a set; on an error
// the partial folder is removed. Same options (seed included) -> the same
// bytes in every file, on the same OpenCV build.
// Throws Error(kInvalidArgument) for bad options or when `out_dir` exists and
// is not an empty folder (naming it), Error(kNotFound) when Fashion-MNIST or
// usable photos are missing (naming the Debian package), Error(kIo) naming a
// file that cannot be written. Not thread-safe for the same `out_dir`.
SceneSetSummary write_scenes(const std::string& out_dir, const SceneOptions& options);

}  // namespace gpulab::examples
