// Reader for IDX files (the MNIST file format), raw or gzip-compressed.
// Format: 2 zero bytes, a type byte (0x08 = uint8), a rank byte, then `rank`
// big-endian uint32 dimensions, then the data.
#pragma once

#include <ATen/core/Tensor.h>

#include <string>

namespace gpulab::data {

// Reads an IDX uint8 file of the given rank (3 for images [N, H, W], 1 for
// labels [N]). Validates the magic number, the dimensions and that the data
// length matches them. Throws Error(kNotFound) for a missing file and
// Error(kCorruptData) naming the file and what is wrong otherwise.
at::Tensor read_idx_file(const std::string& path, int expected_rank);

// Decompresses (if `.gz`) or reads a whole file. Throws Error(kCorruptData)
// for a corrupt or truncated gzip stream.
std::string read_maybe_gzip(const std::string& path);

}  // namespace gpulab::data
