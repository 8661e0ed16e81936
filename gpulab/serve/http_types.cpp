// Router matching and small helpers of http_types.h.
#include "gpulab/serve/http_types.h"

#include <nlohmann/json.hpp>

#include "gpulab/core/error.h"

namespace gpulab::serve {
namespace {

std::vector<std::string> split_path(const std::string& path) {
  std::vector<std::string> parts;
  size_t start = 1;  // after the leading '/'
  while (start <= path.size()) {
    const size_t end = path.find('/', start);
    const size_t stop = end == std::string::npos ? path.size() : end;
    parts.push_back(path.substr(start, stop - start));
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return parts;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::string HttpRequest::header(const std::string& name, const std::string& fallback) const {
  const auto it = headers.find(name);
  return it == headers.end() ? fallback : it->second;
}

std::string HttpRequest::query_value(const std::string& name, const std::string& fallback) const {
  const auto it = query.find(name);
  return it == query.end() ? fallback : it->second;
}

HttpResponse HttpResponse::json(int status, const std::string& json_text) {
  HttpResponse r;
  r.status = status;
  r.body = json_text;
  return r;
}

HttpResponse HttpResponse::error(int status, const std::string& message) {
  return json(status, nlohmann::json({{"error", message}}).dump());
}

std::string HttpResponse::header(const std::string& name) const {
  for (const auto& [n, v] : headers) {
    if (n == name) return v;
  }
  return "";
}

const char* status_text(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 204:
      return "No Content";
    case 206:
      return "Partial Content";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 409:
      return "Conflict";
    case 413:
      return "Payload Too Large";
    case 416:
      return "Range Not Satisfiable";
    case 500:
      return "Internal Server Error";
    case 503:
      return "Service Unavailable";
    default:
      return "Unknown";
  }
}

void Router::add(const std::string& method, const std::string& pattern, Handler handler) {
  GPULAB_CHECK(!pattern.empty() && pattern[0] == '/', ErrorKind::kInternal,
               "route pattern '{}' must start with '/'", pattern);
  routes_.push_back({method, pattern, split_path(pattern), std::move(handler)});
}

Router::Match Router::match(HttpRequest& request) const {
  Match result;
  if (request.path.empty() || request.path[0] != '/') return result;
  const auto parts = split_path(request.path);
  for (const auto& route : routes_) {
    std::map<std::string, std::string> params;
    bool ok = true;
    size_t i = 0;
    for (; i < route.segments.size() && ok; ++i) {
      const auto& seg = route.segments[i];
      const bool is_param = seg.size() > 2 && seg.front() == '{' && seg.back() == '}';
      if (is_param && seg[seg.size() - 2] == '*') {
        // The rest of the path, '/' included; at least one character.
        std::string rest;
        for (size_t k = i; k < parts.size(); ++k) rest += (k > i ? "/" : "") + parts[k];
        ok = i < parts.size() && !rest.empty();
        params[seg.substr(1, seg.size() - 3)] = rest;
        i = route.segments.size();
        break;
      }
      if (i >= parts.size()) {
        ok = false;
      } else if (is_param) {
        ok = !parts[i].empty();
        params[seg.substr(1, seg.size() - 2)] = parts[i];
      } else {
        ok = seg == parts[i];
      }
    }
    if (!ok) continue;
    const bool star = !route.segments.empty() && route.segments.back().size() > 2 &&
                      route.segments.back()[route.segments.back().size() - 2] == '*';
    if (!star && parts.size() != route.segments.size()) continue;
    if (route.method != request.method) {
      result.path_known = true;
      continue;
    }
    result.handler = &route.handler;
    result.pattern = route.pattern;
    request.params = std::move(params);
    return result;
  }
  return result;
}

std::string url_decode(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '+') {
      out += ' ';
    } else if (text[i] == '%' && i + 2 < text.size() && hex_value(text[i + 1]) >= 0 &&
               hex_value(text[i + 2]) >= 0) {
      out += static_cast<char>(hex_value(text[i + 1]) * 16 + hex_value(text[i + 2]));
      i += 2;
    } else {
      out += text[i];
    }
  }
  return out;
}

std::map<std::string, std::string> parse_query(const std::string& query) {
  std::map<std::string, std::string> out;
  size_t start = 0;
  while (start < query.size()) {
    size_t end = query.find('&', start);
    if (end == std::string::npos) end = query.size();
    const std::string pair = query.substr(start, end - start);
    const size_t eq = pair.find('=');
    if (!pair.empty()) {
      out[url_decode(pair.substr(0, eq))] =
          eq == std::string::npos ? "" : url_decode(pair.substr(eq + 1));
    }
    start = end + 1;
  }
  return out;
}

}  // namespace gpulab::serve
