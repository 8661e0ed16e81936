// Transform options and the per-sample random draws (no OpenCV here).
#include "gpulab/data/transforms.h"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "gpulab/core/error.h"
#include "gpulab/core/seed.h"

namespace gpulab::data {
namespace {

// Our own uniform draws from splitmix64, so plans are the same with every
// standard library (std distributions are implementation-defined).
class PlanRng {
 public:
  explicit PlanRng(uint64_t seed) : state_(seed) {}
  double uniform(double lo, double hi) {
    state_ = core::mix_seed(state_, 1);
    const double u = static_cast<double>(state_ >> 11) * 0x1.0p-53;
    return lo + (hi - lo) * u;
  }
  int integer(int lo, int hi) {  // inclusive
    return lo + static_cast<int>(std::floor(uniform(0, 1) * (hi - lo + 1)));
  }
  bool coin() { return uniform(0, 1) < 0.5; }

 private:
  uint64_t state_;
};

CropBox random_resized_crop(const TransformOptions& o, int h, int w, PlanRng& rng) {
  // torchvision.transforms.RandomResizedCrop.get_params.
  const double area = static_cast<double>(h) * w;
  const double log_lo = std::log(o.crop_ratio()[0]), log_hi = std::log(o.crop_ratio()[1]);
  for (int attempt = 0; attempt < 10; ++attempt) {
    const double target = area * rng.uniform(o.crop_scale()[0], o.crop_scale()[1]);
    const double aspect = std::exp(rng.uniform(log_lo, log_hi));
    const int cw = static_cast<int>(std::lround(std::sqrt(target * aspect)));
    const int ch = static_cast<int>(std::lround(std::sqrt(target / aspect)));
    if (cw > 0 && cw <= w && ch > 0 && ch <= h) {
      const int y = rng.integer(0, h - ch);
      const int x = rng.integer(0, w - cw);
      return {x, y, cw, ch};
    }
  }
  // Fallback: the centre crop with the ratio clamped into range.
  const double ratio = static_cast<double>(w) / h;
  int cw = w, ch = h;
  if (ratio < o.crop_ratio()[0]) {
    ch = static_cast<int>(std::lround(w / o.crop_ratio()[0]));
  } else if (ratio > o.crop_ratio()[1]) {
    cw = static_cast<int>(std::lround(h * o.crop_ratio()[1]));
  }
  return {(w - cw) / 2, (h - ch) / 2, cw, ch};
}

Range parse_range(const nlohmann::json& v, const std::string& key, bool symmetric) {
  auto fail = [&]() {
    GPULAB_FAIL(ErrorKind::kInvalidArgument,
                "'{}' must be a range MIN,MAX (e.g. -3,3) or one number, got {}", key, v.dump());
  };
  if (v.is_number()) {
    const double x = v.get<double>();
    return symmetric ? Range{-std::abs(x), std::abs(x)} : Range{x, x};
  }
  if (v.is_array() && v.size() == 2 && v[0].is_number() && v[1].is_number())
    return Range{v[0].get<double>(), v[1].get<double>()};
  if (v.is_string()) {
    const std::string s = v.get<std::string>();
    char* end = nullptr;
    const double a = std::strtod(s.c_str(), &end);
    if (end == s.c_str()) fail();
    if (*end == '\0') return symmetric ? Range{-std::abs(a), std::abs(a)} : Range{a, a};
    if (*end != ',') fail();
    const char* second = end + 1;
    const double b = std::strtod(second, &end);
    if (end == second || *end != '\0') fail();
    return Range{a, b};
  }
  fail();
  return {};
}

// "HxW", "N" (square) or a number.
std::array<int, 2> parse_size(const nlohmann::json& v, const std::string& key) {
  if (v.is_number_integer()) return {v.get<int>(), v.get<int>()};
  if (v.is_string()) {
    int h = 0, w = 0;
    char x = 0;
    const std::string s = v.get<std::string>();
    if (std::sscanf(s.c_str(), "%d%c%d", &h, &x, &w) == 3 && (x == 'x' || x == 'X')) return {h, w};
    if (std::sscanf(s.c_str(), "%d%c", &h, &x) == 1) return {h, h};
  }
  GPULAB_FAIL(ErrorKind::kInvalidArgument,
              "'{}' must be a size N or HxW (e.g. 224 or 256x256), got {}", key, v.dump());
}

bool parse_bool(const nlohmann::json& v, const std::string& key) {
  if (v.is_boolean()) return v.get<bool>();
  if (v.is_string() && (v == "true" || v == "1")) return true;
  if (v.is_string() && (v == "false" || v == "0")) return false;
  GPULAB_FAIL(ErrorKind::kInvalidArgument, "'{}' must be true or false, got {}", key, v.dump());
}

double parse_number(const nlohmann::json& v, const std::string& key) {
  if (v.is_number()) return v.get<double>();
  if (v.is_string()) {
    char* end = nullptr;
    const std::string s = v.get<std::string>();
    const double x = std::strtod(s.c_str(), &end);
    if (end != s.c_str() && *end == '\0') return x;
  }
  GPULAB_FAIL(ErrorKind::kInvalidArgument, "'{}' must be a number, got {}", key, v.dump());
}

const std::vector<std::string> kKeys = {"resize",
                                        "resize_shorter",
                                        "center_crop",
                                        "random_resized_crop",
                                        "crop_scale",
                                        "crop_ratio",
                                        "rand_x_reflection",
                                        "rand_y_reflection",
                                        "rand_x_translation",
                                        "rand_y_translation",
                                        "rand_x_scale",
                                        "rand_y_scale",
                                        "rand_scale",
                                        "color_jitter",
                                        "brightness",
                                        "contrast",
                                        "saturation",
                                        "augment"};

}  // namespace

bool is_transform_key(const std::string& key) {
  return std::find(kKeys.begin(), kKeys.end(), key) != kKeys.end();
}

bool TransformOptions::random() const {
  auto varies = [](const Range& r) { return r[0] != r[1]; };
  return random_resized_crop_ > 0 || x_reflection_ || y_reflection_ || varies(x_translation_) ||
         varies(y_translation_) || varies(x_scale_) || varies(y_scale_) || brightness_ > 0 ||
         contrast_ > 0 || saturation_ > 0;
}

TransformOptions TransformOptions::deterministic() const {
  TransformOptions o;
  o.channels(channels_).height(height_).width(width_);
  o.resize_height(resize_height_).resize_width(resize_width_).resize_shorter(resize_shorter_);
  o.center_crop_height(center_crop_height_).center_crop_width(center_crop_width_);
  if (random_resized_crop_ > 0)
    o.resize_height(random_resized_crop_).resize_width(random_resized_crop_);
  return o;
}

std::array<int, 2> TransformOptions::output_size(int src_h, int src_w) const {
  if (random_resized_crop_ > 0) return {random_resized_crop_, random_resized_crop_};
  if (center_crop_height_ > 0) return {center_crop_height_, center_crop_width_};
  if (resize_height_ > 0) return {resize_height_, resize_width_};
  if (resize_shorter_ > 0 && src_h > 0 && src_w > 0) {
    const double f = static_cast<double>(resize_shorter_) / std::min(src_h, src_w);
    return {static_cast<int>(std::lround(src_h * f)), static_cast<int>(std::lround(src_w * f))};
  }
  return {height_ > 0 ? height_ : src_h, width_ > 0 ? width_ : src_w};
}

void TransformOptions::validate() const {
  GPULAB_CHECK(channels_ == 0 || channels_ == 1 || channels_ == 3, ErrorKind::kInvalidArgument,
               "channels must be 1 or 3 (0 = the first image's), got {}", channels_);
  const std::pair<const char*, int> sizes[] = {{"image height", height_},
                                               {"image width", width_},
                                               {"resize height", resize_height_},
                                               {"resize width", resize_width_},
                                               {"resize_shorter", resize_shorter_},
                                               {"center_crop height", center_crop_height_},
                                               {"center_crop width", center_crop_width_},
                                               {"random_resized_crop", random_resized_crop_}};
  for (const auto& [name, v] : sizes) {
    GPULAB_CHECK(v >= 0, ErrorKind::kInvalidArgument, "{} must be >= 0 pixels, got {}", name, v);
  }
  GPULAB_CHECK(resize_shorter_ == 0 || resize_height_ == 0, ErrorKind::kInvalidArgument,
               "resize ({}x{}) and resize_shorter ({}) both set; give one", resize_height_,
               resize_width_, resize_shorter_);
  auto ordered = [](const Range& r, const char* name, double lowest) {
    GPULAB_CHECK(r[0] <= r[1] && r[0] >= lowest, ErrorKind::kInvalidArgument,
                 "{} must be MIN,MAX with {} <= MIN <= MAX, got {},{}", name, lowest, r[0], r[1]);
  };
  ordered(crop_scale_, "crop_scale", 1e-6);
  ordered(crop_ratio_, "crop_ratio", 1e-6);
  ordered(x_translation_, "rand_x_translation", -1e9);
  ordered(y_translation_, "rand_y_translation", -1e9);
  ordered(x_scale_, "rand_x_scale", 1e-6);
  ordered(y_scale_, "rand_y_scale", 1e-6);
  GPULAB_CHECK(crop_scale_[1] <= 1, ErrorKind::kInvalidArgument,
               "crop_scale is a fraction of the area, at most 1; got {}", crop_scale_[1]);
  for (double v : {brightness_, contrast_, saturation_}) {
    GPULAB_CHECK(v >= 0, ErrorKind::kInvalidArgument, "color_jitter values must be >= 0, got {}",
                 v);
  }
}

nlohmann::json TransformOptions::to_json() const {
  return {{"resize", fmt::format("{}x{}", resize_height_, resize_width_)},
          {"resize_shorter", resize_shorter_},
          {"center_crop", fmt::format("{}x{}", center_crop_height_, center_crop_width_)},
          {"random_resized_crop", random_resized_crop_},
          {"crop_scale", crop_scale_},
          {"crop_ratio", crop_ratio_},
          {"rand_x_reflection", x_reflection_},
          {"rand_y_reflection", y_reflection_},
          {"rand_x_translation", x_translation_},
          {"rand_y_translation", y_translation_},
          {"rand_x_scale", x_scale_},
          {"rand_y_scale", y_scale_},
          {"color_jitter", std::array<double, 3>{brightness_, contrast_, saturation_}}};
}

void apply_transform_json(TransformOptions& o, const nlohmann::json& j) {
  for (auto it = j.begin(); it != j.end(); ++it) {
    std::string key = it.key();
    std::replace(key.begin(), key.end(), '-', '_');
    const nlohmann::json& v = it.value();
    if (key == "resize") {
      auto s = parse_size(v, key);
      o.resize_height(s[0]).resize_width(s[1]);
    } else if (key == "resize_shorter") {
      o.resize_shorter(parse_size(v, key)[0]);
    } else if (key == "center_crop") {
      auto s = parse_size(v, key);
      o.center_crop_height(s[0]).center_crop_width(s[1]);
    } else if (key == "random_resized_crop") {
      o.random_resized_crop(parse_size(v, key)[0]);
    } else if (key == "crop_scale") {
      o.crop_scale(parse_range(v, key, false));
    } else if (key == "crop_ratio") {
      o.crop_ratio(parse_range(v, key, false));
    } else if (key == "rand_x_reflection") {
      o.x_reflection(parse_bool(v, key));
    } else if (key == "rand_y_reflection") {
      o.y_reflection(parse_bool(v, key));
    } else if (key == "rand_x_translation") {
      o.x_translation(parse_range(v, key, true));
    } else if (key == "rand_y_translation") {
      o.y_translation(parse_range(v, key, true));
    } else if (key == "rand_x_scale") {
      o.x_scale(parse_range(v, key, false));
    } else if (key == "rand_y_scale") {
      o.y_scale(parse_range(v, key, false));
    } else if (key == "rand_scale") {
      o.x_scale(parse_range(v, key, false)).y_scale(parse_range(v, key, false));
    } else if (key == "brightness") {
      o.brightness(parse_number(v, key));
    } else if (key == "contrast") {
      o.contrast(parse_number(v, key));
    } else if (key == "saturation") {
      o.saturation(parse_number(v, key));
    } else if (key == "color_jitter") {
      std::vector<double> b;
      if (v.is_array()) {
        for (const auto& x : v) b.push_back(parse_number(x, key));
      } else if (v.is_number()) {
        b = {v.get<double>()};
      } else if (v.is_string()) {
        std::string s = v.get<std::string>();
        size_t start = 0;
        while (start <= s.size()) {
          size_t comma = s.find(',', start);
          if (comma == std::string::npos) comma = s.size();
          b.push_back(parse_number(s.substr(start, comma - start), key));
          start = comma + 1;
        }
      }
      GPULAB_CHECK(b.size() == 1 || b.size() == 3, ErrorKind::kInvalidArgument,
                   "color_jitter is BRIGHTNESS,CONTRAST,SATURATION (or one value for all), got {}",
                   v.dump());
      if (b.size() == 1) b = {b[0], b[0], b[0]};
      o.brightness(b[0]).contrast(b[1]).saturation(b[2]);
    } else if (key == "augment") {
      // Shorthands with the usual defaults, e.g. "x-reflection,random-resized-crop".
      std::vector<std::string> names;
      if (v.is_array()) {
        for (const auto& x : v) names.push_back(x.get<std::string>());
      } else {
        std::string s = v.get<std::string>();
        size_t start = 0;
        while (start < s.size()) {
          size_t comma = s.find(',', start);
          if (comma == std::string::npos) comma = s.size();
          names.push_back(s.substr(start, comma - start));
          start = comma + 1;
        }
      }
      for (std::string n : names) {
        std::replace(n.begin(), n.end(), '_', '-');
        if (n == "x-reflection") {
          o.x_reflection(true);
        } else if (n == "y-reflection") {
          o.y_reflection(true);
        } else if (n == "random-resized-crop") {
          if (o.random_resized_crop() == 0) o.random_resized_crop(224);
        } else if (n == "translation") {
          o.x_translation({-3, 3}).y_translation({-3, 3});
        } else if (n == "scale") {
          o.x_scale({0.9, 1.1}).y_scale({0.9, 1.1});
        } else if (n == "color-jitter") {
          o.brightness(0.2).contrast(0.2).saturation(0.2);
        } else if (n != "none" && !n.empty()) {
          GPULAB_FAIL(ErrorKind::kInvalidArgument,
                      "unknown augmentation '{}'; valid: x-reflection, y-reflection, "
                      "random-resized-crop, translation, scale, color-jitter, none",
                      n);
        }
      }
    }
  }
  o.validate();
}

uint64_t sample_seed(uint64_t seed, int64_t epoch, int64_t sample_index) {
  return core::mix_seed(core::mix_seed(seed, static_cast<uint64_t>(epoch)),
                        static_cast<uint64_t>(sample_index));
}

SamplePlan plan_sample(const TransformOptions& o, int h, int w, uint64_t seed) {
  PlanRng rng(seed);
  SamplePlan p;
  const auto out = o.output_size(h, w);
  p.out_height = out[0];
  p.out_width = out[1];
  if (o.random_resized_crop() > 0) {
    p.crop = random_resized_crop(o, h, w, rng);
  } else if (o.center_crop_height() > 0) {
    // The centre crop in resized coordinates, mapped back to the source, so
    // resize + crop is one resampling.
    const double shorter =
        o.resize_shorter() > 0 ? static_cast<double>(std::min(h, w)) / o.resize_shorter() : 1.0;
    const double sy = o.resize_height() > 0 ? static_cast<double>(h) / o.resize_height() : shorter;
    const double sx = o.resize_width() > 0 ? static_cast<double>(w) / o.resize_width() : shorter;
    const int ch = std::min(h, static_cast<int>(std::lround(o.center_crop_height() * sy)));
    const int cw = std::min(w, static_cast<int>(std::lround(o.center_crop_width() * sx)));
    // Half to even, as Python's round() in torchvision's center_crop.
    p.crop = {static_cast<int>(std::nearbyint((w - cw) / 2.0)),
              static_cast<int>(std::nearbyint((h - ch) / 2.0)), cw, ch};
  } else {
    p.crop = {0, 0, w, h};
  }
  // Fixed draw order: reflection, scale, translation, jitter.
  if (o.x_reflection()) p.flip_x = rng.coin();
  if (o.y_reflection()) p.flip_y = rng.coin();
  auto draw = [&rng](const Range& r) { return r[0] == r[1] ? r[0] : rng.uniform(r[0], r[1]); };
  p.scale_x = draw(o.x_scale());
  p.scale_y = draw(o.y_scale());
  p.translate_x = draw(o.x_translation());
  p.translate_y = draw(o.y_translation());
  auto jitter = [&rng](double v) { return v > 0 ? rng.uniform(std::max(0.0, 1 - v), 1 + v) : 1.0; };
  p.brightness = jitter(o.brightness());
  p.contrast = jitter(o.contrast());
  p.saturation = o.channels() == 3 ? jitter(o.saturation()) : 1.0;
  return p;
}

}  // namespace gpulab::data
