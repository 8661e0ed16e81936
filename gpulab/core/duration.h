// Formatting of durations for progress tables and logs.
#pragma once

#include <string>

namespace gpulab::core {

// 3725.4 -> "01:02:05" (hours may exceed 99).
std::string format_hms(double seconds);

}  // namespace gpulab::core
