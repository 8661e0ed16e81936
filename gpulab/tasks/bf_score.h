// BF (boundary F1) score of a predicted label map against the truth, as
// MATLAB's bfscore (Csurka, Larlus and Perronnin, BMVC 2013), with the
// boundary, tolerance and ignore rules gpulab freezes (docs/segmentation-metrics.md).
#pragma once

#include <cstdint>
#include <vector>

namespace gpulab::tasks {

// Precision, recall and their harmonic mean for one class of one image.
struct BoundaryMatch {
  double score = 0;      // 2PR / (P + R); 0 when P + R = 0; NaN when both masks are empty
  double precision = 0;  // share of predicted boundary pixels within tolerance of a true one
  double recall = 0;     // share of true boundary pixels within tolerance of a predicted one
};

// The distance tolerance in pixels: `fraction` of the image diagonal,
// fraction * sqrt(height² + width²) (MATLAB's default fraction is 0.0075:
// 9 px at 960x720).
double bf_tolerance_px(int64_t height, int64_t width, double fraction);

// The boundary of a binary mask (row-major height x width, non-zero = in):
// the mask pixels with at least one of their 8 neighbours outside the mask,
// where pixels beyond the image edge count as outside (as MATLAB's bwperim
// pads with zeros). So a non-empty mask always has a boundary, and a mask
// touching the image edge has boundary pixels along it. Returns 0/1 per pixel.
std::vector<uint8_t> mask_boundary(const std::vector<uint8_t>& mask, int64_t height, int64_t width);

// BF score of two binary masks of the same height x width. A boundary pixel
// matches when its Euclidean distance to the nearest boundary pixel of the
// other mask is <= tolerance_px (inclusive; exact distances, O(H * W)).
// Both masks empty: score NaN (precision and recall NaN); exactly one empty:
// score, precision and recall 0.
BoundaryMatch bf_score(const std::vector<uint8_t>& predicted_mask,
                       const std::vector<uint8_t>& true_mask, int64_t height, int64_t width,
                       double tolerance_px);

// BF score of every class of one image. `predicted` and `truth` are row-major
// height x width class ids. Truth values >= num_classes (the ignore value 255,
// say) carry no label: such pixels are outside both masks of every class,
// whatever the prediction there (so the prediction is cut along unlabelled
// regions exactly as the truth is, and neither gains nor loses boundary
// there). Returns num_classes scores: NaN for a class in neither mask, 0 for
// a class in exactly one. O(H * W) per class present.
std::vector<double> bf_scores_per_class(const uint8_t* predicted, const uint8_t* truth,
                                        int64_t height, int64_t width, int64_t num_classes,
                                        double tolerance_px);

}  // namespace gpulab::tasks
