// TextTable rendering.
#include "gpulab/core/text_table.h"

#include <fmt/format.h>

#include <algorithm>

namespace gpulab::core {

TextTable::TextTable(std::vector<std::string> header) : header_(std::move(header)) {}

void TextTable::add_row(std::vector<std::string> cells) {
  cells.resize(header_.size());
  rows_.push_back(std::move(cells));
}

std::string TextTable::render() const {
  std::vector<size_t> width(header_.size());
  for (size_t c = 0; c < header_.size(); ++c) {
    width[c] = header_[c].size();
    for (const auto& row : rows_) width[c] = std::max(width[c], row[c].size());
  }
  auto line = [&](char fill) {
    std::string s = "|";
    for (size_t w : width) s += std::string(w + 2, fill) + "|";
    return s + "\n";
  };
  auto row_text = [&](const std::vector<std::string>& cells) {
    std::string s = "|";
    for (size_t c = 0; c < cells.size(); ++c) s += fmt::format(" {:>{}} |", cells[c], width[c]);
    return s + "\n";
  };
  std::string out = line('=') + row_text(header_) + line('=');
  for (const auto& row : rows_) out += row_text(row);
  return out + line('=');
}

}  // namespace gpulab::core
