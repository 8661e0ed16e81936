// Input fetches: files into the content-addressed cache (reused), other
// executions' outputs (never outside them), http on loopback with ETag
// revalidation, and failures that name the URL without its credentials.
#include "gpulab/lab/input_fetch.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <thread>

#include "gpulab/core/error.h"
#include "gpulab/lab/sha256.h"
#include "tests/support/test_util.h"

namespace gpulab::lab {
namespace {
namespace fs = std::filesystem;

// Serves one body with ETag "v1"; answers 304 to If-None-Match: "v1" and 404
// to paths other than /style.jpg.
class LabHttpServer {
 public:
  explicit LabHttpServer(std::string body) : body_(std::move(body)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    ::listen(fd_, 16);
    socklen_t len = sizeof addr;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~LabHttpServer() {
    stop_ = true;
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    thread_.join();
  }
  std::string url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }
  int full_bodies() const { return full_bodies_; }
  int not_modified() const { return not_modified_; }

 private:
  void serve() {
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
      std::string response;
      if (request.rfind("GET /style.jpg", 0) != 0) {
        response = "HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\nConnection: close\r\n\r\nno";
      } else if (request.find("If-None-Match: \"v1\"") != std::string::npos) {
        ++not_modified_;
        response = "HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\nConnection: close\r\n\r\n";
      } else {
        ++full_bodies_;
        response = "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body_.size()) +
                   "\r\nETag: \"v1\"\r\nConnection: close\r\n\r\n" + body_;
      }
      (void)!::write(c, response.data(), response.size());
      ::close(c);
    }
  }

  std::string body_;
  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> full_bodies_{0};
  std::atomic<int> not_modified_{0};
  std::thread thread_;
};

InputFetchOptions lab_fetch_options(const std::string& cache) {
  InputFetchOptions o(cache);
  o.http(data::HttpOptions().max_attempts(1));
  return o;
}

}  // namespace

TEST(InputFetchTest, AFileIsCachedByContentAndLinkedIntoInputs) {
  testing::TempDir dir;
  testing::write_bytes(dir / "a.txt", "hello");
  const auto o = lab_fetch_options(dir / "cache");
  auto first = fetch_inputs({{"a.txt", dir / "a.txt"}}, dir / "e1/inputs", o);
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first[0].digest, "sha256:" + sha256_hex("hello"));
  EXPECT_FALSE(first[0].from_cache);
  EXPECT_EQ(testing::read_bytes(dir / "e1/inputs/a.txt"), "hello");
  auto second = fetch_inputs({{"renamed", dir / "a.txt"}}, dir / "e2/inputs", o);
  EXPECT_TRUE(second[0].from_cache);
  EXPECT_EQ(fs::hard_link_count(dir / "e2/inputs/renamed"), 3u);  // cache + 2 executions
  // A folder is copied, its digest covering names and contents.
  fs::create_directories(dir / "folder/sub");
  testing::write_bytes(dir / "folder/sub/x", "x");
  auto folder = fetch_inputs({{"f", dir / "folder"}}, dir / "e3/inputs", o);
  EXPECT_EQ(testing::read_bytes(dir / "e3/inputs/f/sub/x"), "x");
  EXPECT_EQ(folder[0].digest.size(), 7u + 64u);
  const auto missing = testing::error_of([&] {
    fetch_inputs({{"m", dir / "missing.bin"}}, dir / "e4/inputs", o);
  });
  EXPECT_NE(missing.find("input `m`: cannot fetch '" + dir / "missing.bin" + "'"),
            std::string::npos)
      << missing;
}

TEST(InputFetchTest, ExecUrlsStayInsideTheExecutionsOutputs) {
  testing::TempDir dir;
  fs::create_directories(dir / "outputs/run");
  testing::write_bytes(dir / "outputs/run/model.safetensors", "weights");
  testing::write_bytes(dir / "secret.txt", "no");
  fs::create_symlink(dir / "secret.txt", dir / "outputs/link");
  EXPECT_EQ(resolve_exec_path("exec://abc/outputs/run/model.safetensors", dir / "outputs"),
            fs::weakly_canonical(dir / "outputs/run/model.safetensors").string());
  for (const char* bad : {"exec://abc/outputs/../secret.txt", "exec://abc/outputs/link",
                          "exec://abc/outputs/run/../../secret.txt"}) {
    const auto e = testing::error_of([&] { resolve_exec_path(bad, dir / "outputs"); });
    EXPECT_NE(e.find("leaves execution abc's outputs"), std::string::npos) << bad << ": " << e;
  }
  EXPECT_NE(testing::error_of([&] {
              resolve_exec_path("exec://abc/outputs/none", dir / "outputs");
            }).find("execution abc has no output 'none'"),
            std::string::npos);
  // Through fetch_inputs, with a resolver as the CLI gives one.
  auto o = lab_fetch_options(dir / "cache");
  o.resolve_exec([&](const std::string& url) { return resolve_exec_path(url, dir / "outputs"); });
  const auto got = fetch_inputs({{"model.safetensors", "exec://abc/outputs/run/model.safetensors"}},
                                dir / "e/inputs", o);
  EXPECT_EQ(testing::read_bytes(dir / "e/inputs/model.safetensors"), "weights");
  EXPECT_EQ(got[0].digest, "sha256:" + sha256_hex("weights"));
}

TEST(InputFetchTest, HttpInputsAreRevalidatedWithTheirEtag) {
  testing::TempDir dir;
  LabHttpServer server("starry night pixels");
  const auto o = lab_fetch_options(dir / "cache");
  const std::vector<LabInput> inputs = {{"style.jpg", server.url("/style.jpg")},
                                        {"copy.jpg", server.url("/style.jpg")}};
  auto first = fetch_inputs({inputs[0]}, dir / "e1/inputs", o);
  EXPECT_EQ(testing::read_bytes(dir / "e1/inputs/style.jpg"), "starry night pixels");
  EXPECT_FALSE(first[0].from_cache);
  EXPECT_EQ(server.full_bodies(), 1);
  auto second = fetch_inputs(inputs, dir / "e2/inputs", o);  // concurrent, both revalidated
  EXPECT_TRUE(second[0].from_cache);
  EXPECT_TRUE(second[1].from_cache);
  EXPECT_EQ(server.full_bodies(), 1);
  EXPECT_EQ(server.not_modified(), 2);
  EXPECT_EQ(testing::read_bytes(dir / "e2/inputs/copy.jpg"), "starry night pixels");
  EXPECT_EQ(second[1].digest, "sha256:" + sha256_hex("starry night pixels"));
}

TEST(InputFetchTest, AFailedFetchNamesTheUrlWithoutItsCredentials) {
  testing::TempDir dir;
  LabHttpServer server("x");
  std::string url = server.url("/missing.bin?X-Amz-Signature=s3cr3tsig");
  url.insert(7, "user:hunter2@");
  const auto e = testing::error_of([&] {
    fetch_inputs({{"ok.jpg", server.url("/style.jpg")}, {"m.bin", url}}, dir / "e/inputs",
                 lab_fetch_options(dir / "cache"));
  });
  EXPECT_NE(e.find("input `m.bin`: cannot fetch 'http://127.0.0.1:"), std::string::npos) << e;
  EXPECT_NE(e.find("HTTP 404"), std::string::npos) << e;
  EXPECT_EQ(e.find("hunter2"), std::string::npos) << e;
  EXPECT_EQ(e.find("s3cr3tsig"), std::string::npos) << e;
}

}  // namespace gpulab::lab
