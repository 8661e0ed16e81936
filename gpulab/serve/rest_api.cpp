// REST handlers: executions, logs, outputs (path-checked, ranges), submit,
// stop, metrics and the web page's files.
#include "gpulab/serve/rest_api.h"

#include <stdio.h>

#include <cctype>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "gpulab/core/error.h"
#include "gpulab/core/text.h"
#include "gpulab/lab/lab_service.h"
#include "gpulab/lab/lab_spec.h"

namespace gpulab::serve {
namespace {
namespace fs = std::filesystem;

const char* const kRestStates[] = {"pending",  "fetching", "running",
                                   "finished", "failed",   "stopped"};

std::string rest_content_type(const std::string& path) {
  static const std::map<std::string, std::string> types = {
      {".html", "text/html; charset=utf-8"},
      {".js", "text/javascript; charset=utf-8"},
      {".css", "text/css; charset=utf-8"},
      {".json", "application/json"},
      {".jsonl", "text/plain; charset=utf-8"},
      {".txt", "text/plain; charset=utf-8"},
      {".log", "text/plain; charset=utf-8"},
      {".csv", "text/csv; charset=utf-8"},
      {".yaml", "text/plain; charset=utf-8"},
      {".png", "image/png"},
      {".jpg", "image/jpeg"},
      {".jpeg", "image/jpeg"},
      {".svg", "image/svg+xml"}};
  std::string ext = fs::path(path).extension().string();
  for (auto& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  const auto it = types.find(ext);
  return it == types.end() ? "application/octet-stream" : it->second;
}

bool rest_constant_time_equal(const std::string& a, const std::string& b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < a.size(); ++i) diff |= a[i] ^ b[i % (b.empty() ? 1 : b.size())];
  return diff == 0 && !b.empty();
}

int rest_int(const HttpRequest& r, const std::string& name, int fallback, int lo, int hi) {
  const std::string text = r.query_value(name);
  if (text.empty()) return fallback;
  const std::optional<int> parsed = core::parse_int(text);
  const int value = parsed.value_or(lo - 1);
  GPULAB_CHECK(parsed && value >= lo && value <= hi, ErrorKind::kInvalidArgument,
               "`{}`: expected an integer in {}..{}, found '{}'", name, lo, hi, text);
  return value;
}

bool rest_valid_id(const std::string& id) {
  if (id.empty() || id.size() > 64) return false;
  for (const char c : id) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') return false;
  }
  return true;
}

// The regular file `rel` under `root`, or "" when it is not one or would
// leave root ("..", absolute, through a symlink pointing out).
std::string rest_resolve_inside(const fs::path& root, const std::string& rel) {
  if (rel.empty() || rel[0] == '/' || rel.find('\0') != std::string::npos) return "";
  for (const auto& part : fs::path(rel)) {
    if (part == "..") return "";
  }
  std::error_code ec;
  const fs::path base = fs::canonical(root, ec);
  if (ec) return "";
  const fs::path target = fs::canonical(base / rel, ec);
  if (ec) return "";
  const std::string b = base.string() + "/";
  if (target.string().compare(0, b.size(), b) != 0) return "";
  if (!fs::is_regular_file(target, ec)) return "";
  return target.string();
}

// A file body, honouring Range.
HttpResponse rest_file_response(const HttpRequest& request, const std::string& path) {
  std::error_code ec;
  const auto size = static_cast<int64_t>(fs::file_size(path, ec));
  if (ec) return HttpResponse::error(404, "no such file");
  HttpResponse r;
  r.content_type = rest_content_type(path);
  r.file_path = path;
  r.headers.push_back({"Accept-Ranges", "bytes"});
  const auto range = parse_byte_range(request.header("range"), size);
  if (range.kind == ByteRange::kUnsatisfiable) {
    r = HttpResponse::error(416, fmt::format("range '{}' is outside the file's {} bytes",
                                             request.header("range"), size));
    r.headers.push_back({"Content-Range", fmt::format("bytes */{}", size)});
    return r;
  }
  if (range.kind == ByteRange::kPartial) {
    r.status = 206;
    r.file_offset = range.offset;
    r.file_length = range.length;
    r.headers.push_back({"Content-Range", fmt::format("bytes {}-{}/{}", range.offset,
                                                      range.offset + range.length - 1, size)});
  } else {
    r.file_length = size;
  }
  return r;
}

// A FILE* whose writes go to a BodyWriter (copy_log writes to a FILE*).
struct RestCookie {
  BodyWriter* writer;
  std::atomic<bool>* gone;
};

ssize_t rest_cookie_write(void* cookie, const char* data, size_t size) {
  auto* c = static_cast<RestCookie*>(cookie);
  if (!c->writer->write(data, size)) {
    c->gone->store(true);
    return 0;  // an error for stdio
  }
  return static_cast<ssize_t>(size);
}

void rest_metric_labels(std::ostringstream& out, const std::string& name,
                        const std::vector<std::pair<std::string, std::string>>& labels,
                        int64_t value) {
  out << name << '{';
  for (size_t i = 0; i < labels.size(); ++i) {
    out << (i ? "," : "") << labels[i].first << "=\"";
    for (const char c : labels[i].second) {
      if (c == '"' || c == '\\') out << '\\';
      out << (c == '\n' ? ' ' : c);
    }
    out << '"';
  }
  out << "} " << value << '\n';
}

}  // namespace

