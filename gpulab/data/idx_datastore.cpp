// IDX folder discovery and image/label agreement checks.
#include "gpulab/data/idx_datastore.h"

#include <torch/torch.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "gpulab/core/error.h"
#include "gpulab/core/text.h"
#include "gpulab/data/idx_reader.h"

namespace gpulab::data {
namespace fs = std::filesystem;
namespace {

// Accepts the common spellings: train-images-idx3-ubyte, train-images.idx3-ubyte.
std::string find_idx_file(const std::string& dir, const std::string& prefix,
                          const std::string& kind, const std::string& idx) {
  for (const std::string sep : {"-", "."}) {
    for (const std::string ext : {"", ".gz"}) {
      fs::path p = fs::path(dir) / (prefix + "-" + kind + sep + idx + "-ubyte" + ext);
      if (fs::exists(p)) return p.string();
    }
  }
  return "";
}

std::vector<std::string> default_class_names(const std::string& dir, int64_t count) {
  fs::path classes = fs::path(dir) / "classes.txt";
  std::vector<std::string> names;
  if (fs::exists(classes)) {
    std::ifstream in(classes);
    for (std::string line; std::getline(in, line);) {
      if (!line.empty()) names.push_back(line);
    }
    GPULAB_CHECK(static_cast<int64_t>(names.size()) >= count, ErrorKind::kCorruptData,
                 "'{}' names {} classes but the labels go up to {}", classes.string(), names.size(),
                 count - 1);
    return names;
  }
  const std::string folder = core::to_lower(fs::absolute(dir).lexically_normal().string());
  if (folder.find("fashion") != std::string::npos && count <= 10) {
    return {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
            "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
  }
  for (int64_t i = 0; i < std::max<int64_t>(count, 10); ++i) names.push_back(std::to_string(i));
  return names;
}

}  // namespace

bool is_idx_folder(const std::string& dir) {
  if (!fs::is_directory(dir)) return false;
  return !find_idx_file(dir, "train", "images", "idx3").empty() ||
         !find_idx_file(dir, "t10k", "images", "idx3").empty();
}

Dataset load_idx_folder(const std::string& dir, IdxSplit split) {
  GPULAB_CHECK(fs::is_directory(dir), ErrorKind::kNotFound, "data folder '{}' does not exist", dir);
  const std::string prefix = split == IdxSplit::kTrain ? "train" : "t10k";
  std::string images_path = find_idx_file(dir, prefix, "images", "idx3");
  std::string labels_path = find_idx_file(dir, prefix, "labels", "idx1");
  GPULAB_CHECK(!images_path.empty(), ErrorKind::kNotFound,
               "IDX folder '{}' has no {}-images-idx3-ubyte[.gz] file", dir, prefix);
  GPULAB_CHECK(!labels_path.empty(), ErrorKind::kNotFound,
               "IDX folder '{}' has no {}-labels-idx1-ubyte[.gz] file beside '{}'", dir, prefix,
               fs::path(images_path).filename().string());

  at::Tensor images = read_idx_file(images_path, 3);
  at::Tensor labels = read_idx_file(labels_path, 1);
  GPULAB_CHECK(images.size(0) == labels.size(0), ErrorKind::kCorruptData,
               "IDX: '{}' holds {} images but '{}' holds {} labels; they must agree", images_path,
               images.size(0), labels_path, labels.size(0));

  Dataset ds;
  ds.images = images.unsqueeze(1).contiguous();
  ds.targets = labels.to(torch::kInt64);
  int64_t num_classes = ds.targets.max().item<int64_t>() + 1;
  ds.label_spec.names = default_class_names(dir, num_classes);
  ds.source = dir;
  return ds;
}

}  // namespace gpulab::data
