// The server's view of HTTP, independent of the library that speaks it: a
// request, a response (in memory, a file range, or a stream), and a router
// that matches "/api/executions/{id}/outputs/{path*}" patterns. Handlers
// written against these run without sockets in tests.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace gpulab::serve {

struct HttpRequest {
  std::string method;                          // "GET", "POST", ...
  std::string path;                            // URL-decoded, not normalised: "/api/health"
  std::map<std::string, std::string> query;    // URL-decoded; the last value of a name wins
  std::map<std::string, std::string> headers;  // names lower-case
  std::string body;
  std::string remote_addr;
  // Filled by Router::match: "{id}" -> params["id"].
  std::map<std::string, std::string> params;

  // Header (name lower-case) or query value, or `fallback`.
  std::string header(const std::string& name, const std::string& fallback = "") const;
  std::string query_value(const std::string& name, const std::string& fallback = "") const;
};

// Where a streamed body goes. write() returns false once the client is gone.
class BodyWriter {
 public:
  virtual ~BodyWriter() = default;
  virtual bool write(const char* data, size_t size) = 0;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers
  // Exactly one body source: `body`, a file range, or `stream`.
  std::string body;
  std::string file_path;  // when not empty: bytes [file_offset, +file_length) of this file
  int64_t file_offset = 0;
  int64_t file_length = 0;
  // When set: sent chunked; called on the worker thread after the headers.
  std::function<void(BodyWriter&)> stream;

  static HttpResponse json(int status, const std::string& json_text);
  // {"error": message} with `status`.
  static HttpResponse error(int status, const std::string& message);
  std::string header(const std::string& name) const;  // an extra header's value or ""
};

// The reason phrase of an HTTP status ("Not Found").
const char* status_text(int status);

using Handler = std::function<HttpResponse(HttpRequest&)>;

// Routes by method and path pattern. Segments are literal, "{name}" (one
// segment, not empty) or a final "{name*}" (the rest of the path, may hold
// '/'). Set up before serving; match() is then safe from many threads.
class Router {
 public:
  // Setup only. `pattern` starts with '/'.
  void add(const std::string& method, const std::string& pattern, Handler handler);

  struct Match {
    const Handler* handler = nullptr;  // null: no route
    std::string pattern;               // the route's pattern (metrics label)
    bool path_known = false;           // a route has this path with another method (405)
  };
  // Fills request.params on a match.
  Match match(HttpRequest& request) const;

 private:
  struct Route {
    std::string method;
    std::string pattern;
    std::vector<std::string> segments;
    Handler handler;
  };
  std::vector<Route> routes_;
};

// Splits "a=1&b=x%20y" into decoded pairs.
std::map<std::string, std::string> parse_query(const std::string& query);
std::string url_decode(const std::string& text);

}  // namespace gpulab::serve
