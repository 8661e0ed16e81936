// Fetching a lab's inputs before its command starts: concurrently, into a
// content-addressed cache shared by every execution (HOME/cache), then
// hard-linked (or copied) into the execution's inputs/NAME.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "gpulab/core/options.h"
#include "gpulab/lab/lab_spec.h"
#ifdef GPULAB_WITH_CURL
#include "gpulab/data/s3_client.h"
#endif

namespace gpulab::lab {

struct InputFetchOptions {
  explicit InputFetchOptions(std::string cache_dir) : cache_dir_(std::move(cache_dir)) {}
  // Cache folder: blobs/HH/SHA256 (read-only files) and urls/KEY.json (the
  // ETag and digest last seen for a URL).
  GPULAB_ARG(std::string, cache_dir);
  // Inputs fetched at once.
  GPULAB_ARG(int, threads) = 4;
  // Maps exec://ID/outputs/PATH to a local path; called on the calling thread
  // before any fetch starts. Unset: exec:// inputs fail with kInvalidArgument.
  GPULAB_ARG(std::function<std::string(const std::string& url)>, resolve_exec);
#ifdef GPULAB_WITH_CURL
  GPULAB_ARG(data::HttpOptions, http);
  // Region, endpoint and credentials for s3:// inputs (the CLI fills them
  // from AWS_* variables; the library reads none).
  GPULAB_ARG(data::S3Options, s3);
#endif
};

struct FetchedInput {
  std::string name;    // the spec's input name
  std::string url;     // as given, credentials redacted
  std::string digest;  // "sha256:HEX" of the file, or of a folder's listing
  int64_t bytes = 0;
  bool from_cache = false;  // the bytes were already in the cache
};

// Fetches every input into `inputs_dir`/NAME, in the spec's order. A folder
// (a path or an exec:// output folder) is copied, its digest taken over its
// sorted (path, sha256) list. http(s) entries are revalidated with the ETag
// (If-None-Match); s3 entries compare the listed ETag. The first failure
// stops the rest and is rethrown with its kind as
//   "input `NAME`: cannot fetch 'URL (redacted)': WHY".
std::vector<FetchedInput> fetch_inputs(const std::vector<LabInput>& inputs,
                                       const std::string& inputs_dir,
                                       const InputFetchOptions& options);

// The folder or file exec://ID/outputs/PATH names, inside `outputs_dir` (the
// execution's outputs/). Throws Error(kInvalidArgument) when PATH leaves it
// ('..', an absolute path or a symlink out) and Error(kNotFound) when
// nothing is there.
std::string resolve_exec_path(const std::string& url, const std::string& outputs_dir);

// The execution id of exec://ID/outputs/PATH.
std::string exec_url_id(const std::string& url);

}  // namespace gpulab::lab
