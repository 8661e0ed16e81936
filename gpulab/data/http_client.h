// A small facade over libcurl for remote data: GET/PUT to memory or to a file
// (atomically), optional AWS SigV4 signing, timeouts, and bounded retries with
// exponential back-off and jitter for transient failures only.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "gpulab/core/options.h"

namespace gpulab::data {

struct HttpOptions {
  // Tries per request, the first included. Only connection errors, timeouts,
  // HTTP 429 and 5xx are retried; any other status is returned at once.
  GPULAB_ARG(int, max_attempts) = 4;
  // Wait before the second try, in seconds; doubled per try up to
  // max_backoff_s, each wait drawn uniformly from [0.5, 1.5] x that value.
  GPULAB_ARG(double, initial_backoff_s) = 0.25;
  GPULAB_ARG(double, max_backoff_s) = 8.0;
  // Seconds to establish a connection, and for a whole transfer.
  GPULAB_ARG(double, connect_timeout_s) = 10.0;
  GPULAB_ARG(double, timeout_s) = 600.0;
  // A try is abandoned (and retried) when fewer than low_speed_limit_bps
  // bytes/s arrive for low_speed_time_s seconds: a server that accepts the
  // connection and then says nothing fails in seconds, not after timeout_s.
  // low_speed_time_s 0 turns the check off.
  GPULAB_ARG(int64_t, low_speed_limit_bps) = 1;
  GPULAB_ARG(int, low_speed_time_s) = 30;
};

struct HttpRequest {
  std::string method = "GET";        // GET, HEAD or PUT
  std::string url;                   // may carry no credentials (they are not redacted by curl)
  std::vector<std::string> headers;  // "Name: value"
  std::string body;                  // PUT body
  // SigV4 signing: curl's provider string, e.g. "aws:amz:us-east-1:s3", and
  // "ACCESS_KEY:SECRET". Never logged or put into an error message.
  std::string aws_sigv4;
  std::string aws_userpwd;
};

struct HttpResponse {
  long status = 0;
  std::string body;                            // empty when written to a file
  std::map<std::string, std::string> headers;  // names lower-case; the last value wins
  int attempts = 0;                            // tries it took
  // Header value or "" (name lower-case).
  std::string header(const std::string& name) const;
};

// Thread-safe: perform() may be called from many threads at once; each thread
// reuses its own curl handle (and so its keep-alive connections).
class HttpClient {
 public:
  explicit HttpClient(HttpOptions options = {});

  // Sends `request` and returns the final response, whatever its status.
  // With `to_file`, a 2xx body is streamed to a temporary sibling, fsynced and
  // renamed over `to_file`; other bodies are kept in memory (error details).
  // Throws Error(kUnavailable) naming the URL (credentials redacted) when the
  // server could not be reached or kept failing after max_attempts tries.
  HttpResponse perform(const HttpRequest& request, const std::string& to_file = "") const;

  const HttpOptions& options() const { return options_; }
  // Requests sent (every try counts), since construction.
  int64_t requests_sent() const { return requests_sent_->load(); }

 private:
  HttpOptions options_;
  std::shared_ptr<std::atomic<int64_t>> requests_sent_;
};

// `url` with user:password@ removed and the values of query parameters that
// carry secrets (signatures, credentials, tokens) replaced by "REDACTED".
std::string redact_url(const std::string& url);

// RFC 3986 percent-encoding (unreserved characters kept); '/' is kept when
// `keep_slash`, as S3 wants for object keys in paths.
std::string uri_encode(const std::string& text, bool keep_slash);

}  // namespace gpulab::data
