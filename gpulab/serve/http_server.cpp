// CivetWeb glue: request conversion, response writing, start and stop.
#include "gpulab/serve/http_server.h"

#include <civetweb.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <mutex>
#include <thread>
#include <vector>

#include "gpulab/core/error.h"

namespace gpulab::serve {
namespace {

std::once_flag g_http_library_once;

int http_request_callback(mg_connection* conn, void* data) {
  return static_cast<HttpServer*>(data)->handle(conn);
}

// Writes to the connection as HTTP chunks.
class ChunkWriter : public BodyWriter {
 public:
  ChunkWriter(mg_connection* conn, const HttpServer& server) : conn_(conn), server_(server) {}
  bool write(const char* data, size_t size) override {
    if (!ok_ || server_.stopping()) return false;
    if (size == 0) return true;
    ok_ = mg_send_chunk(conn_, data, static_cast<unsigned>(size)) > 0;
    return ok_;
  }

 private:
  mg_connection* conn_;
  const HttpServer& server_;
  bool ok_ = true;
};

bool http_write_all(mg_connection* conn, const char* data, size_t size) {
  while (size > 0) {
    const int n = mg_write(conn, data, size);
    if (n <= 0) return false;
    data += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

void http_send_head(mg_connection* conn, const HttpResponse& r, const std::string& length_header) {
  std::string head = "HTTP/1.1 " + std::to_string(r.status) + " " + status_text(r.status) + "\r\n";
  head += "Content-Type: " + r.content_type + "\r\n";
  head += "Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n";
  for (const auto& [name, value] : r.headers) head += name + ": " + value + "\r\n";
  head += length_header + "\r\n\r\n";
  http_write_all(conn, head.data(), head.size());
}

}  // namespace

HttpServer::HttpServer(HttpServerOptions options, RequestHandler handler)
    : options_(std::move(options)), handler_(std::move(handler)) {}

HttpServer::~HttpServer() {
  stop();
}

void HttpServer::start() {
  GPULAB_CHECK(ctx_ == nullptr, ErrorKind::kInternal, "HttpServer::start called twice");
  std::call_once(g_http_library_once, [] { mg_init_library(0); });
  const std::string host = options_.host().find(':') != std::string::npos
                               ? "[" + options_.host() + "]"
                               : options_.host();
  const std::string ports = host + ":" + std::to_string(options_.port());
  const std::string threads = std::to_string(options_.threads());
  const std::string timeout = std::to_string(options_.request_timeout_ms());
  const char* config[] = {"listening_ports", ports.c_str(), "num_threads", threads.c_str(),
                          // Without it small writes wait for delayed ACKs (the
                          // serving-stack notes measured 23 vs ~1,100 frames/s).
                          "tcp_nodelay", "1", "enable_keep_alive", "yes", "request_timeout_ms",
                          timeout.c_str(), "enable_directory_listing", "no", nullptr};
  mg_callbacks callbacks{};
  stopping_ = false;
  ctx_ = mg_start(&callbacks, this, config);
  GPULAB_CHECK(ctx_ != nullptr, ErrorKind::kUnavailable,
               "cannot listen on {}: is the port in use or the host not an address of this "
               "machine? (try another --port)",
               ports);
  mg_set_request_handler(ctx_, "/", http_request_callback, this);
  mg_server_port server_ports[4];
  const int n = mg_get_server_ports(ctx_, 4, server_ports);
  port_ = n > 0 ? server_ports[0].port : options_.port();
}

void HttpServer::stop() {
  if (ctx_ == nullptr) return;
  stopping_ = true;
  mg_stop(ctx_);
  ctx_ = nullptr;
}

int HttpServer::handle(mg_connection* conn) {
  // Debian's CivetWeb gives its workers small stacks (a compile-time
  // USE_STACK_SIZE): SQLite's query planner overflowed one in copy_log. Each
  // request runs on a thread with the default (8 MiB) stack; the worker waits.
  const int limit =
      options_.max_in_flight() > 0 ? options_.max_in_flight() : std::max(1, options_.threads() - 2);
  const int in_flight = in_flight_.fetch_add(1) + 1;
  int status = 503;
  if (in_flight > limit) {
    // Overload is answered at once, as Triton answers a full queue.
    HttpResponse busy = HttpResponse::error(
        503, fmt::format("server busy: {} requests in progress, the most it handles at once; "
                         "retry later",
                         limit));
    busy.headers.emplace_back("Retry-After", "1");
    http_send_head(conn, busy, "Content-Length: " + std::to_string(busy.body.size()));
    http_write_all(conn, busy.body.data(), busy.body.size());
  } else {
    std::thread([&] { status = handle_on_this_thread(conn); }).join();
  }
  in_flight_.fetch_sub(1);
  return status;
}

int HttpServer::handle_on_this_thread(mg_connection* conn) {
  const mg_request_info* info = mg_get_request_info(conn);
  HttpRequest request;
  request.method = info->request_method ? info->request_method : "";
  // Decoded but not cleaned: the handlers see "..", and refuse it themselves.
  request.path = info->local_uri_raw ? info->local_uri_raw : "";
  if (info->query_string) request.query = parse_query(info->query_string);
  request.remote_addr = info->remote_addr;
  for (int i = 0; i < info->num_headers; ++i) {
    std::string name = info->http_headers[i].name;
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    request.headers[name] = info->http_headers[i].value;
  }

  HttpResponse response;
  if (info->content_length > options_.max_body_bytes()) {
    response = HttpResponse::error(
        413, fmt::format("request body of {} bytes exceeds the limit of {} bytes",
                         info->content_length, options_.max_body_bytes()));
  } else {
    char buf[8192];
    while (static_cast<int64_t>(request.body.size()) <= options_.max_body_bytes()) {
      const int n = mg_read(conn, buf, sizeof buf);
      if (n <= 0) break;
      request.body.append(buf, static_cast<size_t>(n));
    }
    if (static_cast<int64_t>(request.body.size()) > options_.max_body_bytes()) {
      response = HttpResponse::error(413, "request body too large");
    } else {
      try {
        response = handler_(request);
      } catch (const std::exception& e) {
        // The handler should have answered; never let an exception into C.
        response = HttpResponse::error(500, e.what());
      }
    }
  }

  if (response.stream) {
    http_send_head(conn, response, "Transfer-Encoding: chunked");
    ChunkWriter writer(conn, *this);
    try {
      response.stream(writer);
    } catch (const std::exception& e) {
      const std::string line = std::string("\ngpulab: error: ") + e.what() + "\n";
      writer.write(line.data(), line.size());
    }
    http_write_all(conn, "0\r\n\r\n", 5);
  } else if (!response.file_path.empty()) {
    http_send_head(conn, response, "Content-Length: " + std::to_string(response.file_length));
    if (request.method != "HEAD") {
      const int fd = ::open(response.file_path.c_str(), O_RDONLY | O_CLOEXEC);
      int64_t left = fd >= 0 ? response.file_length : 0;
      int64_t offset = response.file_offset;
      std::vector<char> buf(1 << 16);
      while (left > 0) {
        const ssize_t n = ::pread(fd, buf.data(),
                                  static_cast<size_t>(std::min<int64_t>(left, buf.size())), offset);
        if (n <= 0 || !http_write_all(conn, buf.data(), static_cast<size_t>(n))) break;
        left -= n;
        offset += n;
      }
      if (fd >= 0) ::close(fd);
    }
  } else {
    http_send_head(conn, response, "Content-Length: " + std::to_string(response.body.size()));
    if (request.method != "HEAD") http_write_all(conn, response.body.data(), response.body.size());
  }
  return response.status;
}

}  // namespace gpulab::serve
