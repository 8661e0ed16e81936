// The REST API over lab executions (docs/rest-api.md), the Prometheus
// metrics and the web page's static files, as one handler of HttpRequest ->
// HttpResponse: tests call handle() without sockets; HttpServer serves it.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "gpulab/core/options.h"
#include "gpulab/lab/execution_store.h"
#include "gpulab/lab/input_fetch.h"
#include "gpulab/serve/http_types.h"

namespace gpulab::serve {

struct RestApiOptions {
  RestApiOptions(std::string home, std::string gpulab_binary, std::string token)
      : home_(std::move(home)),
        gpulab_binary_(std::move(gpulab_binary)),
        token_(std::move(token)) {}
  // The lab home (GPULAB_HOME): executions.db and executions/.
  GPULAB_ARG(std::string, home);
  // The gpulab program that supervises submitted executions (the server's own).
  GPULAB_ARG(std::string, gpulab_binary);
  // The bearer token every write route needs (not empty).
  GPULAB_ARG(std::string, token);
  // Whether read routes (GET /api/executions..., /metrics) need it too.
  // /api/health and the page's static files never do.
  GPULAB_ARG(bool, token_for_reads) = false;
  // Folder of index.html, app.js, style.css; "" = no web page.
  GPULAB_ARG(std::string, web_root) = "";
  // Runner of POSTed specs unless the request says ?runner=: local or slurm.
  GPULAB_ARG(std::string, runner) = "local";
  // Seconds between SIGTERM and SIGKILL for POST .../stop unless ?grace=.
  GPULAB_ARG(double, stop_grace_s) = 10.0;
#ifdef GPULAB_WITH_CURL
  // Region, endpoint and credentials for s3:// inputs of submitted specs.
  GPULAB_ARG(data::S3Options, s3);
#endif
};

// Maps a gpulab::Error kind to an HTTP status: invalid argument 400, not
// found 404, unavailable 503, anything else 500.
int status_of_error_kind(int error_kind);

// A single "Range: bytes=..." header against a file of `size` bytes.
struct ByteRange {
  enum Kind { kWhole, kPartial, kUnsatisfiable } kind = kWhole;
  int64_t offset = 0;
  int64_t length = 0;
};
// No header, a malformed one or several ranges: kWhole (RFC 9110 lets a
// server ignore Range). "bytes=A-B", "bytes=A-", "bytes=-N".
ByteRange parse_byte_range(const std::string& header, int64_t size);

// Thread-safe: handle() runs on many HTTP workers at once. Each request
// borrows an ExecutionStore (one SQLite connection) from a pool.
class RestApi {
 public:
  explicit RestApi(RestApiOptions options);
  ~RestApi();
  RestApi(const RestApi&) = delete;
  RestApi& operator=(const RestApi&) = delete;

  // Routes, authenticates, runs the handler; an Error becomes
  // {"error": message} with its status. Counts every request for /metrics.
  HttpResponse handle(HttpRequest& request);

  // Ends every open log follow at its next poll (server shutdown).
  void cancel_streams();

  // The Prometheus text of GET /metrics.
  std::string metrics_text();

  const RestApiOptions& options() const { return options_; }

 private:
  class StoreLease;
  std::unique_ptr<lab::ExecutionStore> acquire_store();
  void release_store(std::unique_ptr<lab::ExecutionStore> store);
  bool authorized(const HttpRequest& request) const;
  void count(const std::string& method, const std::string& route, int status);

  HttpResponse list_executions(HttpRequest& request);
  HttpResponse get_execution(HttpRequest& request);
  HttpResponse get_log(HttpRequest& request);
  HttpResponse list_outputs(HttpRequest& request);
  HttpResponse get_output(HttpRequest& request);
  HttpResponse submit(HttpRequest& request);
  HttpResponse stop(HttpRequest& request);
  HttpResponse static_file(const std::string& name, const HttpRequest& request);

  const RestApiOptions options_;
  Router router_;  // set up in the constructor, read-only after

  std::mutex stores_mutex_;  // guards stores_
  std::vector<std::unique_ptr<lab::ExecutionStore>> stores_;

  std::mutex streams_mutex_;  // guards streams_ and streams_cancelled_
  std::set<std::shared_ptr<std::atomic<bool>>> streams_;
  bool streams_cancelled_ = false;

  std::mutex metrics_mutex_;  // guards requests_ and errors_
  std::map<std::tuple<std::string, std::string, int>, int64_t> requests_;  // method, route, status
  std::map<std::tuple<std::string, int>, int64_t> errors_;                 // route, status >= 400
};

}  // namespace gpulab::serve
