// The HTTP transport: CivetWeb behind a small facade. It turns each request
// into an HttpRequest, calls one handler on a worker thread and writes the
// HttpResponse (memory, file range or chunked stream). No TLS: CivetWeb's TLS
// crashes with Debian 12's OpenSSL 3, so bind to loopback and put an SSH
// tunnel or a reverse proxy in front for remote users (docs/rest-api.md).
// The live camera page adds WebSocket routes here.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>

#include "gpulab/core/options.h"
#include "gpulab/serve/http_types.h"

struct mg_context;
struct mg_connection;

namespace gpulab::serve {

struct HttpServerOptions {
  GPULAB_ARG(std::string, host) = "127.0.0.1";  // address to bind ("0.0.0.0" = every interface)
  GPULAB_ARG(int, port) = 8080;                 // 0 = any free port (see HttpServer::port)
  // Worker threads. Each open connection (a followed log, later each
  // WebSocket) holds one, so keep this well above the clients expected.
  GPULAB_ARG(int, threads) = 64;
  // Request bodies larger than this are refused with 413 (bytes).
  GPULAB_ARG(int64_t, max_body_bytes) = 1 << 20;
  // Idle keep-alive connections and slow requests are closed after this (ms).
  GPULAB_ARG(int, request_timeout_ms) = 30000;
  // Requests handled at once; one more is answered 503 at once (JSON error,
  // Retry-After: 1), never queued (0 = threads - 2, so that two workers are
  // always free to say so).
  GPULAB_ARG(int, max_in_flight) = 0;
};

using RequestHandler = std::function<HttpResponse(HttpRequest&)>;

// Not copyable. start() and stop() from one thread; the handler runs on
// many worker threads at once and must be thread-safe.
class HttpServer {
 public:
  HttpServer(HttpServerOptions options, RequestHandler handler);
  ~HttpServer();  // stops
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds and starts the workers. Throws Error(kUnavailable) naming the
  // address when it cannot listen (port in use, bad host).
  void start();
  // Closes the listener, tells open streams to end, joins the workers.
  void stop();
  // The bound port (the chosen one when options.port is 0); 0 before start.
  int port() const { return port_; }
  // True once stop() began: long streams poll it to end early.
  bool stopping() const { return stopping_.load(); }

  // CivetWeb's request callback (internal).
  int handle(mg_connection* conn);

 private:
  int handle_on_this_thread(mg_connection* conn);

  HttpServerOptions options_;
  RequestHandler handler_;
  mg_context* ctx_ = nullptr;  // set by start(), cleared by stop(): the owning thread only
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<int> in_flight_{0};  // requests being handled (admission)
};

}  // namespace gpulab::serve
