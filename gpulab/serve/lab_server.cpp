// Start-up of `gpulab serve`: reconcile, token, web root, listen.
#include "gpulab/serve/lab_server.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "gpulab/core/error.h"
#include "gpulab/lab/lab_service.h"

namespace gpulab::serve {
namespace {
namespace fs = std::filesystem;

std::string srv_read_token(const std::string& path) {
  std::ifstream in(path);
  GPULAB_CHECK(in.good(), ErrorKind::kNotFound, "`token_file` '{}': cannot read it", path);
  std::string line;
  std::getline(in, line);
  while (!line.empty() && std::isspace(static_cast<unsigned char>(line.back()))) line.pop_back();
  while (!line.empty() && std::isspace(static_cast<unsigned char>(line.front()))) line.erase(0, 1);
  GPULAB_CHECK(!line.empty(), ErrorKind::kInvalidArgument,
               "`token_file` '{}': expected the token on its first line, found an empty line",
               path);
  return line;
}

void srv_write_private(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  GPULAB_CHECK(fd >= 0, ErrorKind::kIo, "cannot write the server token '{}'", tmp);
  ::fchmod(fd, 0600);
  const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
                  ::fsync(fd) == 0;
  ::close(fd);
  GPULAB_CHECK(ok && std::rename(tmp.c_str(), path.c_str()) == 0, ErrorKind::kIo,
               "cannot write the server token '{}'", path);
}

}  // namespace

std::string find_web_root(const std::string& binary) {
  std::error_code ec;
  const fs::path installed = fs::path(binary).parent_path() / "../share/gpulab/web";
  if (fs::exists(installed / "index.html", ec)) return fs::canonical(installed, ec).string();
#ifdef GPULAB_SOURCE_WEB_DIR
  if (fs::exists(fs::path(GPULAB_SOURCE_WEB_DIR) / "index.html", ec)) return GPULAB_SOURCE_WEB_DIR;
#endif
  return "";
}

std::string random_token() {
  std::ifstream in("/dev/urandom", std::ios::binary);
  unsigned char bytes[32];
  in.read(reinterpret_cast<char*>(bytes), sizeof bytes);
  GPULAB_CHECK(in.gcount() == sizeof bytes, ErrorKind::kUnavailable, "cannot read /dev/urandom");
  static const char* hex = "0123456789abcdef";
  std::string token;
  for (const unsigned char b : bytes) {
    token += hex[b >> 4];
    token += hex[b & 15];
  }
  return token;
}

LabServer::LabServer(ServeOptions options) : options_(std::move(options)) {}

LabServer::~LabServer() {
  stop();
}

void LabServer::start() {
  {
    lab::ExecutionStore store(options_.home());
    lab::reconcile_lab_executions(store);
  }
  std::string token;
  if (!options_.token_file().empty()) {
    token_path_ = options_.token_file();
    token = srv_read_token(token_path_);
  } else {
    token_path_ = (fs::path(options_.home()) / "serve-token").string();
    token = random_token();
    srv_write_private(token_path_, token + "\n");
  }
  web_root_ =
      options_.web_root().empty() ? find_web_root(options_.gpulab_binary()) : options_.web_root();
  auto api_options = RestApiOptions(options_.home(), options_.gpulab_binary(), token)
                         .token_for_reads(!options_.token_file().empty())
                         .web_root(web_root_)
                         .stop_grace_s(options_.stop_grace_s());
#ifdef GPULAB_WITH_CURL
  api_options.s3(options_.s3());
#endif
  api_ = std::make_unique<RestApi>(api_options);
  http_ = std::make_unique<HttpServer>(
      HttpServerOptions().host(options_.host()).port(options_.port()).threads(options_.threads()),
      [this](HttpRequest& r) { return api_->handle(r); });
  http_->start();
}

void LabServer::stop() {
  if (api_) api_->cancel_streams();
  if (http_) http_->stop();
}

int LabServer::port() const {
  return http_ ? http_->port() : 0;
}

std::string LabServer::url() const {
  const std::string host = options_.host() == "0.0.0.0" ? "127.0.0.1" : options_.host();
  return "http://" + host + ":" + std::to_string(port()) + "/";
}

}  // namespace gpulab::serve
