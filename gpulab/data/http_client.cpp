// libcurl behind HttpClient: one easy handle per thread, retries with back-off.
#include "gpulab/data/http_client.h"

#include <curl/curl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <random>
#include <thread>

#include "gpulab/core/error.h"
#include "gpulab/core/text.h"

namespace gpulab::data {
namespace {
namespace fs = std::filesystem;

void global_init_once() {
  static std::once_flag once;
  std::call_once(once, [] {
    GPULAB_CHECK(curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK, ErrorKind::kUnavailable,
                 "libcurl could not be initialised");
  });
}

// The calling thread's easy handle, reset before each use so connections are
// reused but no option leaks from one request into the next.
CURL* thread_handle() {
  struct Handle {
    CURL* curl = curl_easy_init();
    ~Handle() { curl_easy_cleanup(curl); }
  };
  thread_local Handle handle;
  GPULAB_CHECK(handle.curl != nullptr, ErrorKind::kUnavailable, "curl_easy_init failed");
  curl_easy_reset(handle.curl);
  return handle.curl;
}

struct Transfer {
  CURL* curl = nullptr;
  HttpResponse* response = nullptr;
  FILE* file = nullptr;  // 2xx bodies go here when set
};

size_t on_body(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  // Asked per chunk: after a redirect, the final response's body follows
  // the 3xx one.
  long status = 0;
  curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &status);
  if (t->file != nullptr && status >= 200 && status < 300)
    return std::fwrite(data, 1, size * n, t->file);
  t->response->body.append(data, size * n);
  return size * n;
}

size_t on_header(char* data, size_t size, size_t n, void* user) {
  auto* response = static_cast<HttpResponse*>(user);
  std::string line(data, size * n);
  // A new status line (redirect, 100 Continue) starts a new header block.
  if (line.rfind("HTTP/", 0) == 0) response->headers.clear();
  const auto colon = line.find(':');
  if (colon != std::string::npos) {
    const std::string name = core::to_lower(line.substr(0, colon));
    std::string value = line.substr(colon + 1);
    const auto b = value.find_first_not_of(" \t");
    const auto e = value.find_last_not_of(" \t\r\n");
    response->headers[name] = b == std::string::npos ? "" : value.substr(b, e - b + 1);
  }
  return size * n;
}

bool retryable(CURLcode code) {
  switch (code) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_SSL_CONNECT_ERROR:
      return true;
    default:
      return false;
  }
}

bool retryable(long status) {
  return status == 429 || status >= 500;
}

void sleep_backoff(const HttpOptions& o, int attempt) {
  thread_local std::mt19937 rng{std::random_device{}()};
  double base = o.initial_backoff_s();
  for (int i = 1; i < attempt; ++i) base *= 2;
  base = std::min(base, o.max_backoff_s());
  std::uniform_real_distribution<double> jitter(0.5, 1.5);
  std::this_thread::sleep_for(std::chrono::duration<double>(base * jitter(rng)));
}

std::string temp_sibling(const std::string& path) {
  static std::atomic<uint64_t> counter{0};
  return path + ".part." + std::to_string(::getpid()) + "." + std::to_string(counter++);
}

}  // namespace

std::string HttpResponse::header(const std::string& name) const {
  auto it = headers.find(name);
  return it == headers.end() ? std::string() : it->second;
}

HttpClient::HttpClient(HttpOptions options)
    : options_(std::move(options)), requests_sent_(std::make_shared<std::atomic<int64_t>>(0)) {
  GPULAB_CHECK(options_.max_attempts() >= 1, ErrorKind::kInvalidArgument,
               "HTTP max_attempts must be >= 1, got {}", options_.max_attempts());
  global_init_once();
}

