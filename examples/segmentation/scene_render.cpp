// Loading the photos and objects, and drawing one scene: a photo crop, then
// objects pasted in order (later ones occlude earlier ones), each with a void
// band just outside its pixels.
#include "examples/segmentation/scene_render.h"

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <random>

#include "gpulab/core/error.h"
#include "gpulab/core/seed.h"
#include "gpulab/core/text.h"
#include "gpulab/data/dataset.h"
#include "gpulab/data/idx_datastore.h"

namespace gpulab::examples::detail {
namespace fs = std::filesystem;
namespace {

constexpr int kMinPhotoSide = 96;        // smaller images are icons, not photos
constexpr int kMaxPhotoSide = 640;       // larger ones are shrunk on load
constexpr double kMinColourfulness = 8;  // mean |R-G| + |G-B| of a colour photo
// Drawings, logos and test charts are mostly flat: more than half of their
// pixels have a zero Laplacian, where photos have under a quarter.
constexpr double kMaxFlatFraction = 0.5;

// Uniform numbers from mt19937_64 computed here rather than with <random>'s
// distributions, whose output differs between standard libraries.
class Random {
 public:
  explicit Random(uint64_t seed) : engine_(seed) {}
  double uniform() { return static_cast<double>(engine_() >> 11) * 0x1.0p-53; }  // [0, 1)
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  // In [lo, hi], hi >= lo.
  int integer(int lo, int hi) {
    return lo + static_cast<int>(engine_() % static_cast<uint64_t>(hi - lo + 1));
  }

