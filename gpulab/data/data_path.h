// A data path resolved once: remote data (s3://, an http(s) URL list) is
// fetched into the cache and read from its local view; local paths pass
// through. Messages, spec.yaml and model files show `source` (a URL with its
// credentials redacted), the loaders read `local`.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "gpulab/core/log.h"
#include "gpulab/data/data_options.h"
#include "gpulab/data/image_folder_index.h"
#ifdef GPULAB_WITH_CURL
#include "gpulab/data/s3_client.h"
#endif

namespace gpulab::data {

// How a command reaches remote data and where it keeps caches. The
// application fills it (e.g. from AWS_* and XDG_CACHE_HOME); the library
// never reads the environment.
struct RemoteAccess {
  // Remote objects' cache (data_options.cache_dir overrides it).
  std::string cache_dir;
  // Index caches of image folders that are not writable ("" = none).
  std::string index_cache_dir;
#ifdef GPULAB_WITH_CURL
  S3Options s3;  // region, endpoint, credentials of s3:// URLs
#endif
};

struct DataPath {
  std::string source;
  std::string local;
  // Remote data: each file of `local` (relative path) -> its object's URL;
  // null for local data.
  std::shared_ptr<const std::map<std::string, std::string>> sources;
  // Remote files left out as not found (skip_bad_files): skipped files too.
  int64_t missing_files = 0;

  bool empty() const { return local.empty(); }
  // How errors name `file`: "FILE (from URL)" for a file of remote data,
  // else FILE.
  std::string describe(const std::string& file) const;
  // describe() as a FileNamer; empty for local data.
  FileNamer file_namer() const;
};

// Whether `path` is remote: s3://, http:// or https:// (any case).
bool is_remote_path(const std::string& path);

// Fetches remote `path` (writing one "Fetched …" line, and what was left
// out, to `log`) or passes a local path through. Throws
// Error(kUnavailable) for remote data in a build without libcurl, and the
// remote clients' errors (none names a credential).
DataPath resolve_data_path(const std::string& path, const DataOptions& options,
                           const RemoteAccess& access, const core::Log& log);

}  // namespace gpulab::data
