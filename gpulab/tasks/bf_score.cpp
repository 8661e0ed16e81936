// BF score: boundaries by 8-neighbourhood, matches by an exact distance
// transform of the other boundary.
#include "gpulab/tasks/bf_score.h"

#include <cmath>
#include <limits>

#include "gpulab/core/error.h"
#include "gpulab/tasks/distance_transform.h"

namespace gpulab::tasks {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Boundary pixels of `from` within tolerance of a boundary pixel of `to`,
// and how many boundary pixels `from` has.
std::pair<int64_t, int64_t> matched(const std::vector<uint8_t>& from,
                                    const std::vector<uint8_t>& to, int64_t height, int64_t width,
                                    double tolerance_sq) {
  const std::vector<double> distance_sq = squared_distance_transform(to, height, width);
  int64_t hits = 0;
  int64_t count = 0;
  for (size_t i = 0; i < from.size(); ++i) {
    if (!from[i]) continue;
    ++count;
    // Squared distances are exact integers: compare them, not their roots.
    if (distance_sq[i] <= tolerance_sq) ++hits;
  }
  return {hits, count};
}

}  // namespace

double bf_tolerance_px(int64_t height, int64_t width, double fraction) {
  return fraction * std::sqrt(static_cast<double>(height * height + width * width));
}

std::vector<uint8_t> mask_boundary(const std::vector<uint8_t>& mask, int64_t height,
                                   int64_t width) {
  GPULAB_CHECK(static_cast<int64_t>(mask.size()) == height * width, ErrorKind::kInternal,
               "mask_boundary: {} pixels for a {}x{} mask", mask.size(), height, width);
  std::vector<uint8_t> out(mask.size(), 0);
  for (int64_t y = 0; y < height; ++y) {
    const uint8_t* row = mask.data() + y * width;
    const uint8_t* up = y > 0 ? row - width : nullptr;
    const uint8_t* down = y + 1 < height ? row + width : nullptr;
    uint8_t* o = out.data() + y * width;
    for (int64_t x = 0; x < width; ++x) {
      if (!row[x]) continue;
      // Beyond the image edge counts as outside the mask.
      if (!up || !down || x == 0 || x + 1 == width) {
        o[x] = 1;
        continue;
      }
      o[x] = !(up[x - 1] && up[x] && up[x + 1] && row[x - 1] && row[x + 1] && down[x - 1] &&
               down[x] && down[x + 1]);
    }
  }
  return out;
}

BoundaryMatch bf_score(const std::vector<uint8_t>& predicted_mask,
                       const std::vector<uint8_t>& true_mask, int64_t height, int64_t width,
                       double tolerance_px) {
  GPULAB_CHECK(predicted_mask.size() == true_mask.size(), ErrorKind::kInternal,
               "bf_score: masks of {} and {} pixels", predicted_mask.size(), true_mask.size());
  const std::vector<uint8_t> predicted = mask_boundary(predicted_mask, height, width);
  const std::vector<uint8_t> truth = mask_boundary(true_mask, height, width);
  bool any_predicted = false;
  bool any_true = false;
  for (size_t i = 0; i < predicted.size(); ++i) {
    any_predicted = any_predicted || predicted[i];
    any_true = any_true || truth[i];
  }
  if (!any_predicted && !any_true) return {kNaN, kNaN, kNaN};
  if (!any_predicted || !any_true) return {0.0, 0.0, 0.0};
  const double tolerance_sq = tolerance_px * tolerance_px;
  const auto [precise, predicted_count] = matched(predicted, truth, height, width, tolerance_sq);
  const auto [recalled, true_count] = matched(truth, predicted, height, width, tolerance_sq);
  BoundaryMatch m;
  m.precision = static_cast<double>(precise) / static_cast<double>(predicted_count);
  m.recall = static_cast<double>(recalled) / static_cast<double>(true_count);
  m.score =
      m.precision + m.recall > 0 ? 2 * m.precision * m.recall / (m.precision + m.recall) : 0.0;
  return m;
}

std::vector<double> bf_scores_per_class(const uint8_t* predicted, const uint8_t* truth,
                                        int64_t height, int64_t width, int64_t num_classes,
                                        double tolerance_px) {
  const size_t pixels = static_cast<size_t>(height * width);
  std::vector<double> scores(static_cast<size_t>(num_classes), kNaN);
  // Which classes occur in either (labelled) map, so absent ones cost nothing.
  std::vector<uint8_t> in_prediction(static_cast<size_t>(num_classes), 0);
  std::vector<uint8_t> in_truth(static_cast<size_t>(num_classes), 0);
  for (size_t i = 0; i < pixels; ++i) {
    if (truth[i] >= num_classes) continue;
    in_truth[truth[i]] = 1;
    if (predicted[i] < num_classes) in_prediction[predicted[i]] = 1;
  }
  std::vector<uint8_t> predicted_mask(pixels);
  std::vector<uint8_t> true_mask(pixels);
  for (int64_t c = 0; c < num_classes; ++c) {
    if (!in_prediction[c] && !in_truth[c]) continue;  // NaN: left out of the means
    if (!in_prediction[c] || !in_truth[c]) {
      scores[c] = 0.0;
      continue;
    }
    for (size_t i = 0; i < pixels; ++i) {
      const bool labelled = truth[i] < num_classes;
      predicted_mask[i] = labelled && predicted[i] == c;
      true_mask[i] = truth[i] == c;
    }
    scores[c] = bf_score(predicted_mask, true_mask, height, width, tolerance_px).score;
  }
  return scores;
}

}  // namespace gpulab::tasks
