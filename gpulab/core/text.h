// Small string helpers used across layers (one spelling of each idiom).
#pragma once

#include <string>
#include <string_view>

namespace gpulab::core {

// ASCII lower case (names, extensions, URL schemes, header names).
std::string to_lower(std::string_view text);

// Whether `text` ends with `suffix` (case-sensitive).
bool ends_with(std::string_view text, std::string_view suffix);

}  // namespace gpulab::core
