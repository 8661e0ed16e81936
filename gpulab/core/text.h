// Small string helpers used across layers (one spelling of each idiom).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace gpulab::core {

// ASCII lower case (names, extensions, URL schemes, header names).
std::string to_lower(std::string_view text);

// Whether `text` ends with `suffix` (case-sensitive).
bool ends_with(std::string_view text, std::string_view suffix);

// `text` as a base-10 integer when the whole of it is one (an optional
// sign, then digits, in int's range), else nullopt: "12" -> 12; "", "1x",
// " 1", "1.5" -> nullopt. For flags, spec values and query parameters.
std::optional<int> parse_int(std::string_view text);

}  // namespace gpulab::core