int status_of_error_kind(int error_kind) {
  switch (static_cast<ErrorKind>(error_kind)) {
    case ErrorKind::kInvalidArgument:
      return 400;
    case ErrorKind::kNotFound:
      return 404;
    case ErrorKind::kUnavailable:
      return 503;
    default:
      return 500;
  }
}

ByteRange parse_byte_range(const std::string& header, int64_t size) {
  ByteRange whole;
  whole.length = size;
  const std::string prefix = "bytes=";
  if (header.compare(0, prefix.size(), prefix) != 0) return whole;
  const std::string spec = header.substr(prefix.size());
  if (spec.find(',') != std::string::npos) return whole;
  const size_t dash = spec.find('-');
  if (dash == std::string::npos) return whole;
  const std::string a = spec.substr(0, dash), b = spec.substr(dash + 1);
  auto digits = [](const std::string& s) {
    return !s.empty() && s.size() < 19 && s.find_first_not_of("0123456789") == std::string::npos;
  };
  ByteRange r;
  r.kind = ByteRange::kPartial;
  if (a.empty()) {
    if (!digits(b)) return whole;
    const int64_t n = std::stoll(b);
    if (n == 0 || size == 0) return {ByteRange::kUnsatisfiable, 0, 0};
    r.length = std::min(n, size);
    r.offset = size - r.length;
    return r;
  }
  if (!digits(a) || (!b.empty() && !digits(b))) return whole;
  const int64_t first = std::stoll(a);
  if (first >= size) return {ByteRange::kUnsatisfiable, 0, 0};
  int64_t last = b.empty() ? size - 1 : std::stoll(b);
  if (last < first) return whole;
  last = std::min(last, size - 1);
  r.offset = first;
  r.length = last - first + 1;
  return r;
}

// A store borrowed from the pool for one request.
class RestApi::StoreLease {
 public:
  explicit StoreLease(RestApi& api) : api_(api), store_(api.acquire_store()) {}
  ~StoreLease() { api_.release_store(std::move(store_)); }
  lab::ExecutionStore& operator*() { return *store_; }
  lab::ExecutionStore* operator->() { return store_.get(); }

 private:
  RestApi& api_;
  std::unique_ptr<lab::ExecutionStore> store_;
};