HttpResponse HttpClient::perform(const HttpRequest& request, const std::string& to_file) const {
  std::string last_error;
  for (int attempt = 1;; ++attempt) {
    HttpResponse response;
    response.attempts = attempt;
    CURL* curl = thread_handle();
    std::string temp;
    FILE* file = nullptr;
    if (!to_file.empty()) {
      fs::create_directories(fs::path(to_file).parent_path());
      temp = temp_sibling(to_file);
      file = std::fopen(temp.c_str(), "wb");
      GPULAB_CHECK(file != nullptr, ErrorKind::kIo, "cannot write '{}'", temp);
    }
    Transfer transfer{curl, &response, file};
    curl_slist* headers = nullptr;
    for (const auto& h : request.headers) headers = curl_slist_append(headers, h.c_str());
    headers = curl_slist_append(headers, "Expect:");
    curl_easy_setopt(curl, CURLOPT_URL, request.url.c_str());
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(curl, CURLOPT_MAXREDIRS, 5L);
    curl_easy_setopt(curl, CURLOPT_USERAGENT, "gpulab/" GPULAB_VERSION);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS,
                     static_cast<long>(options_.connect_timeout_s() * 1000));
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(options_.timeout_s() * 1000));
    if (options_.low_speed_time_s() > 0) {
      curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT,
                       static_cast<long>(options_.low_speed_limit_bps()));
      curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME,
                       static_cast<long>(options_.low_speed_time_s()));
    }
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &transfer);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, &response);
    if (request.method == "HEAD") {
      curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
    } else if (request.method != "GET") {
      curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, request.method.c_str());
      curl_easy_setopt(curl, CURLOPT_POSTFIELDS, request.body.data());
      curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE,
                       static_cast<curl_off_t>(request.body.size()));
    }
    if (!request.aws_sigv4.empty()) {
      curl_easy_setopt(curl, CURLOPT_AWS_SIGV4, request.aws_sigv4.c_str());
      curl_easy_setopt(curl, CURLOPT_USERPWD, request.aws_userpwd.c_str());
    }
    requests_sent_->fetch_add(1);
    const CURLcode code = curl_easy_perform(curl);
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &response.status);
    // The secret must not outlive the request in the reused handle.
    curl_easy_setopt(curl, CURLOPT_USERPWD, nullptr);
    curl_slist_free_all(headers);

    bool ok_file = false;
    if (file != nullptr) {
      ok_file = code == CURLE_OK && response.status >= 200 && response.status < 300;
      if (ok_file) {
        ok_file = std::fflush(file) == 0 && ::fsync(fileno(file)) == 0;
      }
      std::fclose(file);
      if (ok_file) {
        std::error_code ec;
        fs::rename(temp, to_file, ec);
        GPULAB_CHECK(!ec, ErrorKind::kIo, "cannot rename '{}' to '{}': {}", temp, to_file,
                     ec.message());
      } else {
        std::error_code ec;
        fs::remove(temp, ec);
      }
      GPULAB_CHECK(code != CURLE_WRITE_ERROR, ErrorKind::kIo, "cannot write '{}' (disk full?)",
                   to_file);
    }
    if (code == CURLE_OK && !retryable(response.status)) return response;
    if (code != CURLE_OK && !retryable(code)) {
      GPULAB_FAIL(ErrorKind::kUnavailable, "{} {} failed: {}", request.method,
                  redact_url(request.url), curl_easy_strerror(code));
    }
    if (attempt >= options_.max_attempts()) {
      if (code == CURLE_OK) return response;  // the caller words the HTTP error
      GPULAB_FAIL(ErrorKind::kUnavailable, "cannot reach {} after {} {}: {}",
                  redact_url(request.url), attempt, attempt == 1 ? "try" : "tries",
                  curl_easy_strerror(code));
    }
    sleep_backoff(options_, attempt);
  }
}

std::string redact_url(const std::string& url) {
  std::string out = url;
  const auto scheme = out.find("://");
  if (scheme != std::string::npos) {
    const auto host_start = scheme + 3;
    const auto path_start = out.find_first_of("/?#", host_start);
    const auto at = out.rfind('@', path_start == std::string::npos ? out.size() : path_start);
    if (at != std::string::npos && at >= host_start) out.erase(host_start, at + 1 - host_start);
  }
  const auto q = out.find('?');
  if (q == std::string::npos) return out;
  std::string result = out.substr(0, q + 1);
  std::string query = out.substr(q + 1);
  size_t start = 0;
  while (start <= query.size()) {
    size_t end = query.find('&', start);
    if (end == std::string::npos) end = query.size();
    std::string param = query.substr(start, end - start);
    const std::string lower = core::to_lower(param);
    const auto eq = param.find('=');
    const std::string name = lower.substr(0, eq);
    static const char* kSecretNames[] = {"signature",
                                         "sig",
                                         "token",
                                         "access_token",
                                         "api_key",
                                         "apikey",
                                         "key",
                                         "password",
                                         "awsaccesskeyid",
                                         "x-amz-signature",
                                         "x-amz-credential",
                                         "x-amz-security-token"};
    const bool secret = std::any_of(std::begin(kSecretNames), std::end(kSecretNames),
                                    [&](const char* s) { return name == s; });
    if (start > 0) result += '&';
    result += secret && eq != std::string::npos ? param.substr(0, eq + 1) + "REDACTED" : param;
    start = end + 1;
  }
  return result;
}

std::string uri_encode(const std::string& text, bool keep_slash) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' ||
        (keep_slash && c == '/')) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

}  // namespace gpulab::data
