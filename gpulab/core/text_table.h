// Plain-text tables with a header and right-aligned columns, as MATLAB prints.
#pragma once

#include <string>
#include <vector>

namespace gpulab::core {

class TextTable {
 public:
  explicit TextTable(std::vector<std::string> header);
  void add_row(std::vector<std::string> cells);
  // "|====|\n| a | b |\n|====|..." with columns as wide as their widest cell.
  std::string render() const;

 private:
  std::vector<std::string> header_;
  std::vector<std::vector<std::string>> rows_;
};

}  // namespace gpulab::core
