// s3:// and http(s) URL lists into cached image folders.
#include "gpulab/data/remote_datastore.h"

#include <algorithm>
#include <cctype>
#include <sstream>

#include "gpulab/core/error.h"
#include "gpulab/core/parallel_for.h"
#include "gpulab/core/text.h"

namespace gpulab::data {
namespace {

bool starts_with(const std::string& s, const std::string& p) {
  return s.rfind(p, 0) == 0;
}

bool is_http(const std::string& url) {
  const std::string l = core::to_lower(url.substr(0, 8));
  return starts_with(l, "http://") || starts_with(l, "https://");
}

std::string with_thousands(int64_t n) {
  std::string digits = std::to_string(n);
  for (int i = static_cast<int>(digits.size()) - 3; i > 0; i -= 3) digits.insert(i, ",");
  return digits;
}

std::string human_bytes(int64_t bytes) {
  if (bytes < 1000 * 1000) return fmt::format("{:.1f} kB", bytes / 1e3);
  if (bytes < int64_t{1000} * 1000 * 1000) return fmt::format("{:.1f} MB", bytes / 1e6);
  return fmt::format("{:.2f} GB", bytes / 1e9);
}

// A relative path inside a view: no empty, "." or ".." segments, so no key
// can place a file outside the folder.
bool safe_relative(const std::string& rel) {
  std::stringstream ss(rel);
  std::string seg;
  int segments = 0;
  while (std::getline(ss, seg, '/')) {
    if (seg.empty() || seg == "." || seg == "..") return false;
    ++segments;
  }
  return segments > 0 && rel.back() != '/';
}

bool has_extension(const std::string& name, const std::vector<std::string>& extensions) {
  const std::string l = core::to_lower(name);
  return std::any_of(extensions.begin(), extensions.end(), [&](const std::string& e) {
    return l.size() > e.size() && l.compare(l.size() - e.size(), e.size(), e) == 0;
  });
}

// The path of an http(s) URL, without query or fragment.
std::string url_path(const std::string& url) {
  const auto host = url.find("://") + 3;
  const auto slash = url.find('/', host);
  if (slash == std::string::npos) return "/";
  return url.substr(slash, url.find_first_of("?#", slash) - slash);
}

std::string basename_of(const std::string& path) {
  return path.substr(path.find_last_of('/') + 1);
}

// A refused, missing or failing resource is an error naming the URL (never
// its credentials).
void check_http_status(const HttpResponse& r, const std::string& url) {
  GPULAB_CHECK(r.status != 403 && r.status != 401, ErrorKind::kInvalidArgument,
               "access denied to {} (HTTP {})", redact_url(url), r.status);
  GPULAB_CHECK(r.status != 404 && r.status != 410, ErrorKind::kNotFound, "{} not found (HTTP {})",
               redact_url(url), r.status);
  GPULAB_CHECK(r.status >= 200 && r.status < 300, ErrorKind::kUnavailable,
               "{} answered HTTP {} after {} tries", redact_url(url), r.status, r.attempts);
}

// The version of an http(s) resource from a HEAD request: its ETag, else
// Last-Modified with the length, else "" (always fetched). A server that
// refuses HEAD is asked by the GET itself, which reports a real refusal:
// 405/501 (no HEAD), and 401/403 (a presigned S3 URL signs its GET only).
// With `missing`, a 404/410 sets it rather than throwing.
std::string http_version(const HttpClient& http, const std::string& url, bool* missing = nullptr) {
  HttpRequest head;
  head.method = "HEAD";
  head.url = url;
  HttpResponse r = http.perform(head);
  if (r.status == 405 || r.status == 501 || r.status == 401 || r.status == 403) return "";
  if (missing != nullptr && (r.status == 404 || r.status == 410)) {
    *missing = true;
    return "";
  }
  check_http_status(r, url);
  if (!r.header("etag").empty()) return r.header("etag");
  if (!r.header("last-modified").empty())
    return r.header("last-modified") + "/" + r.header("content-length");
  return "";
}

void http_get_to(const HttpClient& http, const std::string& url, const std::string& path) {
  HttpRequest get;
  get.url = url;
  HttpResponse r = http.perform(get, path);
  check_http_status(r, url);
}

RemoteData fetch_s3_dataset(const std::string& url, const RemoteDataOptions& options) {
  const S3Location loc = S3Location::parse(url);
  S3Client client(loc.bucket, options.s3());
  std::string prefix = loc.prefix;
  if (!prefix.empty() && prefix.back() != '/') prefix += '/';
  const std::vector<S3Object> listed = client.list_objects(prefix);
  GPULAB_CHECK(!listed.empty(), ErrorKind::kNotFound, "no objects under s3://{}/{} at {}",
               loc.bucket, prefix, client.endpoint());
  RemoteData out;
  out.url = url;
  std::vector<CacheEntry> entries;
  std::vector<std::string> relative;
  const std::string source = client.endpoint() + " s3://" + loc.bucket;
  for (const auto& o : listed) {
    const std::string rel = o.key.substr(prefix.size());
    // LABEL/…/NAME.EXT: an image inside a class folder.
    if (!safe_relative(rel) || rel.find('/') == std::string::npos ||
        !has_extension(rel, options.extensions())) {
      ++out.skipped;
      continue;
    }
    entries.push_back({source, o.key, o.etag});
    relative.push_back(rel);
    out.sources[rel] = "s3://" + loc.bucket + "/" + o.key;
  }
  GPULAB_CHECK(!entries.empty(), ErrorKind::kNotFound,
               "none of the {} objects under s3://{}/{} is an image ({}) inside a class folder "
               "(PREFIX/LABEL/NAME)",
               listed.size(), loc.bucket, prefix, fmt::join(options.extensions(), " "));
  RemoteCache cache(RemoteCacheOptions(options.cache_dir()).threads(options.fetch_threads()));
  const auto paths = cache.fetch_all(
      entries,
      [&](const CacheEntry& e, const std::string& path) { client.get_object_to_file(e.key, path); },
      &out.stats);
  out.local_path = cache.make_view(paths, relative);
  return out;
}

RemoteData fetch_url_list(const std::string& url, const RemoteDataOptions& options) {
  HttpClient http(options.http());
  HttpRequest get;
  get.url = url;
  HttpResponse r = http.perform(get);
  GPULAB_CHECK(r.status != 404 && r.status != 410, ErrorKind::kNotFound,
               "URL list {} not found (HTTP {})", redact_url(url), r.status);
  GPULAB_CHECK(r.status != 403 && r.status != 401, ErrorKind::kInvalidArgument,
               "access denied to URL list {} (HTTP {})", redact_url(url), r.status);
  GPULAB_CHECK(r.status == 200, ErrorKind::kUnavailable, "URL list {}: HTTP {} after {} tries",
               redact_url(url), r.status, r.attempts);
  const auto items = detail::parse_url_list(r.body, redact_url(url));
  RemoteData out;
  out.url = url;
  std::vector<CacheEntry> entries;
  std::vector<std::string> relative;
  for (size_t i = 0; i < items.size(); ++i) {
    const std::string name = basename_of(url_path(items[i].url));
    if (!has_extension(name, options.extensions())) {
      ++out.skipped;
      continue;
    }
    // The list's order is kept: image folders sort by file name.
    entries.push_back({"http", items[i].url, ""});
    relative.push_back(items[i].label + "/" + fmt::format("{:07d}-{}", i, name));
    out.sources[relative.back()] = redact_url(items[i].url);
  }
  GPULAB_CHECK(!entries.empty(), ErrorKind::kNotFound,
               "URL list {}: none of its {} URLs names an image ({})", redact_url(url),
               items.size(), fmt::join(options.extensions(), " "));
  RemoteCache cache(RemoteCacheOptions(options.cache_dir()).threads(options.fetch_threads()));
  // Versions first (HEAD, in parallel), so unchanged files are not fetched.
  std::vector<char> missing(entries.size(), 0);
  core::parallel_for(static_cast<int64_t>(entries.size()), options.fetch_threads(), [&](int64_t i) {
    bool gone = false;
    entries[i].etag = http_version(http, entries[i].key, options.skip_missing() ? &gone : nullptr);
    missing[static_cast<size_t>(i)] = gone;
  });
  if (options.skip_missing()) {
    // Left out, as undecodable files are under --skip-bad-files.
    size_t kept = 0;
    for (size_t i = 0; i < entries.size(); ++i) {
      if (missing[i]) {
        out.missing.push_back(redact_url(entries[i].key));
        out.sources.erase(relative[i]);
        continue;
      }
      entries[kept] = entries[i];
      relative[kept] = relative[i];
      ++kept;
    }
    entries.resize(kept);
    relative.resize(kept);
    GPULAB_CHECK(!entries.empty(), ErrorKind::kNotFound,
                 "URL list {}: none of its {} image URLs exists (HTTP 404)", redact_url(url),
                 missing.size());
  }
  const auto paths = cache.fetch_all(
      entries,
      [&](const CacheEntry& e, const std::string& path) { http_get_to(http, e.key, path); },
      &out.stats);
  out.local_path = cache.make_view(paths, relative);
  return out;
}

}  // namespace

std::string RemoteData::summary() const {
  return fmt::format("Fetched {} objects ({}) from {} in {:.1f} s ({} cached)",
                     with_thousands(stats.objects), human_bytes(stats.bytes), redact_url(url),
                     stats.seconds, with_thousands(stats.cached));
}

bool is_remote_url(const std::string& path) {
  return starts_with(core::to_lower(path.substr(0, 5)), "s3://") || is_http(path);
}

RemoteData fetch_remote_dataset(const std::string& url, const RemoteDataOptions& options) {
  if (starts_with(url, "s3://")) return fetch_s3_dataset(url, options);
  GPULAB_CHECK(is_http(url), ErrorKind::kInvalidArgument,
               "remote data must be s3://BUCKET/PREFIX or an http(s) URL list, got '{}'",
               redact_url(url));
  GPULAB_CHECK(core::to_lower(url_path(url)).size() > 4 &&
                   core::to_lower(url_path(url)).compare(url_path(url).size() - 4, 4, ".txt") == 0,
               ErrorKind::kInvalidArgument,
               "over http(s), data is a URL list: a .txt file with one 'URL [LABEL]' per line; "
               "'{}' is not one (for a folder of images use s3://BUCKET/PREFIX)",
               redact_url(url));
  return fetch_url_list(url, options);
}

RemoteData fetch_remote_file(const std::string& url, const RemoteDataOptions& options) {
  RemoteCache cache(RemoteCacheOptions(options.cache_dir()).threads(1));
  RemoteData out;
  out.url = url;
  std::vector<std::string> paths;
  std::string name;
  if (starts_with(url, "s3://")) {
    const S3Location loc = S3Location::parse(url);
    GPULAB_CHECK(!loc.prefix.empty() && loc.prefix.back() != '/', ErrorKind::kInvalidArgument,
                 "'{}' names a folder; expected s3://BUCKET/KEY of one file", url);
    S3Client client(loc.bucket, options.s3());
    std::string etag;
    for (const auto& o : client.list_objects(loc.prefix)) {
      if (o.key == loc.prefix) etag = o.etag;
    }
    GPULAB_CHECK(!etag.empty(), ErrorKind::kNotFound, "no object {} at {}", url, client.endpoint());
    paths = cache.fetch_all(
        {{client.endpoint() + " s3://" + loc.bucket, loc.prefix, etag}},
        [&](const CacheEntry& e, const std::string& path) {
          client.get_object_to_file(e.key, path);
        },
        &out.stats);
    name = basename_of(loc.prefix);
  } else {
    GPULAB_CHECK(is_http(url), ErrorKind::kInvalidArgument,
                 "expected an s3:// or http(s):// URL, got '{}'", redact_url(url));
    HttpClient http(options.http());
    name = basename_of(url_path(url));
    GPULAB_CHECK(!name.empty(), ErrorKind::kInvalidArgument, "'{}' names no file", redact_url(url));
    paths = cache.fetch_all(
        {{"http", url, http_version(http, url)}},
        [&](const CacheEntry& e, const std::string& path) { http_get_to(http, e.key, path); },
        &out.stats);
  }
  out.local_path = cache.make_view(paths, {name}) + "/" + name;
  return out;
}

namespace detail {

std::vector<UrlListItem> parse_url_list(const std::string& text, const std::string& origin) {
  std::vector<UrlListItem> items;
  std::stringstream lines(text);
  std::string line;
  for (int number = 1; std::getline(lines, line); ++number) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const auto b = line.find_first_not_of(" \t");
    if (b == std::string::npos || line[b] == '#') continue;
    const auto e = line.find_first_of(" \t", b);
    UrlListItem item;
    item.url = line.substr(b, e == std::string::npos ? std::string::npos : e - b);
    GPULAB_CHECK(is_http(item.url), ErrorKind::kCorruptData,
                 "{} line {}: expected 'http(s)://… [LABEL]', got '{}'", origin, number,
                 redact_url(item.url));
    if (e != std::string::npos) {
      const auto lb = line.find_first_not_of(" \t", e);
      if (lb != std::string::npos) {
        item.label = line.substr(lb, line.find_last_not_of(" \t") - lb + 1);
      }
    }
    if (item.label.empty()) {
      // The parent path segment: …/cat/1.jpg -> cat.
      const std::string path = url_path(item.url);
      const auto last = path.find_last_of('/');
      const auto prev = last == 0 ? std::string::npos : path.find_last_of('/', last - 1);
      GPULAB_CHECK(last != std::string::npos && last > 0 && prev != std::string::npos,
                   ErrorKind::kCorruptData,
                   "{} line {}: '{}' has no parent folder to use as its label; add one after "
                   "the URL",
                   origin, number, redact_url(item.url));
      item.label = path.substr(prev + 1, last - prev - 1);
    }
    GPULAB_CHECK(
        item.label.find('/') == std::string::npos && item.label != "." && item.label != "..",
        ErrorKind::kCorruptData, "{} line {}: label '{}' may not contain '/'", origin, number,
        item.label);
    items.push_back(std::move(item));
  }
  GPULAB_CHECK(!items.empty(), ErrorKind::kNotFound, "URL list {} names no URL", origin);
  return items;
}

}  // namespace detail
}  // namespace gpulab::data
