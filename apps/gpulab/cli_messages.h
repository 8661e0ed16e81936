// The library names options by their key in backquotes (`max_pixels`), as a
// spec file, a lab or a REST client sets them; the command line shows the
// flag that sets each (--max-pixels).
#pragma once

#include <string>

#include "gpulab/core/log.h"

namespace gpulab::app {

// `message` with each backquoted option key that has a flag replaced by the
// flag; other backquoted words (a MAT variable, say) are kept as they are.
std::string with_cli_flags(const std::string& message);

// A log to `out` whose lines go through with_cli_flags.
core::Log cli_log(std::FILE* out);

}  // namespace gpulab::app
