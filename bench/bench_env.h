// What every benchmark records beside its timings (machine, CPU, commit), the
// median it reports, and the error handling of its main().
#pragma once

#include <string>
#include <vector>

namespace gpulab::bench {

// `uname -n`, e.g. "vm".
std::string host_name();

// /proc/cpuinfo's first "model name", or "unknown".
std::string cpu_model();

// Short commit of the git checkout holding `dir`, else of the working folder,
// else "unknown".
std::string git_commit(const std::string& dir);

// Median of `v` (the mean of the middle two for an even count); v non-empty.
double median(std::vector<double> v);

// Runs `run(argc, argv)`, turning a gpulab::Error into its exit code and any
// other exception into 1, each with one line "NAME: message" on stderr.
int run_main(const char* name, int (*run)(int, char**), int argc, char** argv);

}  // namespace gpulab::bench
