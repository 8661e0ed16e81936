// Datastore kind detection.
#include "gpulab/data/datastore.h"

#include <filesystem>

#include "gpulab/core/error.h"
#ifdef GPULAB_WITH_OPENCV
#include "gpulab/data/image_folder.h"
#endif

namespace gpulab::data {
namespace fs = std::filesystem;

LoadedData load_datastore(const std::string& path, const DatastoreOptions& options) {
  GPULAB_CHECK(fs::exists(path), ErrorKind::kNotFound, "data path '{}' does not exist", path);
  GPULAB_CHECK(fs::is_directory(path), ErrorKind::kInvalidArgument,
               "data path '{}' is a file; give a folder of IDX files or a folder "
               "with one sub-folder of images per class",
               path);
  LoadedData out;
  if (options.labelled() && is_idx_folder(path)) {
    out.kind = "idx";
    out.dataset = load_idx_folder(path, options.idx_split());
    const Dataset& d = out.dataset;
    GPULAB_CHECK((options.height() == 0 || options.height() == d.height()) &&
                     (options.width() == 0 || options.width() == d.width()),
                 ErrorKind::kInvalidArgument,
                 "'{}' is an IDX folder of {}x{} images; resizing (`image_size` {}x{}) applies "
                 "only to image folders",
                 path, d.height(), d.width(), options.height(), options.width());
    if (options.channels() == 3 && out.dataset.channels() == 1) {
      // Grey replicated to RGB, e.g. for ImageNet weights on Fashion-MNIST.
      out.dataset.images = out.dataset.images.repeat({1, 3, 1, 1});
    }
    return out;
  }
#ifdef GPULAB_WITH_OPENCV
  out.kind = "image-folder";
  out.dataset = load_image_folder(ImageFolderOptions(path)
                                      .labelled(options.labelled())
                                      .channels(options.channels())
                                      .height(options.height())
                                      .width(options.width())
                                      .skip_bad_files(options.skip_bad_files())
                                      .max_pixels(options.max_pixels())
                                      .file_name(options.file_name()),
                                  &out.skipped_files);
  return out;
#else
  GPULAB_FAIL(ErrorKind::kUnavailable,
              "'{}' is not an IDX folder, and this build has no image-folder "
              "support (built without OpenCV)",
              path);
#endif
}

}  // namespace gpulab::data
