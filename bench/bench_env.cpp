// Machine description and main() wrapper shared by the benchmark programs.
#include "bench/bench_env.h"

#include <sys/utsname.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>

#include "gpulab/core/caching_cpu_allocator.h"
#include "gpulab/core/error.h"

namespace gpulab::bench {
namespace {

std::string command_output(const std::string& command) {
  std::string out;
  if (FILE* p = popen(command.c_str(), "r")) {
    char buf[256];
    while (std::fgets(buf, sizeof(buf), p)) out += buf;
    pclose(p);
  }
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

}  // namespace

std::string host_name() {
  utsname u{};
  return uname(&u) == 0 ? u.nodename : "unknown";
}

std::string cpu_model() {
  std::ifstream cpuinfo("/proc/cpuinfo");
  for (std::string line; std::getline(cpuinfo, line);) {
    if (line.rfind("model name", 0) == 0) {
      auto model = line.substr(line.find(':') + 1);
      model.erase(0, model.find_first_not_of(' '));
      return model;
    }
  }
  return "unknown";
}

std::string git_commit(const std::string& dir) {
  std::string c = command_output("git -C '" + dir + "' rev-parse --short HEAD 2>/dev/null");
  if (c.empty()) c = command_output("git rev-parse --short HEAD 2>/dev/null");
  return c.empty() ? "unknown" : c;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

int run_main(const char* name, int (*run)(int, char**), int argc, char** argv) {
  // As the gpulab CLI: GPULAB_CPU_ALLOCATOR=default measures without the cache.
  const char* allocator = std::getenv("GPULAB_CPU_ALLOCATOR");
  if (allocator == nullptr || std::strcmp(allocator, "default") != 0) {
    gpulab::core::install_caching_cpu_allocator();
  }
  try {
    return run(argc, argv);
  } catch (const gpulab::Error& e) {
    std::fprintf(stderr, "%s: %s\n", name, e.what());
    return e.exit_code();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s\n", name, e.what());
    return 1;
  }
}

}  // namespace gpulab::bench
