// Parallel folder walk and the index cache.
#include "gpulab/data/image_folder_index.h"

#include <unistd.h>

#include <algorithm>
#include <exception>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <set>
#include <utility>

#include "gpulab/core/atomic_file.h"
#include "gpulab/core/error.h"
#include "gpulab/core/parallel_for.h"
#include "gpulab/core/text.h"

namespace gpulab::data {
namespace fs = std::filesystem;
namespace {

constexpr int kCacheVersion = 3;  // 2: nested folders and their times; 3: unlabelled folders
constexpr const char* kCacheName = ".gpulab-index.json";

std::string lower_extension(const fs::path& p) {
  return core::to_lower(p.extension().string());
}

int64_t mtime_of(const fs::path& dir) {
  std::error_code ec;
  auto t = fs::last_write_time(dir, ec);
  return ec ? -1 : static_cast<int64_t>(t.time_since_epoch().count());
}

// What the walk found in one class folder: its images, and the folders
// below it with their modification times (how a cached index knows it is
// stale: adding or removing a file changes its folder's time).
struct ClassListing {
  std::vector<std::string> files;                        // relative to the class folder, sorted
  std::vector<std::pair<std::string, int64_t>> folders;  // relative, mtime
};

// Walks a class folder, following symbolic links to folders (as
// torchvision's ImageFolder does) but never into a folder twice.
ClassListing list_class(const fs::path& dir, const ImageFolderOptions& options) {
  ClassListing listing;
  std::error_code ec;
  fs::recursive_directory_iterator it(dir, fs::directory_options::follow_directory_symlink, ec),
      end;
  GPULAB_CHECK(!ec, ErrorKind::kIo, "cannot read class folder '{}': {}", dir.string(),
               ec.message());
  std::set<std::string> visited = {fs::canonical(dir, ec).string()};
  const auto& exts = options.extensions();
  for (; it != end; it.increment(ec)) {
    GPULAB_CHECK(!ec, ErrorKind::kIo, "cannot read class folder '{}': {}", dir.string(),
                 ec.message());
    if (it->is_directory(ec)) {
      // A link back up the tree (a cycle) or to a folder seen already.
      if (!visited.insert(fs::canonical(it->path(), ec).string()).second) {
        it.disable_recursion_pending();
        continue;
      }
      listing.folders.emplace_back(it->path().lexically_relative(dir).string(),
                                   mtime_of(it->path()));
      continue;
    }
    if (!it->is_regular_file(ec)) continue;
    if (std::find(exts.begin(), exts.end(), lower_extension(it->path())) == exts.end()) continue;
    listing.files.push_back(it->path().lexically_relative(dir).string());
  }
  GPULAB_CHECK(!listing.files.empty(), ErrorKind::kCorruptData,
               "{} '{}' holds no images with extensions {}; {}",
               options.labelled() ? "class folder" : "image folder", dir.string(),
               fmt::join(exts, " "), options.labelled() ? "remove it or add images" : "add images");
  std::sort(listing.files.begin(), listing.files.end());
  std::sort(listing.folders.begin(), listing.folders.end());
  return listing;
}

// Whether the folders below the class folders still have the times the
// cache recorded (the class folders' own times are in the cache key).
bool nested_folders_unchanged(const std::vector<fs::path>& class_dirs,
                              const nlohmann::json& folders) {
  if (!folders.is_array() || folders.size() != class_dirs.size()) return false;
  for (size_t c = 0; c < class_dirs.size(); ++c) {
    for (const auto& entry : folders[c]) {
      if (mtime_of(class_dirs[c] / entry.at(0).get<std::string>()) != entry.at(1).get<int64_t>())
        return false;
    }
  }
  return true;
}

// One task per class folder; the first error (in class order) wins.
std::vector<ClassListing> walk_parallel(const std::vector<fs::path>& class_dirs,
                                        const ImageFolderOptions& options) {
  std::vector<ClassListing> per_class(class_dirs.size());
  core::parallel_for(
      static_cast<int64_t>(class_dirs.size()), options.index_threads(), [&](int64_t i) {
        per_class[static_cast<size_t>(i)] = list_class(class_dirs[static_cast<size_t>(i)], options);
      });
  return per_class;
}

nlohmann::json cache_key(const ImageFolderOptions& options, const std::vector<fs::path>& dirs) {
  nlohmann::json classes = nlohmann::json::array();
  for (const auto& d : dirs) classes.push_back({d.filename().string(), mtime_of(d)});
  return {{"version", kCacheVersion},
          {"root", fs::absolute(options.root()).lexically_normal().string()},
          {"extensions", options.extensions()},
          {"labelled", options.labelled()},
          {"classes", classes}};
}

ImageFolderIndex build_index(const std::string& root, const std::vector<fs::path>& class_dirs,
                             const std::vector<std::vector<std::string>>& per_class,
                             bool labelled) {
  ImageFolderIndex index;
  index.root = root;
  for (size_t c = 0; c < class_dirs.size(); ++c) {
    if (labelled) index.label_spec.names.push_back(class_dirs[c].filename().string());
    for (const auto& rel : per_class[c]) {
      index.files.push_back((class_dirs[c] / rel).string());
      if (labelled) index.labels.push_back(static_cast<int64_t>(c));
    }
  }
  return index;
}

// The folders whose images form the index: the class sub-folders, sorted, or
// the root itself for an unlabelled folder.
std::vector<fs::path> class_folders(const ImageFolderOptions& options) {
  const std::string& root = options.root();
  if (!options.labelled()) return {fs::path(root)};
  std::vector<fs::path> class_dirs;
  for (const auto& entry : fs::directory_iterator(root)) {
    if (entry.is_directory()) class_dirs.push_back(entry.path());
  }
  std::sort(class_dirs.begin(), class_dirs.end());
  GPULAB_CHECK(!class_dirs.empty(), ErrorKind::kCorruptData,
               "image folder '{}' has no sub-folders; expected one sub-folder per "
               "class (e.g. '{}/cat/*.jpg'), or an unlabelled folder for a task that needs no "
               "labels",
               root, root);
  return class_dirs;
}

}  // namespace

std::string index_cache_path(const ImageFolderOptions& options) {
  if (!options.cache_index()) return "";
  if (::access(options.root().c_str(), W_OK) == 0) {
    return (fs::path(options.root()) / kCacheName).string();
  }
  if (options.cache_dir().empty()) return "";
  const std::string abs = fs::absolute(options.root()).lexically_normal().string();
  return (fs::path(options.cache_dir()) /
          fmt::format("index-{:016x}.json", std::hash<std::string>{}(abs)))
      .string();
}

ImageFolderIndex index_image_folder(const ImageFolderOptions& options) {
  const std::string& root = options.root();
  GPULAB_CHECK(fs::is_directory(root), ErrorKind::kNotFound, "image folder '{}' does not exist",
               root);
  const std::vector<fs::path> class_dirs = class_folders(options);

  const std::string cache_path = index_cache_path(options);
  nlohmann::json key;
  if (!cache_path.empty()) {
    key = cache_key(options, class_dirs);
    // A cache that cannot be read or is stale is rebuilt, never an error.
    try {
      if (fs::exists(cache_path)) {
        auto cached = nlohmann::json::parse(core::read_file(cache_path));
        if (cached.value("key", nlohmann::json()) == key &&
            nested_folders_unchanged(class_dirs, cached.at("folders"))) {
          auto per_class = cached.at("files").get<std::vector<std::vector<std::string>>>();
          if (per_class.size() == class_dirs.size()) {
            ImageFolderIndex index = build_index(root, class_dirs, per_class, options.labelled());
            index.from_cache = true;
            return index;
          }
        }
      }
    } catch (const std::exception&) {
    }
  }
  const std::vector<ClassListing> listings = walk_parallel(class_dirs, options);
  std::vector<std::vector<std::string>> per_class;
  nlohmann::json folders = nlohmann::json::array();
  for (const auto& l : listings) {
    per_class.push_back(l.files);
    folders.push_back(l.folders);
  }
  if (!cache_path.empty()) {
    try {
      fs::create_directories(fs::path(cache_path).parent_path());
      core::write_file_atomic(
          cache_path,
          nlohmann::json{{"key", key}, {"files", per_class}, {"folders", folders}}.dump());
    } catch (const std::exception&) {
      // Read-only media: index again next time.
    }
  }
  return build_index(root, class_dirs, per_class, options.labelled());
}

}  // namespace gpulab::data