RestApi::RestApi(RestApiOptions options) : options_(std::move(options)) {
  GPULAB_CHECK(!options_.token().empty(), ErrorKind::kInvalidArgument,
               "the REST API needs a token for its write routes");
  release_store(acquire_store());  // fails early on a bad home
  auto bind = [this](HttpResponse (RestApi::*fn)(HttpRequest&)) {
    return [this, fn](HttpRequest& r) { return (this->*fn)(r); };
  };
  router_.add("GET", "/api/health", [](HttpRequest&) {
    return HttpResponse::json(200, R"({"status":"ok","version":")" GPULAB_VERSION "\"}");
  });
  router_.add("GET", "/api/executions", bind(&RestApi::list_executions));
  router_.add("POST", "/api/executions", bind(&RestApi::submit));
  router_.add("GET", "/api/executions/{id}", bind(&RestApi::get_execution));
  router_.add("GET", "/api/executions/{id}/log", bind(&RestApi::get_log));
  router_.add("GET", "/api/executions/{id}/outputs", bind(&RestApi::list_outputs));
  router_.add("GET", "/api/executions/{id}/outputs/{path*}", bind(&RestApi::get_output));
  router_.add("POST", "/api/executions/{id}/stop", bind(&RestApi::stop));
  router_.add("GET", "/metrics", [this](HttpRequest&) {
    HttpResponse r;
    r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    r.body = metrics_text();
    return r;
  });
  router_.add("GET", "/", [this](HttpRequest& r) { return static_file("index.html", r); });
  router_.add("GET", "/static/{file}",
              [this](HttpRequest& r) { return static_file(r.params["file"], r); });
}

RestApi::~RestApi() = default;

std::unique_ptr<lab::ExecutionStore> RestApi::acquire_store() {
  {
    std::lock_guard<std::mutex> lock(stores_mutex_);
    if (!stores_.empty()) {
      auto store = std::move(stores_.back());
      stores_.pop_back();
      return store;
    }
  }
  return std::make_unique<lab::ExecutionStore>(options_.home());
}

void RestApi::release_store(std::unique_ptr<lab::ExecutionStore> store) {
  if (!store) return;
  std::lock_guard<std::mutex> lock(stores_mutex_);
  stores_.push_back(std::move(store));
}

bool RestApi::authorized(const HttpRequest& request) const {
  std::string given;
  const std::string auth = request.header("authorization");
  const std::string bearer = "Bearer ";
  if (auth.compare(0, bearer.size(), bearer) == 0) given = auth.substr(bearer.size());
  // Links the browser follows (downloads) cannot carry a header.
  if (given.empty() && request.method == "GET") given = request.query_value("access_token");
  return rest_constant_time_equal(given, options_.token());
}

void RestApi::count(const std::string& method, const std::string& route, int status) {
  std::lock_guard<std::mutex> lock(metrics_mutex_);
  ++requests_[{method, route, status}];
  if (status >= 400) ++errors_[{route, status}];
}

HttpResponse RestApi::handle(HttpRequest& request) {
  HttpResponse response;
  std::string route = "unmatched";
  try {
    const auto match = router_.match(request);
    if (!match.handler) {
      response = match.path_known
                     ? HttpResponse::error(405, fmt::format("{} is not allowed on {}",
                                                            request.method, request.path))
                     : HttpResponse::error(404, fmt::format("no route {}", request.path));
    } else {
      route = match.pattern;
      const bool open = route == "/api/health" || route == "/" || route == "/static/{file}";
      const bool needs_token = request.method != "GET" || (options_.token_for_reads() && !open);
      if (needs_token && !authorized(request)) {
        response = HttpResponse::error(
            401, "missing or wrong bearer token: send 'Authorization: Bearer TOKEN'");
        response.headers.push_back({"WWW-Authenticate", "Bearer realm=\"gpulab\""});
      } else {
        response = (*match.handler)(request);
      }
    }
  } catch (const Error& e) {
    response = HttpResponse::error(status_of_error_kind(static_cast<int>(e.kind())), e.what());
  } catch (const std::exception& e) {
    response = HttpResponse::error(500, e.what());
  }
  count(request.method, route, response.status);
  return response;
}

HttpResponse RestApi::list_executions(HttpRequest& request) {
  const std::string state = request.query_value("state");
  if (!state.empty()) lab::parse_state(state);  // 400 listing the valid names
  const auto filter = lab::ExecutionFilter()
                          .state(state)
                          .name(request.query_value("name"))
                          .limit(rest_int(request, "limit", 100, 1, 1000))
                          .offset(rest_int(request, "offset", 0, 0, 1 << 30));
  StoreLease store(*this);
  nlohmann::json j = {{"executions", nlohmann::json::array()},
                      {"total", store->count(filter)},
                      {"limit", filter.limit()},
                      {"offset", filter.offset()}};
  for (const auto& e : store->list(filter)) j["executions"].push_back(e.to_json());
  return HttpResponse::json(200, j.dump());
}

