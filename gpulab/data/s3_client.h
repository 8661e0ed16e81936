// S3 (and S3-compatible stores): s3:// locations, credentials, ListObjectsV2
// with pagination, and SigV4-signed GET/PUT through HttpClient.
#pragma once

#include <string>
#include <vector>

#include "gpulab/core/options.h"
#include "gpulab/data/http_client.h"

namespace gpulab::data {

// "s3://bucket/prefix" -> {bucket, prefix}; the prefix may be empty.
struct S3Location {
  std::string bucket;
  std::string prefix;
  // Throws Error(kInvalidArgument) for anything but s3://BUCKET[/PREFIX].
  static S3Location parse(const std::string& url);
  std::string url() const;  // "s3://bucket/prefix"
};

// AWS credentials. Never printed: to_string-like helpers do not exist on
// purpose, and every message names only the bucket, key and endpoint.
struct S3Credentials {
  std::string access_key_id;
  std::string secret_access_key;
  std::string session_token;  // temporary credentials only; "" otherwise
  bool empty() const { return access_key_id.empty() && secret_access_key.empty(); }
};

struct S3Options {
  // Region for the signature and for AWS endpoints.
  GPULAB_ARG(std::string, region) = "us-east-1";
  // Base URL of an S3-compatible store, e.g. "http://127.0.0.1:9000": objects
  // are then addressed path-style (ENDPOINT/bucket/key). "" = AWS,
  // virtual-hosted style (https://bucket.s3.REGION.amazonaws.com/key).
  GPULAB_ARG(std::string, endpoint) = "";
  // Unset (empty) credentials send unsigned requests (public buckets).
  GPULAB_ARG(S3Credentials, credentials);
  // Keys per ListObjectsV2 page (S3 caps it at 1000); small values force
  // pagination in tests.
  GPULAB_ARG(int, max_keys) = 1000;
  GPULAB_ARG(HttpOptions, http);
  // The CLI fills these from AWS_REGION (else AWS_DEFAULT_REGION),
  // AWS_ENDPOINT_URL and AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY/
  // AWS_SESSION_TOKEN (apps/gpulab/environment.h); the library reads none.
};

struct S3Object {
  std::string key;   // full key, prefix included
  std::string etag;  // without quotes
  int64_t size = 0;  // bytes
};

// Thread-safe after construction: list/get/put may run on many threads.
// Errors name s3://bucket/key and the endpoint, never a credential:
//   403 -> Error(kInvalidArgument) "access denied by s3://bucket (HTTP 403
//          SignatureDoesNotMatch) ...", not retried;
//   404 -> Error(kNotFound); unreachable -> Error(kUnavailable) after the
//   bounded retries of options.http().
class S3Client {
 public:
  S3Client(std::string bucket, S3Options options);

  // Every object whose key starts with `prefix`, in key order, following
  // continuation tokens across pages of max_keys.
  std::vector<S3Object> list_objects(const std::string& prefix) const;
  // The object's bytes.
  std::string get_object(const std::string& key) const;
  // Streams the object into `path` (atomically); returns its ETag.
  std::string get_object_to_file(const std::string& key, const std::string& path) const;
  // Uploads `bytes` as `key`; returns the new ETag.
  std::string put_object(const std::string& key, const std::string& bytes,
                         const std::string& content_type = "application/octet-stream") const;

  const std::string& bucket() const { return bucket_; }
  // Base URL requests go to (no credentials in it), e.g. for messages.
  std::string endpoint() const;
  const HttpClient& http() const { return http_; }

 private:
  std::string object_url(const std::string& key) const;
  std::string bucket_url() const;
  HttpRequest signed_request(std::string method, std::string url) const;
  [[noreturn]] void fail(const HttpResponse& r, const std::string& what) const;

  std::string bucket_;
  S3Options options_;
  HttpClient http_;
};

namespace detail {

struct ListPage {
  std::vector<S3Object> objects;
  bool truncated = false;
  std::string next_token;
};
// Parses a ListObjectsV2 response body. Throws Error(kCorruptData).
ListPage parse_list_objects_v2(const std::string& xml);
// Decodes &amp; &lt; &gt; &quot; &apos; and numeric character references.
std::string xml_unescape(const std::string& text);

}  // namespace detail
}  // namespace gpulab::data
