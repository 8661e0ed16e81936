// Remote data as local folders: s3://bucket/prefix and http(s) URL lists are
// listed, fetched into the RemoteCache in parallel and laid out as an image
// folder (label = first folder under the prefix) that load_datastore reads.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "gpulab/core/options.h"
#include "gpulab/data/http_client.h"
#include "gpulab/data/image_files.h"
#include "gpulab/data/remote_cache.h"
#include "gpulab/data/s3_client.h"

namespace gpulab::data {

struct RemoteDataOptions {
  explicit RemoteDataOptions(std::string cache_dir) : cache_dir_(std::move(cache_dir)) {}
  // Cache folder (the CLI's default: ~/.cache/gpulab/remote).
  GPULAB_ARG(std::string, cache_dir);
  // Parallel downloads.
  GPULAB_ARG(int, fetch_threads) = 8;
  // Region, endpoint, credentials for s3:// URLs.
  GPULAB_ARG(S3Options, s3);
  // Timeouts and retries for http(s) URLs.
  GPULAB_ARG(HttpOptions, http);
  // URL lists: a URL that answers 404/410 is left out (listed in
  // RemoteData::missing) instead of failing the whole fetch.
  GPULAB_ARG(bool, skip_missing) = false;
  // Lower-case extensions of the objects kept as images; others are skipped.
  GPULAB_ARG(std::vector<std::string>, extensions) = image_extensions();
};

struct RemoteData {
  std::string url;         // as given (what spec.yaml records)
  std::string local_path;  // the local image folder (or file)
  CacheFetchStats stats;
  int64_t skipped = 0;  // objects left out: not an image, or not inside a class folder
  // URLs left out because they answered 404/410 (skip_missing), redacted.
  std::vector<std::string> missing;
  // Each file of the view (path relative to local_path) -> the URL it came
  // from, credentials redacted: errors about a file name its source.
  std::map<std::string, std::string> sources;
  // "Fetched 2,000 objects (180.2 MB) from s3://bucket/prefix in 4.1 s (1,930 cached)",
  // the URL's credentials redacted (redact_url).
  std::string summary() const;
};

// True for s3://, http:// and https:// paths.
bool is_remote_url(const std::string& path);

// An image folder from
//   s3://BUCKET[/PREFIX]: objects PREFIX/LABEL/…/NAME.EXT (ListObjectsV2);
//   http(s)://…/LIST.txt: one "URL [LABEL]" per line ('#' comments); without
//     a label, the URL's parent path segment is the label.
// Unchanged objects come from the cache; changed ones (new ETag) are fetched.
// Throws Error(kNotFound) when nothing usable is listed, and the S3Client /
// HttpClient errors (403, unreachable) otherwise; none names a credential.
RemoteData fetch_remote_dataset(const std::string& url, const RemoteDataOptions& options);

// One file (s3://BUCKET/KEY or an http(s) URL) in the cache, under its own
// file name; local_path is the file.
RemoteData fetch_remote_file(const std::string& url, const RemoteDataOptions& options);

namespace detail {

struct UrlListItem {
  std::string url;
  std::string label;
};
// Parses a URL list (see fetch_remote_dataset). `origin` names it in errors.
std::vector<UrlListItem> parse_url_list(const std::string& text, const std::string& origin);

}  // namespace detail
}  // namespace gpulab::data
