// Content-addressed cache files and hard-link views; a small worker pool.
#include "gpulab/data/remote_cache.h"

#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <random>

#include "gpulab/core/atomic_file.h"
#include "gpulab/core/error.h"
#include "gpulab/core/parallel_for.h"

namespace gpulab::data {
namespace fs = std::filesystem;
namespace {

uint64_t fnv1a(const std::string& text, uint64_t seed) {
  uint64_t h = seed;
  for (unsigned char c : text) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h;
}

// A short lower-case extension of the key's last segment, or "".
std::string extension_of(const std::string& key) {
  std::string name = key.substr(key.find_last_of('/') + 1);
  name = name.substr(0, name.find_first_of("?#"));
  const auto dot = name.rfind('.');
  if (dot == std::string::npos || dot == 0 || name.size() - dot > 8) return "";
  std::string ext = name.substr(dot);
  for (char& c : ext) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.') return "";
  }
  return ext;
}

}  // namespace

std::string stable_hash(const std::string& text) {
  return fmt::format("{:016x}{:016x}", fnv1a(text, 14695981039346656037ULL),
                     fnv1a(text, 0x9e3779b97f4a7c15ULL));
}

RemoteCache::RemoteCache(RemoteCacheOptions options) : options_(std::move(options)) {
  GPULAB_CHECK(!options_.dir().empty(), ErrorKind::kInvalidArgument,
               "the remote-data cache folder must not be empty");
  GPULAB_CHECK(options_.threads() >= 1, ErrorKind::kInvalidArgument,
               "`fetch_threads` must be >= 1, got {}", options_.threads());
  core::ensure_writable_dir(options_.dir());
}

std::string RemoteCache::path_for(const CacheEntry& entry) const {
  const std::string h = stable_hash(entry.source + '\n' + entry.key + '\n' + entry.etag);
  return (fs::path(options_.dir()) / "objects" / h.substr(0, 2) / (h + extension_of(entry.key)))
      .string();
}

std::vector<std::string> RemoteCache::fetch_all(const std::vector<CacheEntry>& entries,
                                                const Fetch& fetch, CacheFetchStats* stats) const {
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::string> paths(entries.size());
  std::atomic<int64_t> fetched{0}, bytes{0}, bytes_fetched{0};
  core::parallel_for(static_cast<int64_t>(entries.size()), options_.threads(), [&](int64_t i) {
    const CacheEntry& e = entries[static_cast<size_t>(i)];
    paths[static_cast<size_t>(i)] = path_for(e);
    const std::string& path = paths[static_cast<size_t>(i)];
    std::error_code ec;
    if (e.etag.empty() || !fs::is_regular_file(path, ec)) {
      fs::create_directories(fs::path(path).parent_path(), ec);
      fetch(e, path);
      GPULAB_CHECK(fs::is_regular_file(path, ec), ErrorKind::kInternal,
                   "fetching '{}' left no file in the cache", e.key);
      fetched.fetch_add(1);
      bytes_fetched.fetch_add(static_cast<int64_t>(fs::file_size(path, ec)));
    }
    bytes.fetch_add(static_cast<int64_t>(fs::file_size(path, ec)));
  });
  if (stats != nullptr) {
    stats->objects = static_cast<int64_t>(entries.size());
    stats->fetched = fetched.load();
    stats->cached = stats->objects - stats->fetched;
    stats->bytes = bytes.load();
    stats->bytes_fetched = bytes_fetched.load();
    stats->seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
  return paths;
}

std::string RemoteCache::make_view(const std::vector<std::string>& paths,
                                   const std::vector<std::string>& relative) const {
  GPULAB_CHECK(paths.size() == relative.size(), ErrorKind::kInternal,
               "make_view: {} paths but {} names", paths.size(), relative.size());
  // The manifest names each object's file identity too: an object fetched
  // again (no version known, so re-downloaded and renamed into place) is a
  // new inode, and must not be served through an older view's stale link.
  std::string manifest;
  for (size_t i = 0; i < paths.size(); ++i) {
    struct stat st {};
    GPULAB_CHECK(::stat(paths[i].c_str(), &st) == 0, ErrorKind::kIo, "cached file '{}' disappeared",
                 paths[i]);
    manifest += fmt::format(
        "{}\t{}\t{}:{}:{}:{}.{}\n", relative[i], paths[i], static_cast<uint64_t>(st.st_dev),
        static_cast<uint64_t>(st.st_ino), static_cast<int64_t>(st.st_size),
        static_cast<int64_t>(st.st_mtim.tv_sec), static_cast<int64_t>(st.st_mtim.tv_nsec));
  }
  const fs::path views = fs::path(options_.dir()) / "views";
  const fs::path root = views / stable_hash(manifest);
  if (fs::is_directory(root)) return root.string();
  // Build under a private name, then rename: a reader sees all or nothing.
  const fs::path temp = views / fmt::format(".tmp-{}-{}", ::getpid(), std::random_device{}());
  fs::create_directories(temp);
  try {
    for (size_t i = 0; i < paths.size(); ++i) {
      const fs::path link = temp / relative[i];
      fs::create_directories(link.parent_path());
      std::error_code ec;
      fs::create_hard_link(paths[i], link, ec);
      if (ec) fs::copy_file(paths[i], link);
    }
    std::error_code ec;
    fs::rename(temp, root, ec);
    if (ec) {
      // Another process built the same view first.
      fs::remove_all(temp, ec);
      GPULAB_CHECK(fs::is_directory(root), ErrorKind::kIo, "cannot create cache view '{}'",
                   root.string());
    }
  } catch (const fs::filesystem_error& e) {
    std::error_code ec;
    fs::remove_all(temp, ec);
    GPULAB_FAIL(ErrorKind::kIo, "cannot lay out cached files under '{}': {}", views.string(),
                e.what());
  }
  return root.string();
}

}  // namespace gpulab::data
