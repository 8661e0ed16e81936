// BF score and the exact distance transform under it: the boundary, tolerance
// and ignore rules gpulab freezes (docs/segmentation-metrics.md).
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>

#include "gpulab/tasks/bf_score.h"
#include "gpulab/tasks/distance_transform.h"

// Helpers in a namespace of this file's own: unity builds join test files.
namespace gpulab::tasks::bf_score_test {
namespace {

constexpr uint8_t kA = 0;
constexpr uint8_t kB = 1;
constexpr uint8_t kC = 2;
constexpr uint8_t kX = 255;  // no label

// The pixels of `map` equal to `value`, as a 0/1 mask.
std::vector<uint8_t> mask_of(const std::vector<uint8_t>& map, uint8_t value) {
  std::vector<uint8_t> m(map.size());
  for (size_t i = 0; i < map.size(); ++i) m[i] = map[i] == value;
  return m;
}

int64_t count(const std::vector<uint8_t>& m) {
  int64_t n = 0;
  for (uint8_t v : m) n += v != 0;
  return n;
}

}  // namespace

TEST(DistanceTransformTest, MatchesBruteForceOnRandomMask) {
  const int64_t h = 20;
  const int64_t w = 17;
  std::mt19937 rng(7);
  std::bernoulli_distribution feature(0.08);
  std::vector<uint8_t> features(static_cast<size_t>(h * w));
  for (auto& f : features) f = feature(rng) ? 1 : 0;
  ASSERT_GT(count(features), 5);
  const std::vector<double> d = squared_distance_transform(features, h, w);
  for (int64_t y = 0; y < h; ++y) {
    for (int64_t x = 0; x < w; ++x) {
      double best = std::numeric_limits<double>::infinity();
      for (int64_t fy = 0; fy < h; ++fy) {
        for (int64_t fx = 0; fx < w; ++fx) {
          if (!features[fy * w + fx]) continue;
          best = std::min(best, static_cast<double>((y - fy) * (y - fy) + (x - fx) * (x - fx)));
        }
      }
      ASSERT_EQ(d[y * w + x], best) << "pixel (" << y << ", " << x << ")";
    }
  }
}

TEST(DistanceTransformTest, GridWithoutFeaturesIsInfiniteAndOneFeatureGivesSquaredDistances) {
  const std::vector<double> none = squared_distance_transform(std::vector<uint8_t>(12, 0), 3, 4);
  for (double v : none) EXPECT_TRUE(std::isinf(v));
  std::vector<uint8_t> one(12, 0);
  one[0] = 1;  // (0, 0)
  const std::vector<double> d = squared_distance_transform(one, 3, 4);
  EXPECT_EQ(d[2 * 4 + 3], 4.0 + 9.0);  // (2, 3): 2² + 3²
  EXPECT_EQ(d[1 * 4 + 1], 2.0);
}

TEST(BfScoreTest, ToleranceIsAFractionOfTheImageDiagonal) {
  EXPECT_NEAR(bf_tolerance_px(720, 960, 0.0075), 9.0, 1e-12);  // diagonal 1200
  EXPECT_NEAR(bf_tolerance_px(4, 4, 0.2), 0.2 * std::sqrt(32.0), 1e-12);
}

TEST(BfScoreTest, BoundaryIsMaskPixelsWithAnEightNeighbourOutsideOrBeyondTheImageEdge) {
  // A full 4x4 mask: the image edge counts as outside, so the ring of 12
  // pixels is boundary and the central 2x2 is not.
  const std::vector<uint8_t> full(16, 1);
  const std::vector<uint8_t> ring = mask_boundary(full, 4, 4);
  EXPECT_EQ(count(ring), 12);
  EXPECT_EQ(ring[1 * 4 + 1], 0);
  EXPECT_EQ(ring[2 * 4 + 2], 0);
  // The same mask less the corner (0, 0): (1, 1) sees it diagonally, so it
  // joins the boundary (8-neighbourhood); (1, 2) does not.
  std::vector<uint8_t> notched = full;
  notched[0] = 0;
  const std::vector<uint8_t> b = mask_boundary(notched, 4, 4);
  EXPECT_EQ(count(b), 12);  // 11 edge pixels + (1, 1)
  EXPECT_EQ(b[1 * 4 + 1], 1);
  EXPECT_EQ(b[1 * 4 + 2], 0);
}

TEST(BfScoreTest, MatchWithinToleranceIsInclusiveAndEuclidean) {
  // 1x5: truth (0, 0), prediction (0, 2); each mask is its own boundary.
  const std::vector<uint8_t> truth = {1, 0, 0, 0, 0};
  const std::vector<uint8_t> predicted = {0, 0, 1, 0, 0};
  EXPECT_EQ(bf_score(predicted, truth, 1, 5, 2.0).score, 1.0);  // distance 2 <= 2
  const BoundaryMatch miss = bf_score(predicted, truth, 1, 5, 1.99);
  EXPECT_EQ(miss.precision, 0.0);
  EXPECT_EQ(miss.recall, 0.0);
  EXPECT_EQ(miss.score, 0.0);  // P + R = 0
  // 3x3: truth (0, 0), prediction (1, 1), distance sqrt(2) = 1.414.
  std::vector<uint8_t> t(9, 0);
  std::vector<uint8_t> p(9, 0);
  t[0] = 1;
  p[4] = 1;
  EXPECT_EQ(bf_score(p, t, 3, 3, 1.5).score, 1.0);
  EXPECT_EQ(bf_score(p, t, 3, 3, 1.4).score, 0.0);
}

TEST(BfScoreTest, PrecisionAndRecallCountBoundaryPixels) {
  // Fixture image 2 (4x4), class b; tolerance 0.0075 * sqrt(32) = 0.042 px,
  // so only a boundary pixel on a boundary pixel matches.
  //   truth       prediction
  //   b b b b     b b b b
  //   b b b b     b b b b
  //   a a a a     b b a a
  //   a a a a     a a a a
  // True boundary: rows 0-1 (8 px, all on the edge or above row 2).
  // Predicted boundary: rows 0-1 and (2,0), (2,1) (10 px; (1,1) and (1,2)
  // see (2,2) outside). P = 8/10, R = 8/8, BF = 2 * 0.8 * 1 / 1.8 = 8/9.
  const std::vector<uint8_t> truth = {kB, kB, kB, kB, kB, kB, kB, kB,
                                      kA, kA, kA, kA, kA, kA, kA, kA};
  const std::vector<uint8_t> predicted = {kB, kB, kB, kB, kB, kB, kB, kB,
                                          kB, kB, kA, kA, kA, kA, kA, kA};
  const double tolerance = bf_tolerance_px(4, 4, 0.0075);
  const BoundaryMatch b = bf_score(mask_of(predicted, kB), mask_of(truth, kB), 4, 4, tolerance);
  EXPECT_DOUBLE_EQ(b.precision, 0.8);
  EXPECT_DOUBLE_EQ(b.recall, 1.0);
  EXPECT_DOUBLE_EQ(b.score, 8.0 / 9);
  // Class a: predicted boundary 6 px, all true ones; true boundary 8 px.
  // P = 1, R = 6/8, BF = 1.5 / 1.75 = 6/7.
  const BoundaryMatch a = bf_score(mask_of(predicted, kA), mask_of(truth, kA), 4, 4, tolerance);
  EXPECT_DOUBLE_EQ(a.precision, 1.0);
  EXPECT_DOUBLE_EQ(a.recall, 0.75);
  EXPECT_DOUBLE_EQ(a.score, 6.0 / 7);
}

TEST(BfScoreTest, ClassInOneMapOnlyScoresZeroAndInNeitherIsNaN) {
  // 2x2, classes a b c: truth a a / a a, prediction c a / a a.
  const std::vector<uint8_t> truth = {kA, kA, kA, kA};
  const std::vector<uint8_t> predicted = {kC, kA, kA, kA};
  const std::vector<double> bf =
      bf_scores_per_class(predicted.data(), truth.data(), 2, 2, 3, bf_tolerance_px(2, 2, 0.0075));
  ASSERT_EQ(bf.size(), 3u);
  // a: true boundary 4 px, predicted 3 px (all true ones): P 1, R 3/4, BF 6/7.
  EXPECT_DOUBLE_EQ(bf[kA], 6.0 / 7);
  EXPECT_TRUE(std::isnan(bf[kB]));  // in neither map
  EXPECT_EQ(bf[kC], 0.0);           // predicted only
  EXPECT_TRUE(
      std::isnan(bf_score(std::vector<uint8_t>(4, 0), std::vector<uint8_t>(4, 0), 2, 2, 1).score));
}

TEST(BfScoreTest, IgnorePixelsBelongToNeitherMask) {
  // Fixture image 0 (4x4), x = no label (255), predicted a:
  //   truth       prediction
  //   a a b b     a a b b
  //   a a b b     a a b b
  //   a a b b     a b b b
  //   a a x b     a a a b
  // Tolerance 0.042 px: only coincident boundary pixels match.
  // Class a. True mask cols 0-1 (8 px), all boundary. Predicted mask: cols
  // 0-1 less (2,1) = 7 px, all boundary, all true ones; (3,2) is unlabelled
  // so it is not in the mask. P = 7/7, R = 7/8, BF = 1.75 / 1.875 = 14/15.
  // (Were the prediction kept there, its boundary would gain (3,2): P = 7/8,
  // R = 7/8, BF = 0.875.)
  // Class b. True mask cols 2-3 less (3,2) = 7 px, all boundary. Predicted
  // mask: the same 7 + (2,1) = 8 px, all boundary. P = 7/8, R = 7/7,
  // BF = 14/15. Class c in neither: NaN.
  const std::vector<uint8_t> truth = {kA, kA, kB, kB, kA, kA, kB, kB,
                                      kA, kA, kB, kB, kA, kA, kX, kB};
  const std::vector<uint8_t> predicted = {kA, kA, kB, kB, kA, kA, kB, kB,
                                          kA, kB, kB, kB, kA, kA, kA, kB};
  const double tolerance = bf_tolerance_px(4, 4, 0.0075);
  const std::vector<double> bf =
      bf_scores_per_class(predicted.data(), truth.data(), 4, 4, 3, tolerance);
  EXPECT_DOUBLE_EQ(bf[kA], 14.0 / 15);
  EXPECT_DOUBLE_EQ(bf[kB], 14.0 / 15);
  EXPECT_TRUE(std::isnan(bf[kC]));
  // The rule not taken, for contrast: the prediction unchanged on x.
  EXPECT_DOUBLE_EQ(bf_score(mask_of(predicted, kA), mask_of(truth, kA), 4, 4, tolerance).score,
                   0.875);
}

}  // namespace gpulab::tasks::bf_score_test