HttpResponse RestApi::get_execution(HttpRequest& request) {
  const std::string id = request.params["id"];
  StoreLease store(*this);
  const auto e = rest_valid_id(id) ? store->find(id) : std::nullopt;
  if (!e) return HttpResponse::error(404, fmt::format("no execution '{}'", id));
  nlohmann::json j = e->to_json();
  try {
    j["spec"] = lab::lab_spec_to_json(lab::stored_spec(*store, id));
  } catch (const Error&) {
    j["spec"] = nullptr;  // removed meanwhile, or written by a newer gpulab
  }
  return HttpResponse::json(200, j.dump());
}

HttpResponse RestApi::get_log(HttpRequest& request) {
  const std::string id = request.params["id"];
  const bool follow =
      request.query_value("follow") == "1" || request.query_value("follow") == "true";
  {
    StoreLease store(*this);
    if (!rest_valid_id(id) || !store->find(id)) {
      return HttpResponse::error(404, fmt::format("no execution '{}'", id));
    }
  }
  HttpResponse r;
  r.content_type = "text/plain; charset=utf-8";
  auto cancel = std::make_shared<std::atomic<bool>>(false);
  {
    std::lock_guard<std::mutex> lock(streams_mutex_);
    if (streams_cancelled_) return HttpResponse::error(503, "the server is stopping");
    streams_.insert(cancel);
  }
  r.stream = [this, id, follow, cancel](BodyWriter& writer) {
    RestCookie cookie{&writer, cancel.get()};
    cookie_io_functions_t io{};
    io.write = rest_cookie_write;
    FILE* out = fopencookie(&cookie, "w", io);
    if (out) {
      setvbuf(out, nullptr, _IONBF, 0);
      try {
        StoreLease store(*this);
        lab::copy_log(*store, id, out, follow, cancel.get());
      } catch (...) {
        std::fclose(out);
        std::lock_guard<std::mutex> lock(streams_mutex_);
        streams_.erase(cancel);
        throw;
      }
      std::fclose(out);
    }
    std::lock_guard<std::mutex> lock(streams_mutex_);
    streams_.erase(cancel);
  };
  return r;
}

void RestApi::cancel_streams() {
  std::lock_guard<std::mutex> lock(streams_mutex_);
  streams_cancelled_ = true;
  for (const auto& c : streams_) c->store(true);
}

HttpResponse RestApi::list_outputs(HttpRequest& request) {
  const std::string id = request.params["id"];
  StoreLease store(*this);
  if (!rest_valid_id(id) || !store->find(id)) {
    return HttpResponse::error(404, fmt::format("no execution '{}'", id));
  }
  nlohmann::json files = nlohmann::json::array();
  for (const auto& o : lab::list_outputs(*store, id)) {
    files.push_back({{"path", o.path}, {"bytes", o.bytes}});
  }
  return HttpResponse::json(200, nlohmann::json({{"id", id}, {"outputs", files}}).dump());
}

HttpResponse RestApi::get_output(HttpRequest& request) {
  const std::string id = request.params["id"];
  const std::string rel = request.params["path"];
  std::string dir;
  {
    StoreLease store(*this);
    if (!rest_valid_id(id) || !store->find(id)) {
      return HttpResponse::error(404, fmt::format("no execution '{}'", id));
    }
    dir = store->dir(id);
  }
  const std::string path = rest_resolve_inside(fs::path(dir) / "outputs", rel);
  if (path.empty()) {
    return HttpResponse::error(404, fmt::format("no output '{}' in execution {}", rel, id));
  }
  auto r = rest_file_response(request, path);
  if (request.query_value("download") == "1") {
    r.headers.push_back({"Content-Disposition", fmt::format("attachment; filename=\"{}\"",
                                                            fs::path(path).filename().string())});
  }
  return r;
}

