// Decoding only the part of a JPEG that a crop needs, with libjpeg-turbo:
// scaled IDCT (1/2, 1/4, 1/8), jpeg_crop_scanline for the columns,
// jpeg_skip_scanlines for the rows above, and a stop after the last row; and
// the whole image, the region that covers everything, for builds without
// OpenCV's imgcodecs. Internal to gpulab_data (OpenCV stays out of public
// headers).
#pragma once

#include <opencv2/core.hpp>

#include <optional>
#include <string>

namespace gpulab::data::detail {

// True when this build decodes JPEG regions itself (libjpeg-turbo >= 1.5
// found at configure time); else callers decode the whole image.
bool jpeg_region_decoding_available();

struct JpegRegion {
  cv::Mat pixels;  // 8-bit, 1 channel or 3 channels in RGB order
  cv::Rect box;    // the requested box, relative to `pixels`
};

// Decodes the JPEG in `bytes` at 1/`reduction` of its size (1, 2, 4 or 8;
// the reduced image is ceil(W/reduction) x ceil(H/reduction), as libjpeg
// rounds) and returns enough of it to cover `box`, given in the reduced
// image's pixels. Pixels inside the box equal those of a whole-image decode:
// the decoded columns extend past the box on both sides (fancy upsampling
// reads its neighbours). Ignores EXIF orientation, like PIL and MATLAB's
// imread. Returns nullopt for colour spaces libjpeg cannot convert to
// `channels` (CMYK, YCCK): decode those another way. Throws
// Error(kCorruptData) naming `name` when libjpeg fails.
std::optional<JpegRegion> decode_jpeg_region(const std::string& name, const std::string& bytes,
                                             int reduction, int channels, const cv::Rect& box);

// Decodes the whole JPEG in `bytes` at 1/`reduction` of its size (1, 2, 4 or
// 8; ceil(W/reduction) x ceil(H/reduction)) into `channels` 1 (grey), 3 (RGB)
// or 0 (as stored: 1 for a grey JPEG, else 3). The pixels equal
// cv::imdecode's with the matching IMREAD_REDUCED_* mode and the channels in
// RGB order, CMYK and YCCK files included (converted with OpenCV's formulas).
// Ignores EXIF orientation. A truncated file decodes with grey rows at the end,
// as in OpenCV (callers check for the end-of-image marker). Throws
// Error(kCorruptData) naming `name` when libjpeg fails, Error(kUnavailable)
// in a build without libjpeg-turbo.
cv::Mat decode_jpeg_image(const std::string& name, const std::string& bytes, int reduction,
                          int channels);

}  // namespace gpulab::data::detail
