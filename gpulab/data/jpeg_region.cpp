// A random resized crop covers 8-100% of a photo, so decoding only its
// columns and stopping after its last row saves about half the decode work;
// rows above it still pass through the entropy decoder, but skip the IDCT and
// the colour conversion. DALI's CPU "image random crop" decoder does the same.
#include "gpulab/data/jpeg_region.h"

#include <algorithm>
#include <csetjmp>
#include <cstdint>
#include <cstdio>

#include "gpulab/core/error.h"

#if defined(GPULAB_WITH_LIBJPEG)
#include <jpeglib.h>
#endif

namespace gpulab::data::detail {

#if defined(GPULAB_WITH_LIBJPEG) && defined(LIBJPEG_TURBO_VERSION_NUMBER) && \
    LIBJPEG_TURBO_VERSION_NUMBER >= 1005000

namespace {

// Decoded columns and rows beyond the box on each side, so that chroma
// upsampling at the box's edges sees the same neighbours as in a whole-image
// decode.
constexpr int kMargin = 16;

// libjpeg reports a fatal error through error_exit, which must not return; the
// way out is longjmp to the setjmp of the phase that called libjpeg. Only
// libjpeg's C frames and trivially destructible locals lie in between.
struct ErrorManager {
  jpeg_error_mgr pub;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

void on_fatal_error(j_common_ptr cinfo) {
  auto* err = reinterpret_cast<ErrorManager*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, err->message);
  std::longjmp(err->jump, 1);
}

// Warnings (extraneous bytes, premature end) are not fatal here, as in
// OpenCV; the caller checks for the end-of-image marker itself.
void on_message(j_common_ptr, int) {}

enum class Start { kOk, kUnsupportedColour, kFailed };

// Header, scale, output colour space and the column crop. `x` and `width`
// are in the reduced image; libjpeg moves x down to an iMCU boundary and
// widens `width` to match.
Start start_cropped(jpeg_decompress_struct* cinfo, ErrorManager* err, const std::string& bytes,
                    int reduction, int channels, JDIMENSION* x, JDIMENSION* width) {
  if (setjmp(err->jump)) return Start::kFailed;
  jpeg_mem_src(cinfo, reinterpret_cast<const unsigned char*>(bytes.data()),
               static_cast<unsigned long>(bytes.size()));
  jpeg_read_header(cinfo, TRUE);
  if (cinfo->jpeg_color_space == JCS_CMYK || cinfo->jpeg_color_space == JCS_YCCK) {
    return Start::kUnsupportedColour;
  }
  cinfo->scale_num = 1;
  cinfo->scale_denom = static_cast<unsigned int>(reduction);
  cinfo->out_color_space = channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_start_decompress(cinfo);
  *width = std::min(*width, cinfo->output_width - std::min(*x, cinfo->output_width));
  if (*x > 0 || *width < cinfo->output_width) jpeg_crop_scanline(cinfo, x, width);
  return Start::kOk;
}

// Rows [first, first + count) of the cropped columns into `out` (`stride`
// bytes a row).
bool read_rows(jpeg_decompress_struct* cinfo, ErrorManager* err, JDIMENSION first, JDIMENSION count,
               unsigned char* out, size_t stride) {
  if (setjmp(err->jump)) return false;
  if (first > 0 && jpeg_skip_scanlines(cinfo, first) != first) return false;
  while (cinfo->output_scanline < first + count) {
    JSAMPROW row = out + (cinfo->output_scanline - first) * stride;
    if (jpeg_read_scanlines(cinfo, &row, 1) != 1) return false;
  }
  return true;
}

// Owns the decompressor for the C++ side: destroyed on every way out.
struct Decompressor {
  jpeg_decompress_struct cinfo{};
  ErrorManager err{};
  Decompressor() {
    cinfo.err = jpeg_std_error(&err.pub);
    err.pub.error_exit = on_fatal_error;
    err.pub.emit_message = on_message;
    jpeg_create_decompress(&cinfo);
  }
  ~Decompressor() { jpeg_destroy_decompress(&cinfo); }
  Decompressor(const Decompressor&) = delete;
  Decompressor& operator=(const Decompressor&) = delete;
};

// Header, scale and output colour space for a whole-image decode. `channels`
// 0 becomes the stored count; CMYK and YCCK files come out as CMYK (libjpeg
// converts YCCK), for from_cmyk.
bool start_whole(jpeg_decompress_struct* cinfo, ErrorManager* err, const std::string& bytes,
                 int reduction, int* channels, bool* cmyk) {
  if (setjmp(err->jump)) return false;
  jpeg_mem_src(cinfo, reinterpret_cast<const unsigned char*>(bytes.data()),
               static_cast<unsigned long>(bytes.size()));
  jpeg_read_header(cinfo, TRUE);
  *cmyk = cinfo->jpeg_color_space == JCS_CMYK || cinfo->jpeg_color_space == JCS_YCCK;
  if (*channels == 0) *channels = cinfo->num_components == 1 ? 1 : 3;
  cinfo->scale_num = 1;
  cinfo->scale_denom = static_cast<unsigned int>(reduction);
  cinfo->out_color_space = *channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
  if (*cmyk) cinfo->out_color_space = JCS_CMYK;
  jpeg_start_decompress(cinfo);
  return true;
}

// libjpeg passes Adobe's (inverted) CMYK through; OpenCV turns it into
// R = K - (255 - C) * K / 256 (G from M, B from Y, integer shifts) and grey
// into 0.299 R + 0.587 G + 0.114 B in 14-bit fixed point. The same here, so
// both builds give the same pixels.
cv::Mat from_cmyk(const cv::Mat& cmyk, int channels) {
  constexpr int kShift = 14;
  constexpr int kRed = static_cast<int>(0.299 * (1 << kShift) + 0.5);
  constexpr int kGreen = static_cast<int>(0.587 * (1 << kShift) + 0.5);
  constexpr int kBlue = (1 << kShift) - kRed - kGreen;
  cv::Mat out(cmyk.rows, cmyk.cols, channels == 1 ? CV_8UC1 : CV_8UC3);
  for (int y = 0; y < cmyk.rows; ++y) {
    const uint8_t* in = cmyk.ptr<uint8_t>(y);
    uint8_t* o = out.ptr<uint8_t>(y);
    for (int x = 0; x < cmyk.cols; ++x, in += 4) {
      const int k = in[3];
      const int r = k - ((255 - in[0]) * k >> 8);
      const int g = k - ((255 - in[1]) * k >> 8);
      const int b = k - ((255 - in[2]) * k >> 8);
      if (channels == 1) {
        *o++ = static_cast<uint8_t>((r * kRed + g * kGreen + b * kBlue + (1 << (kShift - 1))) >>
                                    kShift);
      } else {
        *o++ = static_cast<uint8_t>(r);
        *o++ = static_cast<uint8_t>(g);
        *o++ = static_cast<uint8_t>(b);
      }
    }
  }
  return out;
}

}  // namespace

bool jpeg_region_decoding_available() {
  return true;
}

cv::Mat decode_jpeg_image(const std::string& name, const std::string& bytes, int reduction,
                          int channels) {
  GPULAB_CHECK(reduction == 1 || reduction == 2 || reduction == 4 || reduction == 8,
               ErrorKind::kInternal, "JPEG reduction must be 1, 2, 4 or 8, got {}", reduction);
  GPULAB_CHECK(channels == 0 || channels == 1 || channels == 3, ErrorKind::kInternal,
               "JPEG output must have 0 (as stored), 1 or 3 channels, got {}", channels);
  Decompressor d;
  bool cmyk = false;
  GPULAB_CHECK(
      start_whole(&d.cinfo, &d.err, bytes, reduction, &channels, &cmyk), ErrorKind::kCorruptData,
      "cannot decode JPEG '{}': {} (use `skip_bad_files` to skip such files)", name, d.err.message);
  const int rows = static_cast<int>(d.cinfo.output_height);
  int type = channels == 1 ? CV_8UC1 : CV_8UC3;
  if (cmyk) type = CV_8UC4;
  cv::Mat pixels(rows, static_cast<int>(d.cinfo.output_width), type);
  GPULAB_CHECK(
      read_rows(&d.cinfo, &d.err, 0, static_cast<JDIMENSION>(rows), pixels.data, pixels.step[0]),
      ErrorKind::kCorruptData,
      "cannot decode JPEG '{}': {} (use `skip_bad_files` to skip such files)", name,
      d.err.message[0] ? d.err.message : "fewer rows than its header declares");
  return cmyk ? from_cmyk(pixels, channels) : pixels;
}

std::optional<JpegRegion> decode_jpeg_region(const std::string& name, const std::string& bytes,
                                             int reduction, int channels, const cv::Rect& box) {
  GPULAB_CHECK(reduction == 1 || reduction == 2 || reduction == 4 || reduction == 8,
               ErrorKind::kInternal, "JPEG reduction must be 1, 2, 4 or 8, got {}", reduction);
  GPULAB_CHECK(channels == 1 || channels == 3, ErrorKind::kInternal,
               "JPEG output must have 1 or 3 channels, got {}", channels);
  GPULAB_CHECK(box.x >= 0 && box.y >= 0 && box.width > 0 && box.height > 0, ErrorKind::kInternal,
               "JPEG region {}x{}+{}+{} is empty or negative", box.width, box.height, box.x, box.y);
  Decompressor d;
  JDIMENSION x = static_cast<JDIMENSION>(std::max(0, box.x - kMargin));
  JDIMENSION width = static_cast<JDIMENSION>(box.x + box.width + kMargin) - x;
  const Start started = start_cropped(&d.cinfo, &d.err, bytes, reduction, channels, &x, &width);
  if (started == Start::kUnsupportedColour) return std::nullopt;
  GPULAB_CHECK(started == Start::kOk, ErrorKind::kCorruptData,
               "cannot decode JPEG '{}': {} (use `skip_bad_files` to skip such files)", name,
               d.err.message);
  const int out_w = static_cast<int>(d.cinfo.output_width);
  const int out_h = static_cast<int>(d.cinfo.output_height);
  GPULAB_CHECK(static_cast<int>(x) <= box.x && box.x + box.width <= static_cast<int>(x + width) &&
                   box.y + box.height <= out_h,
               ErrorKind::kInternal, "JPEG region {}x{}+{}+{} outside the {}x{} image '{}'",
               box.width, box.height, box.x, box.y, out_w, out_h, name);
  const int first = std::max(0, box.y - kMargin);
  const int last = std::min(out_h, box.y + box.height + kMargin);
  JpegRegion region;
  region.pixels.create(last - first, out_w, channels == 1 ? CV_8UC1 : CV_8UC3);
  GPULAB_CHECK(
      read_rows(&d.cinfo, &d.err, static_cast<JDIMENSION>(first),
                static_cast<JDIMENSION>(last - first), region.pixels.data, region.pixels.step[0]),
      ErrorKind::kCorruptData,
      "cannot decode JPEG '{}': {} (use `skip_bad_files` to skip such files)", name,
      d.err.message[0] ? d.err.message : "fewer rows than its header declares");
  // The rows below the box are never decoded: ~Decompressor ends the decode.
  region.box = cv::Rect(box.x - static_cast<int>(x), box.y - first, box.width, box.height);
  return region;
}

#else

bool jpeg_region_decoding_available() {
  return false;
}

std::optional<JpegRegion> decode_jpeg_region(const std::string&, const std::string&, int, int,
                                             const cv::Rect&) {
  return std::nullopt;
}

cv::Mat decode_jpeg_image(const std::string& name, const std::string&, int, int) {
  GPULAB_FAIL(ErrorKind::kUnavailable,
              "cannot decode JPEG '{}': this build has no libjpeg-turbo (install "
              "libjpeg62-turbo-dev and reconfigure)",
              name);
}

#endif

}  // namespace gpulab::data::detail