HttpResponse RestApi::submit(HttpRequest& request) {
  GPULAB_CHECK(!request.body.empty(), ErrorKind::kInvalidArgument,
               "POST /api/executions: expected a lab spec (YAML) as the body, found none");
  const auto spec = lab::parse_lab_spec(request.body, "request body");
  const std::string runner = request.query_value("runner", options_.runner());
  GPULAB_CHECK(runner == "local" || runner == "slurm", ErrorKind::kInvalidArgument,
               "`runner`: expected local or slurm, found '{}'", runner);
  StoreLease store(*this);
  auto submit_options = lab::SubmitOptions(options_.gpulab_binary()).runner(runner);
#ifdef GPULAB_WITH_CURL
  submit_options.s3(options_.s3());
#endif
  const auto e = lab::submit_execution(*store, spec, submit_options);
  HttpResponse r = HttpResponse::json(201, e.to_json().dump());
  r.headers.push_back({"Location", "/api/executions/" + e.id});
  return r;
}

HttpResponse RestApi::stop(HttpRequest& request) {
  const std::string id = request.params["id"];
  double grace = options_.stop_grace_s();
  const std::string g = request.query_value("grace");
  if (!g.empty()) {
    try {
      grace = std::stod(g);
    } catch (const std::exception&) {
      grace = -1;
    }
    GPULAB_CHECK(grace >= 0 && grace <= 600, ErrorKind::kInvalidArgument,
                 "`grace`: expected seconds in 0..600, found '{}'", g);
  }
  StoreLease store(*this);
  if (!rest_valid_id(id) || !store->find(id)) {
    return HttpResponse::error(404, fmt::format("no execution '{}'", id));
  }
  const bool stopped = lab::stop_lab_execution(*store, id, lab::StopOptions().grace_s(grace));
  nlohmann::json j = store->get(id).to_json();
  j["stopped_now"] = stopped;
  return HttpResponse::json(200, j.dump());
}

HttpResponse RestApi::static_file(const std::string& name, const HttpRequest& request) {
  if (options_.web_root().empty()) {
    return HttpResponse::error(404, "no web page: the server was started without its web folder");
  }
  if (name.empty() || name[0] == '.') return HttpResponse::error(404, "no such file");
  const std::string path = rest_resolve_inside(options_.web_root(), name);
  if (path.empty()) return HttpResponse::error(404, fmt::format("no file '{}'", name));
  return rest_file_response(request, path);
}

std::string RestApi::metrics_text() {
  std::ostringstream out;
  out << "# HELP gpulab_executions Executions in the lab home by state.\n"
         "# TYPE gpulab_executions gauge\n";
  {
    StoreLease store(*this);
    for (const char* s : kRestStates) {
      rest_metric_labels(out, "gpulab_executions", {{"state", s}},
                         store->count(lab::ExecutionFilter().state(s)));
    }
  }
  std::lock_guard<std::mutex> lock(metrics_mutex_);
  out << "# HELP gpulab_http_requests_total HTTP requests answered, by method, route and status.\n"
         "# TYPE gpulab_http_requests_total counter\n";
  for (const auto& [key, n] : requests_) {
    rest_metric_labels(out, "gpulab_http_requests_total",
                       {{"method", std::get<0>(key)},
                        {"route", std::get<1>(key)},
                        {"code", std::to_string(std::get<2>(key))}},
                       n);
  }
  out << "# HELP gpulab_http_errors_total HTTP requests answered with a status >= 400.\n"
         "# TYPE gpulab_http_errors_total counter\n";
  for (const auto& [key, n] : errors_) {
    rest_metric_labels(out, "gpulab_http_errors_total",
                       {{"route", std::get<0>(key)}, {"code", std::to_string(std::get<1>(key))}},
                       n);
  }
  {
    std::lock_guard<std::mutex> streams_lock(streams_mutex_);
    out << "# HELP gpulab_http_log_streams Log follows open now.\n"
           "# TYPE gpulab_http_log_streams gauge\n"
           "gpulab_http_log_streams "
        << streams_.size() << '\n';
  }
  return out.str();
}

}  // namespace gpulab::serve
