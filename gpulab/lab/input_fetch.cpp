// Input fetches: local files and folders, other executions' outputs, http(s)
// and s3 through the data layer's HttpClient/S3Client (no second client).
#include "gpulab/lab/input_fetch.h"

#include <sys/stat.h>

#include <atomic>
#include <exception>
#include <filesystem>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "gpulab/core/atomic_file.h"
#include "gpulab/core/error.h"
#include "gpulab/lab/sha256.h"
#ifdef GPULAB_WITH_CURL
#include "gpulab/data/http_client.h"
#include "gpulab/data/s3_client.h"
#endif

namespace gpulab::lab {
namespace {
namespace fs = std::filesystem;

std::string display_url(const std::string& url) {
#ifdef GPULAB_WITH_CURL
  return data::redact_url(url);
#else
  return url;
#endif
}

std::string temp_name(const std::string& dir) {
  static thread_local std::mt19937_64 rng(std::random_device{}());
  return fmt::format("{}/tmp-{:016x}", dir, rng());
}

// Moves `tmp` into the cache as blobs/HH/SHA (read-only); returns its path.
std::string adopt_blob(const std::string& cache, const std::string& tmp, const std::string& sha) {
  const fs::path blob = fs::path(cache) / "blobs" / sha.substr(0, 2) / sha;
  fs::create_directories(blob.parent_path());
  if (fs::exists(blob)) {
    fs::remove(tmp);
  } else {
    ::chmod(tmp.c_str(), 0444);
    fs::rename(tmp, blob);  // same file system: atomic; a racing twin wins harmlessly
  }
  return blob.string();
}

void link_or_copy(const std::string& from, const std::string& to) {
  fs::remove_all(to);
  std::error_code ec;
  fs::create_hard_link(from, to, ec);
  if (ec) fs::copy_file(from, to, fs::copy_options::overwrite_existing);
}

struct Blob {
  std::string path;
  std::string sha;
  bool from_cache = false;
};

Blob cache_local_file(const std::string& cache, const std::string& path) {
  const std::string sha = sha256_file(path);
  const fs::path blob = fs::path(cache) / "blobs" / sha.substr(0, 2) / sha;
  if (fs::exists(blob)) return {blob.string(), sha, true};
  const std::string tmp = temp_name(cache + "/tmp");
  fs::copy_file(path, tmp);
  return {adopt_blob(cache, tmp, sha), sha, false};
}

// A copied folder; its digest covers relative paths and contents.
std::string copy_folder(const std::string& from, const std::string& to, int64_t* bytes) {
  fs::remove_all(to);
  fs::copy(from, to, fs::copy_options::recursive | fs::copy_options::copy_symlinks);
  std::vector<std::pair<std::string, std::string>> files;
  for (const auto& entry : fs::recursive_directory_iterator(to)) {
    if (!entry.is_regular_file()) continue;
    files.emplace_back(fs::relative(entry.path(), to).string(), sha256_file(entry.path()));
    *bytes += static_cast<int64_t>(entry.file_size());
  }
  std::sort(files.begin(), files.end());
  Sha256 hash;
  for (const auto& [rel, sha] : files) hash.update(rel + '\0' + sha + '\n');
  return hash.hex_digest();
}

#ifdef GPULAB_WITH_CURL
struct UrlIndex {
  std::string etag;
  std::string sha;
};

std::string index_path(const std::string& cache, const std::string& url) {
  return cache + "/urls/" + sha256_hex(url).substr(0, 32) + ".json";
}

UrlIndex read_index(const std::string& cache, const std::string& url) {
  const std::string path = index_path(cache, url);
  if (!fs::exists(path)) return {};
  try {
    const auto j = nlohmann::json::parse(core::read_file(path));
    UrlIndex index{j.value("etag", ""), j.value("sha256", "")};
    const fs::path blob = fs::path(cache) / "blobs" / index.sha.substr(0, 2) / index.sha;
    if (index.sha.size() != 64 || !fs::exists(blob)) return {};
    return index;
  } catch (const std::exception&) {
    return {};  // a damaged index only costs a download
  }
}

void write_index(const std::string& cache, const std::string& url, const UrlIndex& index) {
  fs::create_directories(cache + "/urls");
  core::write_file_atomic(index_path(cache, url),
                          nlohmann::json{{"etag", index.etag}, {"sha256", index.sha}}.dump());
}

std::string blob_path(const std::string& cache, const std::string& sha) {
  return (fs::path(cache) / "blobs" / sha.substr(0, 2) / sha).string();
}

Blob fetch_http(const std::string& cache, const std::string& url, const data::HttpClient& http) {
  const UrlIndex index = read_index(cache, url);
  data::HttpRequest request;
  request.url = url;
  if (!index.etag.empty()) request.headers.push_back("If-None-Match: " + index.etag);
  const std::string tmp = temp_name(cache + "/tmp");
  const data::HttpResponse r = http.perform(request, tmp);
  if (r.status == 304 && !index.sha.empty()) {
    fs::remove(tmp);
    return {blob_path(cache, index.sha), index.sha, true};
  }
  if (r.status < 200 || r.status >= 300) {
    std::error_code ec;
    fs::remove(tmp, ec);
    throw Error(r.status == 404 ? ErrorKind::kNotFound : ErrorKind::kUnavailable,
                fmt::format("the server answered HTTP {}", r.status));
  }
  const std::string sha = sha256_file(tmp);
  Blob blob{adopt_blob(cache, tmp, sha), sha, false};
  write_index(cache, url, {r.header("etag"), sha});
  return blob;
}

Blob fetch_s3(const std::string& cache, const std::string& url, const data::S3Options& s3) {
  const auto loc = data::S3Location::parse(url);
  GPULAB_CHECK(!loc.prefix.empty(), ErrorKind::kInvalidArgument,
               "expected s3://BUCKET/KEY naming one object, found no key");
  data::S3Client client(loc.bucket, s3);
  std::string etag;
  for (const auto& object : client.list_objects(loc.prefix)) {
    if (object.key == loc.prefix) etag = object.etag;
  }
  GPULAB_CHECK(!etag.empty(), ErrorKind::kNotFound, "no object '{}' in bucket '{}'", loc.prefix,
               loc.bucket);
  const UrlIndex index = read_index(cache, url);
  if (!index.sha.empty() && index.etag == etag)
    return {blob_path(cache, index.sha), index.sha, true};
  const std::string tmp = temp_name(cache + "/tmp");
  client.get_object_to_file(loc.prefix, tmp);
  const std::string sha = sha256_file(tmp);
  Blob blob{adopt_blob(cache, tmp, sha), sha, false};
  write_index(cache, url, {etag, sha});
  return blob;
}
#endif

}  // namespace

std::string exec_url_id(const std::string& url) {
  GPULAB_CHECK(url.rfind("exec://", 0) == 0, ErrorKind::kInvalidArgument,
               "expected exec://EXECUTION_ID/outputs/PATH, found '{}'", url);
  const size_t slash = url.find('/', 7);
  return url.substr(7, slash == std::string::npos ? std::string::npos : slash - 7);
}

std::string resolve_exec_path(const std::string& url, const std::string& outputs_dir) {
  const std::string id = exec_url_id(url);
  const std::string prefix = "exec://" + id + "/outputs/";
  GPULAB_CHECK(url.rfind(prefix, 0) == 0 && url.size() > prefix.size(), ErrorKind::kInvalidArgument,
               "expected exec://EXECUTION_ID/outputs/PATH, found '{}'", url);
  const std::string rel = url.substr(prefix.size());
  GPULAB_CHECK(rel[0] != '/', ErrorKind::kInvalidArgument,
               "'{}': expected a path inside the execution's outputs, found an absolute one", url);
  const fs::path root = fs::weakly_canonical(outputs_dir);
  const fs::path target = fs::weakly_canonical(root / rel);
  const std::string r = root.string() + "/";
  GPULAB_CHECK(target.string().rfind(r, 0) == 0, ErrorKind::kInvalidArgument,
               "'{}' leaves execution {}'s outputs (through '..' or a symlink): expected a path "
               "inside them",
               url, id);
  GPULAB_CHECK(fs::exists(target), ErrorKind::kNotFound,
               "'{}': execution {} has no output '{}' (see gpulab lab outputs {})", url, id, rel,
               id);
  return target.string();
}

std::vector<FetchedInput> fetch_inputs(const std::vector<LabInput>& inputs,
                                       const std::string& inputs_dir,
                                       const InputFetchOptions& options) {
  const std::string cache = options.cache_dir();
  fs::create_directories(cache + "/tmp");
  fs::create_directories(inputs_dir);
  std::vector<FetchedInput> out(inputs.size());
  std::vector<std::string> local(inputs.size());  // resolved local path, or "" for remote
  auto wrap = [&](size_t i, const std::string& why, ErrorKind kind) {
    return Error(kind, fmt::format("input `{}`: cannot fetch '{}': {}", inputs[i].name,
                                   display_url(inputs[i].url), why));
  };
  for (size_t i = 0; i < inputs.size(); ++i) {
    out[i].name = inputs[i].name;
    out[i].url = display_url(inputs[i].url);
    const std::string& url = inputs[i].url;
    try {
      if (url.rfind("exec://", 0) == 0) {
        GPULAB_CHECK(static_cast<bool>(options.resolve_exec()), ErrorKind::kInvalidArgument,
                     "exec:// inputs need an execution store");
        local[i] = options.resolve_exec()(url);
      } else if (url.find("://") == std::string::npos) {
        GPULAB_CHECK(fs::exists(url), ErrorKind::kNotFound, "no such file or folder");
        local[i] = url;
      }
    } catch (const Error& e) {
      throw wrap(i, e.what(), e.kind());
    }
  }
#ifdef GPULAB_WITH_CURL
  const data::HttpClient http(options.http());
#endif
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  std::mutex mutex;  // guards first_error
  std::exception_ptr first_error;
  auto work = [&] {
    for (size_t i = next++; i < inputs.size() && !failed; i = next++) {
      const std::string target = inputs_dir + "/" + inputs[i].name;
      try {
        if (!local[i].empty() && fs::is_directory(local[i])) {
          out[i].digest = "sha256:" + copy_folder(local[i], target, &out[i].bytes);
          continue;
        }
        Blob blob;
        const std::string& url = inputs[i].url;
        if (!local[i].empty()) {
          blob = cache_local_file(cache, local[i]);
        } else if (url.rfind("http://", 0) == 0 || url.rfind("https://", 0) == 0) {
#ifdef GPULAB_WITH_CURL
          blob = fetch_http(cache, url, http);
#endif
        } else if (url.rfind("s3://", 0) == 0) {
#ifdef GPULAB_WITH_CURL
          blob = fetch_s3(cache, url, options.s3());
#endif
        }
        GPULAB_CHECK(!blob.path.empty(), ErrorKind::kUnavailable,
                     "this gpulab was built without libcurl (GPULAB_WITH_CURL)");
        link_or_copy(blob.path, target);
        out[i].digest = "sha256:" + blob.sha;
        out[i].bytes = static_cast<int64_t>(fs::file_size(blob.path));
        out[i].from_cache = blob.from_cache;
      } catch (const Error& e) {
        std::lock_guard<std::mutex> lock(mutex);
        if (!first_error) first_error = std::make_exception_ptr(wrap(i, e.what(), e.kind()));
        failed = true;
      } catch (const std::exception& e) {
        std::lock_guard<std::mutex> lock(mutex);
        if (!first_error) first_error = std::make_exception_ptr(wrap(i, e.what(), ErrorKind::kIo));
        failed = true;
      }
    }
  };
  const int n = std::max(1, std::min<int>(options.threads(), static_cast<int>(inputs.size())));
  std::vector<std::thread> threads;
  for (int t = 0; t + 1 < n; ++t) threads.emplace_back(work);
  work();
  for (auto& t : threads) t.join();
  if (first_error) std::rethrow_exception(first_error);
  return out;
}

}  // namespace gpulab::lab
