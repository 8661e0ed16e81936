// What the CLI takes from its environment (the library never reads it):
// remote data credentials and endpoints (AWS_*), cache folders
// (XDG_CACHE_HOME, HOME), and this process's command line.
#pragma once

#include <string>
#include <vector>

#include "gpulab/data/data_path.h"

namespace gpulab::app {

// AWS_REGION/AWS_DEFAULT_REGION, AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID,
// AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN; the remote cache
// ($XDG_CACHE_HOME/gpulab/remote or ~/.cache/gpulab/remote) and the index
// cache ($XDG_CACHE_HOME/gpulab or ~/.cache/gpulab).
data::RemoteAccess remote_access_from_environment();

// argv of this process (/proc/self/cmdline, with the executable's real path).
std::vector<std::string> own_command_line();

}  // namespace gpulab::app
