// HttpClient: retries only transient failures, bounded; atomic file writes;
// URLs in messages lose their credentials.
#include "gpulab/data/http_client.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <thread>

#include "gpulab/core/error.h"
#include "tests/support/test_util.h"

namespace gpulab::data {
namespace {
namespace fs = std::filesystem;

// Answers each connection with the next canned response (the last one
// repeats). Only for the retry logic; S3 behaviour is tested against s3rver.
class CannedServer {
 public:
  explicit CannedServer(std::vector<std::string> responses) : responses_(std::move(responses)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    ::listen(fd_, 16);
    socklen_t len = sizeof addr;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] {
      for (;;) {
        const int c = ::accept(fd_, nullptr, nullptr);
        if (c < 0 || stop_) {
          if (c >= 0) ::close(c);
          return;
        }
        char buf[4096];
        std::string request;
        while (request.find("\r\n\r\n") == std::string::npos) {
          const ssize_t n = ::read(c, buf, sizeof buf);
          if (n <= 0) break;
          request.append(buf, static_cast<size_t>(n));
        }
        const size_t i = std::min(served_.fetch_add(1), responses_.size() - 1);
        const std::string& r = responses_[i];
        (void)!::write(c, r.data(), r.size());
        ::close(c);
      }
    });
  }
  ~CannedServer() {
    stop_ = true;
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    thread_.join();
  }
  std::string url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }
  size_t served() const { return served_.load(); }

 private:
  std::vector<std::string> responses_;
  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<size_t> served_{0};
  std::thread thread_;
};

std::string response(int status, const std::string& body) {
  return "HTTP/1.1 " + std::to_string(status) +
         " X\r\nContent-Length: " + std::to_string(body.size()) +
         "\r\nETag: \"v1\"\r\nConnection: close\r\n\r\n" + body;
}

HttpOptions fast_retries(int attempts) {
  return HttpOptions().max_attempts(attempts).initial_backoff_s(0.01).max_backoff_s(0.05);
}

TEST(HttpClientTest, RetriesServerErrorsThenSucceeds) {
  CannedServer server({response(503, "busy"), response(500, "oops"), response(200, "hello")});
  HttpClient http(fast_retries(4));
  HttpRequest get;
  get.url = server.url("/file.bin");
  HttpResponse r = http.perform(get);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "hello");
  EXPECT_EQ(r.attempts, 3);
  EXPECT_EQ(r.header("etag"), "\"v1\"");
  EXPECT_EQ(http.requests_sent(), 3);
}

TEST(HttpClientTest, DoesNotRetryClientErrors) {
  for (int status : {400, 403, 404}) {
    CannedServer server({response(status, "no"), response(200, "never")});
    HttpClient http(fast_retries(4));
    HttpRequest get;
    get.url = server.url("/x");
    HttpResponse r = http.perform(get);
    EXPECT_EQ(r.status, status);
    EXPECT_EQ(r.attempts, 1);
    EXPECT_EQ(server.served(), 1u);
  }
}

TEST(HttpClientTest, GivesUpAfterMaxAttemptsOnServerErrors) {
  CannedServer server({response(503, "busy")});
  HttpClient http(fast_retries(3));
  HttpRequest get;
  get.url = server.url("/x");
  HttpResponse r = http.perform(get);
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.attempts, 3);
  EXPECT_EQ(server.served(), 3u);
}

TEST(HttpClientTest, UnreachableServerFailsAfterBoundedRetries) {
  // Nothing listens on port 1 of the loopback address.
  HttpClient http(fast_retries(3));
  HttpRequest get;
  get.url = "http://user:hunter2@127.0.0.1:1/data.txt";
  const auto start = std::chrono::steady_clock::now();
  try {
    http.perform(get);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kUnavailable);
    EXPECT_NE(std::string(e.what()).find("http://127.0.0.1:1/data.txt"), std::string::npos)
        << e.what();
    EXPECT_NE(std::string(e.what()).find("after 3 tries"), std::string::npos) << e.what();
    EXPECT_EQ(std::string(e.what()).find("hunter2"), std::string::npos) << e.what();
  }
  EXPECT_EQ(http.requests_sent(), 3);
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), 10);
}

TEST(HttpClientTest, SilentServerFailsAfterTheLowSpeedTimeNotTheTransferTimeout) {
  // Accepts connections (the kernel's backlog) and never answers.
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(fd, 16), 0);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  HttpClient http(fast_retries(2).low_speed_time_s(1).timeout_s(600));
  HttpRequest get;
  get.url = "http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port)) + "/list.txt?token=S3CR3T";
  const auto start = std::chrono::steady_clock::now();
  try {
    http.perform(get);
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kUnavailable);
    EXPECT_NE(std::string(e.what()).find("after 2 tries"), std::string::npos) << e.what();
    EXPECT_EQ(std::string(e.what()).find("S3CR3T"), std::string::npos) << e.what();
  }
  ::close(fd);
  EXPECT_EQ(http.requests_sent(), 2);
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), 15);
}

TEST(HttpClientTest, WritesOnlySuccessfulBodiesToTheFile) {
  testing::TempDir dir;
  const std::string path = dir / "sub/out.bin";
  {
    CannedServer server({response(200, "payload")});
    HttpRequest get;
    get.url = server.url("/x");
    EXPECT_EQ(HttpClient().perform(get, path).status, 200);
  }
  EXPECT_EQ(testing::read_bytes(path), "payload");
  {
    CannedServer server({response(404, "missing")});
    HttpRequest get;
    get.url = server.url("/y");
    HttpResponse r = HttpClient().perform(get, dir / "other.bin");
    EXPECT_EQ(r.status, 404);
    EXPECT_EQ(r.body, "missing");
  }
  EXPECT_FALSE(fs::exists(dir / "other.bin"));
  // No temporary files are left behind.
  int files = 0;
  for (const auto& e : fs::recursive_directory_iterator(dir.path())) files += e.is_regular_file();
  EXPECT_EQ(files, 1);
}

TEST(HttpClientTest, RedactsCredentialsInUrls) {
  EXPECT_EQ(redact_url("https://me:secret@host/a?b=1"), "https://host/a?b=1");
  EXPECT_EQ(redact_url("https://h/k?X-Amz-Signature=abc&x-id=GetObject&X-Amz-Credential=AK%2F1"),
            "https://h/k?X-Amz-Signature=REDACTED&x-id=GetObject&X-Amz-Credential=REDACTED");
  EXPECT_EQ(redact_url("http://h/p?token=t&prefix=a"), "http://h/p?token=REDACTED&prefix=a");
  EXPECT_EQ(redact_url("s3://bucket/a@b"), "s3://bucket/a@b");
}

TEST(HttpClientTest, UriEncodesLikeS3) {
  EXPECT_EQ(uri_encode("a b/c+d~e.f_g-h", true), "a%20b/c%2Bd~e.f_g-h");
  EXPECT_EQ(uri_encode("a/b", false), "a%2Fb");
}

}  // namespace
}  // namespace gpulab::data
