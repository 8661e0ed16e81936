// `gpulab serve`: the lab home reconciled, the token settled, the REST API
// and the web page on an HttpServer. The store is the truth: killing the
// server loses nothing, and a new one reconciles executions at start.
#pragma once

#include <memory>
#include <string>

#include "gpulab/core/options.h"
#include "gpulab/serve/http_server.h"
#include "gpulab/serve/rest_api.h"

namespace gpulab::serve {

struct ServeOptions {
  ServeOptions(std::string home, std::string gpulab_binary)
      : home_(std::move(home)), gpulab_binary_(std::move(gpulab_binary)) {}
  GPULAB_ARG(std::string, home);           // the lab home (GPULAB_HOME)
  GPULAB_ARG(std::string, gpulab_binary);  // supervises submitted executions
  GPULAB_ARG(std::string, host) = "127.0.0.1";
  GPULAB_ARG(int, port) = 8080;  // 0 = any free port
  // A file whose first line is the bearer token; then reads need it too.
  // "" = a random token is generated for the write routes and written to
  // HOME/serve-token (mode 0600); reads are open.
  GPULAB_ARG(std::string, token_file) = "";
  // The web page's folder; "" = find_web_root(gpulab_binary).
  GPULAB_ARG(std::string, web_root) = "";
  GPULAB_ARG(int, threads) = 64;  // HTTP workers (each followed log holds one)
  GPULAB_ARG(double, stop_grace_s) = 10.0;
#ifdef GPULAB_WITH_CURL
  GPULAB_ARG(data::S3Options, s3);  // for s3:// inputs of submitted specs
#endif
};

// The web page's folder for a gpulab at `binary`: BINDIR/../share/gpulab/web
// when it holds index.html (an installed tree), else the source tree's web/
// (a build tree), else "".
std::string find_web_root(const std::string& binary);

// A token of 32 random bytes as 64 hex digits (from /dev/urandom).
std::string random_token();

// Not copyable; start() then stop() from one thread.
class LabServer {
 public:
  explicit LabServer(ServeOptions options);
  ~LabServer();
  LabServer(const LabServer&) = delete;
  LabServer& operator=(const LabServer&) = delete;

  // Reconciles the store's executions with the processes and jobs that still
  // exist, reads or writes the token, and listens. Throws Error(kNotFound /
  // kInvalidArgument) for a missing or empty token file, Error(kUnavailable)
  // when it cannot listen.
  void start();
  void stop();

  int port() const;
  std::string url() const;  // "http://HOST:PORT/"
  // Where the token is: the --token-file, or HOME/serve-token.
  const std::string& token_path() const { return token_path_; }
  const std::string& web_root() const { return web_root_; }
  RestApi& api() { return *api_; }

 private:
  ServeOptions options_;
  std::string token_path_;
  std::string web_root_;
  std::unique_ptr<RestApi> api_;
  std::unique_ptr<HttpServer> http_;
};

}  // namespace gpulab::serve
