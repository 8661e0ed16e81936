// make_scenes: writes a semantic-segmentation data set of Fashion-MNIST
// objects over photo crops (examples/segmentation/scene_generator.h) and
// prints what it wrote. Errors: one line on stderr, exit 2 (bad input) or 1.
#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include <cstdio>
#include <string>
#include <vector>

#include "examples/segmentation/scene_generator.h"
#include "gpulab/core/error.h"
#include "gpulab/core/text_table.h"

namespace {

using gpulab::examples::SceneOptions;

// "160x120" -> width, height.
std::pair<int64_t, int64_t> parse_size(const std::string& text) {
  int64_t w = 0, h = 0;
  char x = 0, rest = 0;
  const int n = std::sscanf(text.c_str(), "%ld%c%ld%c", &w, &x, &h, &rest);
  GPULAB_CHECK(n == 3 && (x == 'x' || x == 'X'), ErrorKind::kInvalidArgument,
               "--size: expected WIDTHxHEIGHT in pixels (e.g. 160x120), got '{}'", text);
  return {w, h};
}

void print_summary(const std::string& out, const SceneOptions& o,
                   const gpulab::examples::SceneSetSummary& s) {
  fmt::print("wrote {} scenes ({} layout, {}x{}, seed {}) to {}: {} files\n", o.count(),
             gpulab::examples::scene_layout_name(o.layout()), o.width(), o.height(), o.seed(), out,
             s.files);
  fmt::print("splits: train {}, val {}, test {}\n", s.scenes_per_split[0], s.scenes_per_split[1],
             s.scenes_per_split[2]);
  fmt::print("objects: {} ({:.2f} per scene); backgrounds cut from {} photos\n", s.objects,
             static_cast<double>(s.objects) / o.count(), s.photos.size());
  int64_t total = s.void_pixels;
  for (int64_t n : s.class_pixels) total += n;
  gpulab::core::TextTable table({"Id", "Class", "Pixels", "Share"});
  const auto& names = gpulab::examples::scene_class_names();
  auto share = [&](int64_t n) { return fmt::format("{:.2f}%", 100.0 * n / total); };
  for (size_t c = 0; c < names.size(); ++c) {
    table.add_row(
        {std::to_string(c), names[c], std::to_string(s.class_pixels[c]), share(s.class_pixels[c])});
  }
  table.add_row({std::to_string(gpulab::examples::kSceneVoid), "(void)",
                 std::to_string(s.void_pixels), share(s.void_pixels)});
  fmt::print("{}", table.render());
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "make_scenes: a semantic-segmentation data set of Fashion-MNIST objects pasted over photo "
      "crops (classes: 0 background, 1..10 Fashion-MNIST, 255 void)"};
  SceneOptions o;
  std::string out, layout = "generic", size = "160x120";
  std::vector<double> fractions = {o.train_fraction(), o.val_fraction(), o.test_fraction()};
  int64_t count = o.count(), min_objects = o.min_objects(), max_objects = o.max_objects();
  int64_t threshold = o.mask_threshold();
  uint64_t seed = o.seed();
  double min_scale = o.min_scale(), max_scale = o.max_scale();
  std::string fashion = o.fashion_mnist_dir();
  std::vector<std::string> photos = o.photo_dirs();

  app.add_option("--out", out, "output folder (new, or empty)")->required()->group("Output");
  app.add_option("--layout", layout, "folder layout: generic, camvid or cityscapes")
      ->capture_default_str()
      ->group("Output");
  app.add_option("--count", count, "scenes in all splits together")
      ->capture_default_str()
      ->group("Output");
  app.add_option("--size", size, "scene WIDTHxHEIGHT in pixels")
      ->capture_default_str()
      ->group("Output");
  app.add_option("--split", fractions, "train, val and test fractions (sum 1)")
      ->expected(3)
      ->capture_default_str()
      ->group("Output");
  app.add_option("--seed", seed, "random seed: the same seed writes the same bytes")
      ->capture_default_str()
      ->group("Scenes");
  app.add_option("--min-objects", min_objects, "objects per scene, at least")
      ->capture_default_str()
      ->group("Scenes");
  app.add_option("--max-objects", max_objects, "objects per scene, at most")
      ->capture_default_str()
      ->group("Scenes");
  app.add_option("--min-scale", min_scale, "object side, smallest, as a fraction of the height")
      ->capture_default_str()
      ->group("Scenes");
  app.add_option("--max-scale", max_scale, "object side, largest, as a fraction of the height")
      ->capture_default_str()
      ->group("Scenes");
  app.add_option("--mask-threshold", threshold,
                 "object pixel: scaled Fashion-MNIST intensity (0..255) above this")
      ->capture_default_str()
      ->group("Scenes");
  app.add_option("--fashion-mnist", fashion, "Fashion-MNIST IDX folder (dataset-fashion-mnist)")
      ->capture_default_str()
      ->group("Inputs");
  app.add_option("--photos", photos,
                 "folders of background photos (*.jpg, *.png; opencv-doc, python3-skimage)")
      ->capture_default_str()
      ->group("Inputs");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }
  try {
    const auto [width, height] = parse_size(size);
    o.count(count)
        .width(width)
        .height(height)
        .min_objects(min_objects)
        .max_objects(max_objects)
        .min_scale(min_scale)
        .max_scale(max_scale)
        .mask_threshold(threshold)
        .seed(seed)
        .layout(gpulab::examples::parse_scene_layout(layout))
        .train_fraction(fractions[0])
        .val_fraction(fractions[1])
        .test_fraction(fractions[2])
        .fashion_mnist_dir(fashion)
        .photo_dirs(photos);
    const auto summary = gpulab::examples::write_scenes(out, o);
    print_summary(out, o, summary);
    return 0;
  } catch (const gpulab::Error& e) {
    std::fprintf(stderr, "make_scenes: error: %s\n", e.what());
    return e.exit_code();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "make_scenes: error: %s\n", e.what());
    return 1;
  }
}
