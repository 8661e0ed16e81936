// The local cache of remote objects: one file per (source, key, version),
// fetched in parallel and written atomically, plus "views" that lay cached
// objects out as an image folder (hard links) for the local datastores.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "gpulab/core/options.h"

namespace gpulab::data {

struct RemoteCacheOptions {
  explicit RemoteCacheOptions(std::string dir) : dir_(std::move(dir)) {}
  // Cache folder (created when missing), e.g. ~/.cache/gpulab/remote.
  GPULAB_ARG(std::string, dir);
  // Parallel fetches.
  GPULAB_ARG(int, threads) = 8;
};

// One remote object. An unchanged (source, key, etag) is never fetched twice;
// a new etag is a new entry. An empty etag (version unknown) always fetches.
struct CacheEntry {
  std::string source;  // where it lives, e.g. "s3://bucket" or "https://host"
  std::string key;     // object key or full URL
  std::string etag;    // version reported by the server
};

struct CacheFetchStats {
  int64_t objects = 0;        // entries asked for
  int64_t fetched = 0;        // downloaded now
  int64_t cached = 0;         // already in the cache
  int64_t bytes = 0;          // size of all entries
  int64_t bytes_fetched = 0;  // size of those downloaded now
  double seconds = 0;         // wall time of fetch_all
};

// Thread-safe; concurrent processes sharing a folder are safe too (atomic
// renames; the same object fetched twice at once ends as one file).
class RemoteCache {
 public:
  explicit RemoteCache(RemoteCacheOptions options);

  // Writes the entry's bytes to `path` atomically (e.g. via a temporary file
  // and rename, as HttpClient::perform does). May throw; called on workers.
  using Fetch = std::function<void(const CacheEntry& entry, const std::string& path)>;

  // DIR/objects/HH/HASH[.ext], the extension taken from the key.
  std::string path_for(const CacheEntry& entry) const;

  // Makes sure every entry is cached, fetching the missing ones with
  // `threads` workers; returns their paths in the order given. The first
  // error stops the workers and is rethrown.
  std::vector<std::string> fetch_all(const std::vector<CacheEntry>& entries, const Fetch& fetch,
                                     CacheFetchStats* stats = nullptr) const;

  // A folder where relative[i] is a hard link to paths[i] (a copy across
  // file systems), built once per distinct content under DIR/views and
  // reused after; an object fetched again (e.g. one without a version) makes
  // a new view, never an old one that links stale bytes. Returns the folder.
  std::string make_view(const std::vector<std::string>& paths,
                        const std::vector<std::string>& relative) const;

  const RemoteCacheOptions& options() const { return options_; }

 private:
  RemoteCacheOptions options_;
};

// Stable 128-bit hash of `text` as 32 hex digits (file names, not security).
std::string stable_hash(const std::string& text);

}  // namespace gpulab::data
