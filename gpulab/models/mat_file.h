// Reading MATLAB MAT files (v5, v7, v7.3) with matio: checked opening, owning
// handles, and variables as tensors and strings. Internal to the importers in
// this folder (matconvnet.cpp); built only with GPULAB_WITH_MATIO.
#pragma once

#include <ATen/core/Tensor.h>
#include <matio.h>

#include <memory>
#include <string>
#include <vector>

namespace gpulab::models::detail {

struct MatFileCloser {
  void operator()(mat_t* mat) const { Mat_Close(mat); }
};
struct MatVarFreer {
  void operator()(matvar_t* var) const { Mat_VarFree(var); }
};
using MatFilePtr = std::unique_ptr<mat_t, MatFileCloser>;
using MatVarPtr = std::unique_ptr<matvar_t, MatVarFreer>;

// Opens `path` read-only once it looks like a MAT file: a 128-byte header with
// the 'IM' byte-order mark and, for v5/v7, every top-level variable inside the
// file (so a truncated download fails here with a clear message, not in matio).
// v7.3 files are HDF5, which checks its own structure. Throws Error(kNotFound)
// for a missing file, Error(kCorruptData) naming it for anything else.
MatFilePtr open_mat_file(const std::string& path);

// Names of the file's top-level variables, in file order.
std::vector<std::string> mat_variable_names(mat_t* mat, const std::string& path);

// Reads variable `name` with its data. Throws Error(kCorruptData) naming the
// file (and quoting matio) when it cannot be read.
MatVarPtr read_mat_variable(mat_t* mat, const std::string& name, const std::string& path);

// Number of elements (the product of the dimensions).
size_t mat_numel(const matvar_t* var);

// "1x3 single", "2x2 struct" — for error messages.
std::string mat_describe(const matvar_t* var);

// Field `name` of a 1x1 struct, owned by `var`; nullptr when `var` is null, is
// not a struct with one element, or has no such field.
matvar_t* mat_field(matvar_t* var, const char* name);

// Element `index` (0-based, column-major) of a cell array, owned by `cell`;
// nullptr when `cell` is not a cell array or `index` is out of range.
matvar_t* mat_cell(matvar_t* cell, size_t index);

// The text of a char array (UTF-8, column-major), trailing blanks removed.
// Throws Error(kCorruptData) naming `what` and the file when `var` is not char.
std::string mat_string(matvar_t* var, const std::string& what, const std::string& path);

// Each row of a char matrix (MATLAB's char(...) of several strings), trailing
// blanks removed.
std::vector<std::string> mat_char_rows(matvar_t* var, const std::string& what,
                                       const std::string& path);

// A real numeric array (any class) as float32, indexed like MATLAB:
// t[i][j][k] = A(i+1, j+1, k+1), sizes = the MATLAB dimensions (rank >= 2).
// The result is a permuted view; call .contiguous() where it matters.
// Throws Error(kCorruptData) naming `what` and the file for anything else.
at::Tensor mat_tensor(matvar_t* var, const std::string& what, const std::string& path);

}  // namespace gpulab::models::detail