 private:
  std::mt19937_64 engine_;
};

bool is_photo_file(const fs::path& path) {
  const std::string ext = core::to_lower(path.extension().string());
  return ext == ".jpg" || ext == ".jpeg" || ext == ".png";
}

// RGB, shrunk to kMaxPhotoSide; empty when unreadable, tiny, grey or flat.
cv::Mat load_photo(const std::string& path) {
  cv::Mat bgr = cv::imread(path, cv::IMREAD_COLOR);
  if (bgr.empty() || std::min(bgr.rows, bgr.cols) < kMinPhotoSide) return {};
  std::vector<cv::Mat> ch;
  cv::split(bgr, ch);
  cv::Mat rg, gb;
  cv::absdiff(ch[2], ch[1], rg);
  cv::absdiff(ch[1], ch[0], gb);
  if (cv::mean(rg)[0] + cv::mean(gb)[0] < kMinColourfulness) return {};
  cv::Mat grey, laplacian;
  cv::cvtColor(bgr, grey, cv::COLOR_BGR2GRAY);
  cv::Laplacian(grey, laplacian, CV_16S);
  const double flat = 1.0 - static_cast<double>(cv::countNonZero(laplacian)) / laplacian.total();
  if (flat > kMaxFlatFraction) return {};
  const double shrink = static_cast<double>(kMaxPhotoSide) / std::max(bgr.rows, bgr.cols);
  if (shrink < 1) cv::resize(bgr, bgr, cv::Size(), shrink, shrink, cv::INTER_AREA);
  cv::Mat rgb;
  cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
  return rgb;
}

FashionObjects load_fashion(const std::string& dir, data::IdxSplit split) {
  data::Dataset ds = data::load_idx_folder(dir, split);
  GPULAB_CHECK(ds.height() == 28 && ds.width() == 28 && ds.channels() == 1, ErrorKind::kCorruptData,
               "Fashion-MNIST in '{}': expected 28x28 grey images, found {}x{}x{}", dir,
               ds.channels(), ds.height(), ds.width());
  const at::Tensor images = ds.images.contiguous();
  const at::Tensor labels = ds.targets.contiguous();
  FashionObjects out;
  out.source = dir + (split == data::IdxSplit::kTrain ? " (train-*)" : " (t10k-*)");
  uint8_t* pixels = images.data_ptr<uint8_t>();
  const int64_t* label = labels.data_ptr<int64_t>();
  for (int64_t i = 0; i < ds.size(); ++i) {
    GPULAB_CHECK(label[i] >= 0 && label[i] < kSceneNumClasses - 1, ErrorKind::kCorruptData,
                 "{}: label {} of image {} is not a Fashion-MNIST class 0..9", out.source, label[i],
                 i);
    out.images.push_back(cv::Mat(28, 28, CV_8UC1, pixels + i * 784).clone());
    out.labels.push_back(static_cast<uint8_t>(label[i]));
  }
  return out;
}

// A crop of `photo` with the scene's aspect ratio, 35..100% of the largest
// such crop (never narrower than the scene when the photo allows), resized to
// the scene and mirrored half of the time.
cv::Mat cut_background(const cv::Mat& photo, int width, int height, Random& rng) {
  const double aspect = static_cast<double>(width) / height;
  const double max_w = std::min<double>(photo.cols, photo.rows * aspect);
  const double min_w = std::min(max_w, std::max<double>(width, 0.35 * max_w));
  const double crop_w = rng.uniform(min_w, max_w);
  const int w = std::clamp(static_cast<int>(std::lround(crop_w)), 1, photo.cols);
  const int h = std::clamp(static_cast<int>(std::lround(crop_w / aspect)), 1, photo.rows);
  const int x = rng.integer(0, photo.cols - w);
  const int y = rng.integer(0, photo.rows - h);
  cv::Mat out;
  cv::resize(photo(cv::Rect(x, y, w, h)), out, cv::Size(width, height), 0, 0,
             w >= width ? cv::INTER_AREA : cv::INTER_LINEAR);
  if (rng.uniform() < 0.5) cv::flip(out, out, 1);
  return out;
}

// A saturated colour: hue anywhere, saturation 0.5..1, value 0.6..1.
cv::Vec3d random_tint(Random& rng) {
  const double h = rng.uniform(0, 6), s = rng.uniform(0.5, 1), v = rng.uniform(0.6, 1);
  const int sector = std::min(static_cast<int>(h), 5);
  const double f = h - sector, p = v * (1 - s), q = v * (1 - s * f), t = v * (1 - s * (1 - f));
  const double table[6][3] = {{v, t, p}, {q, v, p}, {p, v, t}, {p, q, v}, {t, p, v}, {v, p, q}};
  return cv::Vec3d(table[sector][0], table[sector][1], table[sector][2]) * 255.0;
}

// Dark texture inside a garment (a bag's pattern) falls under the threshold
// and would punch speckles of background, each ringed with void, into it:
// enclosed holes of up to `max_area` pixels become object. Larger ones (the
// gaps between a sandal's straps) stay background.
void fill_small_holes(cv::Mat& mask, int max_area) {
  cv::Mat holes, stats, centroids;
  const int n = cv::connectedComponentsWithStats(~mask, holes, stats, centroids, 4, CV_32S);
  for (int c = 1; c < n; ++c) {
    const int x = stats.at<int>(c, cv::CC_STAT_LEFT), y = stats.at<int>(c, cv::CC_STAT_TOP);
    const int w = stats.at<int>(c, cv::CC_STAT_WIDTH), h = stats.at<int>(c, cv::CC_STAT_HEIGHT);
    const bool enclosed = x > 0 && y > 0 && x + w < mask.cols && y + h < mask.rows;
    if (enclosed && stats.at<int>(c, cv::CC_STAT_AREA) <= max_area) mask.setTo(255, holes == c);
  }
}

}  // namespace

SceneSources load_scene_sources(const SceneOptions& options) {
  SceneSources sources;
  const std::string& fashion_dir = options.fashion_mnist_dir();
  GPULAB_CHECK(data::is_idx_folder(fashion_dir), ErrorKind::kNotFound,
               "no Fashion-MNIST IDX files (train-images-idx3-ubyte[.gz], ...) in '{}': apt-get "
               "install dataset-fashion-mnist, or pass the folder (--fashion-mnist DIR)",
               fashion_dir);
  sources.train = load_fashion(fashion_dir, data::IdxSplit::kTrain);
  const bool has_test = fs::exists(fs::path(fashion_dir) / "t10k-images-idx3-ubyte.gz") ||
                        fs::exists(fs::path(fashion_dir) / "t10k-images-idx3-ubyte");
  sources.held_out = has_test ? load_fashion(fashion_dir, data::IdxSplit::kTest) : sources.train;

  for (const std::string& dir : options.photo_dirs()) {
    if (!fs::is_directory(dir)) continue;
    std::vector<std::string> paths;
    for (const auto& entry : fs::directory_iterator(dir)) {
      if (entry.is_regular_file() && is_photo_file(entry.path())) {
        paths.push_back(entry.path().string());
      }
    }
    std::sort(paths.begin(), paths.end());  // directory order is not stable
    for (const std::string& path : paths) {
      cv::Mat photo = load_photo(path);
      if (photo.empty()) continue;
      sources.photos.push_back(std::move(photo));
      sources.photo_paths.push_back(path);
    }
  }
  GPULAB_CHECK(!sources.photos.empty(), ErrorKind::kNotFound,
               "no usable photos (*.jpg, *.jpeg, *.png in colour, not flat drawings, at least {} "
               "pixels on a side) in '{}': apt-get install opencv-doc python3-skimage, or pass "
               "folders of photos (--photos DIR)",
               kMinPhotoSide, fmt::join(options.photo_dirs(), "', '"));
  return sources;
}

Scene render_scene(const SceneSources& sources, const SceneOptions& options, int64_t index,
                   bool held_out) {
  Random rng(core::mix_seed(options.seed(), static_cast<uint64_t>(index)));
  const int width = static_cast<int>(options.width());
  const int height = static_cast<int>(options.height());
  const FashionObjects& objects = held_out ? sources.held_out : sources.train;
  const int num_objects = static_cast<int>(objects.images.size());

  Scene scene;
  const int photo = rng.integer(0, static_cast<int>(sources.photos.size()) - 1);
  scene.rgb = cut_background(sources.photos[photo], width, height, rng);
  scene.labels = cv::Mat::zeros(height, width, CV_8UC1);
  scene.objects =
      rng.integer(static_cast<int>(options.min_objects()), static_cast<int>(options.max_objects()));

  const int threshold = static_cast<int>(options.mask_threshold());
  const cv::Mat ring_kernel = cv::getStructuringElement(cv::MORPH_RECT, cv::Size(3, 3));
  for (int64_t k = 0; k < scene.objects; ++k) {
    const int side =
        std::clamp(static_cast<int>(
                       std::lround(rng.uniform(options.min_scale(), options.max_scale()) * height)),
                   8, std::min(width, height));
    // A few images (thin sandals) leave almost no pixels at small sizes: draw
    // again, so every object and so every scene has object pixels.
    cv::Mat intensity, mask;
    int pick = 0;
    for (int attempt = 0; attempt < 16; ++attempt) {
      pick = rng.integer(0, num_objects - 1);
      cv::resize(objects.images[pick], intensity, cv::Size(side, side), 0, 0, cv::INTER_LINEAR);
      mask = intensity > threshold;
      fill_small_holes(mask, std::max(4, side * side / 100));
      if (cv::countNonZero(mask) >= std::max(4, side * side / 20)) break;
    }
    if (rng.uniform() < 0.5) {
      cv::flip(intensity, intensity, 1);
      cv::flip(mask, mask, 1);
    }
    const cv::Rect where(rng.integer(0, width - side), rng.integer(0, height - side), side, side);
    const cv::Vec3d tint = random_tint(rng);

    // Shade the tint by the intensity (the garment's texture); fade in over
    // 40 intensity levels around the threshold so edges are soft.
    cv::Mat roi = scene.rgb(where);
    for (int y = 0; y < side; ++y) {
      const uint8_t* v = intensity.ptr<uint8_t>(y);
      cv::Vec3b* px = roi.ptr<cv::Vec3b>(y);
      for (int x = 0; x < side; ++x) {
        const double alpha = std::clamp((v[x] - (threshold - 20)) / 40.0, 0.0, 1.0);
        if (alpha <= 0) continue;
        const double shade = 0.3 + 0.7 * v[x] / 255.0;
        for (int c = 0; c < 3; ++c) {
          const double out = alpha * tint[c] * shade + (1 - alpha) * px[x][c];
          px[x][c] = static_cast<uint8_t>(std::clamp(out + 0.5, 0.0, 255.0));
        }
      }
    }

    cv::Mat object = cv::Mat::zeros(height, width, CV_8UC1);
    mask.copyTo(object(where));
    cv::Mat ring;
    cv::dilate(object, ring, ring_kernel);
    ring &= ~object;
    scene.labels.setTo(kSceneVoid, ring);
    scene.labels.setTo(objects.labels[pick] + 1, object);
  }
  return scene;
}

}  // namespace gpulab::examples::detail
