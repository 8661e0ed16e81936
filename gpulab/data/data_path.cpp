// Resolving local and remote data paths.
#include "gpulab/data/data_path.h"

#include <fmt/format.h>

#include "gpulab/core/error.h"
#include "gpulab/core/text.h"
#ifdef GPULAB_WITH_CURL
#include "gpulab/data/remote_datastore.h"
#endif

namespace gpulab::data {

std::string DataPath::describe(const std::string& file) const {
  const std::string root = local + "/";
  if (!sources || file.compare(0, root.size(), root) != 0) return file;
  const auto it = sources->find(file.substr(root.size()));
  return it == sources->end() ? file : file + " (from " + it->second + ")";
}

FileNamer DataPath::file_namer() const {
  if (!sources) return nullptr;
  return [self = *this](const std::string& file) { return self.describe(file); };
}

bool is_remote_path(const std::string& path) {
  const std::string lower = core::to_lower(path.substr(0, 8));
  return lower.rfind("s3://", 0) == 0 || lower.rfind("http://", 0) == 0 ||
         lower.rfind("https://", 0) == 0;
}

DataPath resolve_data_path(const std::string& path, const DataOptions& options,
                           const RemoteAccess& access, const core::Log& log) {
  if (!is_remote_path(path)) return {path, path, nullptr};
#ifdef GPULAB_WITH_CURL
  RemoteDataOptions remote_options(options.cache_dir.empty() ? access.cache_dir
                                                             : options.cache_dir);
  remote_options.fetch_threads(options.fetch_threads)
      .s3(access.s3)
      .skip_missing(options.skip_bad_files);
  RemoteData fetched = fetch_remote_dataset(path, remote_options);
  log.line(fetched.summary());
  if (fetched.skipped > 0) {
    log.line(fmt::format("Left out {} objects that are not images inside a class folder",
                         fetched.skipped));
  }
  if (!fetched.missing.empty()) {
    log.line(
        fmt::format("Skipped {} URLs that were not found (HTTP 404/410; skip_bad_files), e.g. {}",
                    fetched.missing.size(), fetched.missing.front()));
  }
  DataPath resolved{
      redact_url(path), fetched.local_path,
      std::make_shared<const std::map<std::string, std::string>>(std::move(fetched.sources))};
  resolved.missing_files = static_cast<int64_t>(fetched.missing.size());
  return resolved;
#else
  (void)options;
  (void)access;
  (void)log;
  GPULAB_FAIL(ErrorKind::kUnavailable,
              "'{}': this gpulab was built without remote data support (GPULAB_WITH_CURL=OFF); "
              "copy the data to a local folder",
              path);
#endif
}

}  // namespace gpulab::data
