// Small MatConvNet SimpleNN models written with matio for the importer's
// tests: VGG layer lists named like imagenet-vgg-verydeep-19.mat, in the
// current layout or the 2014 beta one, as MAT v5, v7 or v7.3.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <vector>

namespace gpulab::testing {

struct FakeLayer {
  std::string name;
  std::string type;   // "conv", "relu", "pool", "dropout", "softmax", "bnorm", ...
  at::Tensor weight;  // conv: indexed like MATLAB, [H][W][Cin][Cout]; bnorm: [C]
  at::Tensor bias;    // conv: [Cout]
};

struct FakeNet {
  std::vector<FakeLayer> layers;
  at::Tensor average_image;  // indexed like MATLAB: [1][1][3] or [H][W][3]
  std::vector<double> image_size = {32, 40, 3};
  std::vector<std::string> classes;
};

// A conv layer with random W [k][k][cin][cout] and b [cout].
FakeLayer fake_conv(const std::string& name, int64_t k, int64_t cin, int64_t cout);

// torchvision's vgg<depth> with conv widths width, 2 width, 4 width, 8 width,
// fc6 (7x7) and fc7 of `hidden` outputs, fc8 of `classes`; random weights
// (seeded by `depth`), averageImage [123.68 116.779 103.939], classes
// "class 0", "class 1", ...
FakeNet make_fake_vgg(int depth, int64_t width, int64_t hidden, int64_t classes);

// Index in net.layers of the k-th conv (0-based).
size_t conv_layer_index(const FakeNet& net, int k);

// kCurrent: layers{i}.weights = {W, b} and `meta` (normalization, classes with a
// cell of descriptions); kBeta2014: filters / biases and top-level
// `normalization` / `classes` (descriptions as a blank-padded char matrix).
enum class MatLayout { kCurrent, kBeta2014 };
// kV5 uncompressed, kV7 zlib-compressed (MATLAB's default), kV73 HDF5.
enum class MatFormat { kV5, kV7, kV73 };

// Throws std::runtime_error when matio cannot write the file.
void write_matconvnet(const std::string& path, const FakeNet& net,
                      MatLayout layout = MatLayout::kCurrent, MatFormat format = MatFormat::kV7);

// A MAT v5 file holding one 1xN double variable `name`.
void write_mat_row(const std::string& path, const std::string& name,
                   const std::vector<double>& values);

}  // namespace gpulab::testing
