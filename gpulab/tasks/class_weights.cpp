// Class-weight formulas and weight files.
#include "gpulab/tasks/class_weights.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "gpulab/core/error.h"
#include "gpulab/core/text.h"

namespace gpulab::tasks {
namespace {

std::vector<double> read_weight_file(const std::string& path, int64_t num_classes) {
  std::ifstream in(path);
  GPULAB_CHECK(in.good(), ErrorKind::kNotFound,
               "class weights: '{}' is neither none, median-frequency, enet nor a readable file",
               path);
  std::stringstream text;
  text << in.rdbuf();
  std::vector<double> weights;
  try {
    const nlohmann::json j = nlohmann::json::parse(text.str());
    weights = j.get<std::vector<double>>();
  } catch (const nlohmann::json::exception&) {
    // One number per line.
    std::istringstream lines(text.str());
    std::string token;
    while (lines >> token) {
      try {
        size_t used = 0;
        weights.push_back(std::stod(token, &used));
        GPULAB_CHECK(used == token.size(), ErrorKind::kCorruptData, "");
      } catch (const std::exception&) {
        GPULAB_FAIL(ErrorKind::kCorruptData,
                    "class-weight file '{}': '{}' is not a number; give one weight per class "
                    "(one per line, or a JSON array)",
                    path, token);
      }
    }
  }
  GPULAB_CHECK(static_cast<int64_t>(weights.size()) == num_classes, ErrorKind::kCorruptData,
               "class-weight file '{}' has {} weights but the data has {} classes", path,
               weights.size(), num_classes);
  for (double w : weights) {
    GPULAB_CHECK(std::isfinite(w) && w >= 0, ErrorKind::kCorruptData,
                 "class-weight file '{}': weight {} is not a finite number >= 0", path, w);
  }
  return weights;
}

}  // namespace

std::vector<double> median_frequency_weights(const data::PixelLabelCounts& counts) {
  std::vector<double> freq(counts.pixels.size(), 0.0), present;
  for (size_t c = 0; c < freq.size(); ++c) {
    if (counts.pixels[c] > 0 && counts.image_pixels[c] > 0) {
      freq[c] = static_cast<double>(counts.pixels[c]) / static_cast<double>(counts.image_pixels[c]);
      present.push_back(freq[c]);
    }
  }
  if (present.empty()) return std::vector<double>(freq.size(), 0.0);
  std::sort(present.begin(), present.end());
  const size_t n = present.size();
  // MATLAB's median: the mean of the two middle values for an even count.
  const double median = n % 2 ? present[n / 2] : 0.5 * (present[n / 2 - 1] + present[n / 2]);
  std::vector<double> weights(freq.size(), 0.0);
  for (size_t c = 0; c < freq.size(); ++c) {
    if (freq[c] > 0) weights[c] = median / freq[c];
  }
  return weights;
}

std::vector<double> enet_weights(const data::PixelLabelCounts& counts, double c) {
  double total = 0;
  for (int64_t p : counts.pixels) total += static_cast<double>(p);
  std::vector<double> weights(counts.pixels.size(), 0.0);
  if (total <= 0) return weights;
  for (size_t i = 0; i < weights.size(); ++i) {
    if (counts.pixels[i] > 0) {
      weights[i] = 1.0 / std::log(c + static_cast<double>(counts.pixels[i]) / total);
    }
  }
  return weights;
}

std::vector<double> class_weights(const std::string& method, const data::PixelLabelCounts& counts,
                                  int64_t num_classes) {
  const std::string m = core::to_lower(method);
  if (m.empty() || m == "none") return {};
  if (m == "median-frequency" || m == "enet") {
    GPULAB_CHECK(static_cast<int64_t>(counts.pixels.size()) == num_classes,
                 ErrorKind::kInvalidArgument,
                 "class weights '{}' are computed from the training set's pixel counts, which "
                 "are not known here; give the weights as a file",
                 method);
    return m == "enet" ? enet_weights(counts) : median_frequency_weights(counts);
  }
  return read_weight_file(method, num_classes);
}

}  // namespace gpulab::tasks
