// Reading the CLI's environment.
#include "apps/gpulab/environment.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "gpulab/core/error.h"

namespace gpulab::app {
namespace fs = std::filesystem;
namespace {

std::string variable(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr ? value : "";
}

// $XDG_CACHE_HOME/gpulab, else ~/.cache/gpulab, else "".
std::string cache_root() {
  if (const std::string xdg = variable("XDG_CACHE_HOME"); !xdg.empty())
    return (fs::path(xdg) / "gpulab").string();
  if (const std::string home = variable("HOME"); !home.empty())
    return (fs::path(home) / ".cache" / "gpulab").string();
  return "";
}

}  // namespace

data::RemoteAccess remote_access_from_environment() {
  data::RemoteAccess access;
  const std::string root = cache_root();
  access.index_cache_dir = root;
  access.cache_dir = root.empty() ? "/tmp/gpulab-cache/remote" : root + "/remote";
#ifdef GPULAB_WITH_CURL
  data::S3Options& s3 = access.s3;
  std::string region = variable("AWS_REGION");
  if (region.empty()) region = variable("AWS_DEFAULT_REGION");
  if (!region.empty()) s3.region(region);
  s3.endpoint(variable("AWS_ENDPOINT_URL"));
  data::S3Credentials credentials;
  credentials.access_key_id = variable("AWS_ACCESS_KEY_ID");
  credentials.secret_access_key = variable("AWS_SECRET_ACCESS_KEY");
  credentials.session_token = variable("AWS_SESSION_TOKEN");
  s3.credentials(credentials);
#endif
  return access;
}

std::vector<std::string> own_command_line() {
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  std::vector<std::string> args;
  std::string arg;
  while (std::getline(in, arg, '\0')) args.push_back(arg);
  GPULAB_CHECK(!args.empty(), ErrorKind::kInternal, "cannot read /proc/self/cmdline");
  args[0] = fs::read_symlink("/proc/self/exe").string();
  return args;
}

}  // namespace gpulab::app
