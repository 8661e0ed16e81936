// MatConvNet model files for tests, written with matio.
#include "tests/support/matconvnet_writer.h"

#include <fmt/format.h>
#include <matio.h>
#include <torch/torch.h>

#include <cstring>
#include <stdexcept>

namespace gpulab::testing {

FakeLayer fake_conv(const std::string& name, int64_t k, int64_t cin, int64_t cout) {
  return {name, "conv", torch::randn({k, k, cin, cout}), torch::randn({cout})};
}

namespace {

// torchvision's configurations at width 64; 0 is a max-pool.
std::vector<int> torchvision_cfg(int depth) {
  switch (depth) {
    case 11:
      return {64, 0, 128, 0, 256, 256, 0, 512, 512, 0, 512, 512, 0};
    case 13:
      return {64, 64, 0, 128, 128, 0, 256, 256, 0, 512, 512, 0, 512, 512, 0};
    case 16:
      return {64, 64, 0, 128, 128, 0, 256, 256, 256, 0, 512, 512, 512, 0, 512, 512, 512, 0};
    default:
      return {64,  64,  0,   128, 128, 0,   256, 256, 256, 256, 0,
              512, 512, 512, 512, 0,   512, 512, 512, 512, 0};
  }
}

}  // namespace

// Layers named like imagenet-vgg-verydeep-19.mat: conv1_1, relu1_1, ..., pool1,
// ..., fc6, relu6, drop6, fc7, relu7, drop7, fc8, prob.
FakeNet make_fake_vgg(int depth, int64_t width, int64_t hidden, int64_t classes) {
  torch::manual_seed(depth);
  FakeNet net;
  int64_t channels = 3;
  int block = 1, index = 1;
  for (int c : torchvision_cfg(depth)) {
    if (c == 0) {
      net.layers.push_back({fmt::format("pool{}", block), "pool", {}, {}});
      ++block;
      index = 1;
      continue;
    }
    const int64_t cout = c / 64 * width;
    net.layers.push_back(fake_conv(fmt::format("conv{}_{}", block, index), 3, channels, cout));
    net.layers.push_back({fmt::format("relu{}_{}", block, index), "relu", {}, {}});
    channels = cout;
    ++index;
  }
  net.layers.push_back(fake_conv("fc6", 7, channels, hidden));
  net.layers.push_back({"relu6", "relu", {}, {}});
  net.layers.push_back({"drop6", "dropout", {}, {}});
  net.layers.push_back(fake_conv("fc7", 1, hidden, hidden));
  net.layers.push_back({"relu7", "relu", {}, {}});
  net.layers.push_back({"drop7", "dropout", {}, {}});
  net.layers.push_back(fake_conv("fc8", 1, hidden, classes));
  net.layers.push_back({"prob", "softmax", {}, {}});
  net.average_image = torch::tensor({123.68f, 116.779f, 103.939f}).reshape({1, 1, 3});
  for (int64_t i = 0; i < classes; ++i) net.classes.push_back(fmt::format("class {}", i));
  return net;
}

namespace {

// matio builders; a variable owns its children (a cell or struct frees them).

matvar_t* single_array(const at::Tensor& t) {
  std::vector<int64_t> order(t.dim());
  for (int64_t i = 0; i < t.dim(); ++i) order[i] = t.dim() - 1 - i;
  at::Tensor column_major = t.permute(order).contiguous().to(torch::kFloat32);
  std::vector<size_t> dims(t.sizes().begin(), t.sizes().end());
  return Mat_VarCreate(nullptr, MAT_C_SINGLE, MAT_T_SINGLE, static_cast<int>(dims.size()),
                       dims.data(), column_major.data_ptr<float>(), 0);
}

matvar_t* double_row(std::vector<double> values) {
  size_t dims[2] = {1, values.size()};
  return Mat_VarCreate(nullptr, MAT_C_DOUBLE, MAT_T_DOUBLE, 2, dims, values.data(), 0);
}

// MATLAB stores char as UTF-16 code units; `utf8` writes matio's 1-byte form.
matvar_t* text(const std::string& s, bool utf8 = false) {
  size_t dims[2] = {1, s.size()};
  if (utf8) {
    std::string copy = s;
    return Mat_VarCreate(nullptr, MAT_C_CHAR, MAT_T_UTF8, 2, dims, copy.data(), 0);
  }
  std::vector<uint16_t> units(s.begin(), s.end());
  return Mat_VarCreate(nullptr, MAT_C_CHAR, MAT_T_UINT16, 2, dims, units.data(), 0);
}

// char(rows...): one string per row, blank-padded, column-major.
matvar_t* char_matrix(const std::vector<std::string>& rows) {
  size_t cols = 0;
  for (const auto& r : rows) cols = std::max(cols, r.size());
  std::vector<uint16_t> units(rows.size() * cols, ' ');
  for (size_t r = 0; r < rows.size(); ++r) {
    for (size_t c = 0; c < rows[r].size(); ++c) units[r + rows.size() * c] = rows[r][c];
  }
  size_t dims[2] = {rows.size(), cols};
  return Mat_VarCreate(nullptr, MAT_C_CHAR, MAT_T_UINT16, 2, dims, units.data(), 0);
}

matvar_t* cell(std::vector<matvar_t*> items) {
  size_t dims[2] = {1, items.size()};
  return Mat_VarCreate(nullptr, MAT_C_CELL, MAT_T_CELL, 2, dims, items.data(), 0);
}

matvar_t* structure(const std::vector<std::pair<std::string, matvar_t*>>& fields) {
  std::vector<const char*> names;
  for (const auto& f : fields) names.push_back(f.first.c_str());
  names.push_back(nullptr);
  size_t dims[2] = {1, 1};
  matvar_t* s = Mat_VarCreateStruct2(nullptr, 2, dims, names.data());
  for (size_t i = 0; i < fields.size(); ++i)
    Mat_VarSetStructFieldByIndex(s, i, 0, fields[i].second);
  return s;
}

matvar_t* layer_struct(const FakeLayer& layer, MatLayout layout) {
  std::vector<std::pair<std::string, matvar_t*>> fields = {{"name", text(layer.name)},
                                                           {"type", text(layer.type)}};
  if (layer.type == "conv") {
    const bool fc = layer.name.rfind("fc", 0) == 0;
    const int64_t cout = layer.weight.size(3);
    if (layout == MatLayout::kCurrent) {
      fields.push_back({"weights", cell({single_array(layer.weight),
                                         single_array(layer.bias.reshape({1, cout}))})});
      fields.push_back({"pad", double_row(std::vector<double>(4, fc ? 0 : 1))});
      fields.push_back({"stride", double_row({1, 1})});
    } else {
      fields.push_back({"filters", single_array(layer.weight)});
      fields.push_back({"biases", single_array(layer.bias.reshape({cout, 1}))});
      fields.push_back({"pad", double_row({fc ? 0.0 : 1.0})});
      fields.push_back({"stride", double_row({1})});
    }
  } else if (layer.type == "pool") {
    fields.push_back({"method", text("max")});
    fields.push_back({"pool", double_row({2, 2})});
    fields.push_back({"stride", double_row({2, 2})});
    fields.push_back({"pad", double_row({0, 0, 0, 0})});
  } else if (layer.type == "bnorm") {
    const int64_t c = layer.weight.size(0);
    fields.push_back(
        {"weights", cell({single_array(torch::ones({c, 1})), single_array(torch::zeros({c, 1})),
                          single_array(torch::ones({c, 2}))})});
  } else if (layer.type == "dropout") {
    fields.push_back({"rate", double_row({0.5})});
  }
  return structure(fields);
}

// Writes `var` as top-level variable `name` and frees it.
void write_var(mat_t* mat, const char* name, matvar_t* var, matio_compression compression) {
  var->name = strdup(name);
  const int rc = Mat_VarWrite(mat, var, compression);
  Mat_VarFree(var);
  if (rc != 0) throw std::runtime_error(std::string("matio cannot write variable ") + name);
}

mat_t* create_mat(const std::string& path, mat_ft version) {
  mat_t* mat = Mat_CreateVer(path.c_str(), nullptr, version);
  if (mat == nullptr) throw std::runtime_error("matio cannot create " + path);
  return mat;
}

}  // namespace

void write_matconvnet(const std::string& path, const FakeNet& net, MatLayout layout,
                      MatFormat format) {
  const matio_compression compression =
      format == MatFormat::kV7 ? MAT_COMPRESSION_ZLIB : MAT_COMPRESSION_NONE;
  mat_t* mat = create_mat(path, format == MatFormat::kV73 ? MAT_FT_MAT73 : MAT_FT_MAT5);
  std::vector<matvar_t*> layers;
  for (const auto& layer : net.layers) layers.push_back(layer_struct(layer, layout));
  write_var(mat, "layers", cell(layers), compression);
  std::vector<matvar_t*> descriptions;
  for (const auto& c : net.classes) descriptions.push_back(text(c, /*utf8=*/true));
  matvar_t* normalization = structure({{"averageImage", single_array(net.average_image)},
                                       {"imageSize", double_row(net.image_size)},
                                       {"interpolation", text("bilinear")}});
  if (layout == MatLayout::kCurrent) {
    matvar_t* classes = structure({{"description", cell(descriptions)}});
    write_var(mat, "meta", structure({{"normalization", normalization}, {"classes", classes}}),
              compression);
  } else {
    for (matvar_t* d : descriptions) Mat_VarFree(d);
    write_var(mat, "normalization", normalization, compression);
    write_var(mat, "classes", structure({{"description", char_matrix(net.classes)}}), compression);
  }
  Mat_Close(mat);
}

void write_mat_row(const std::string& path, const std::string& name,
                   const std::vector<double>& values) {
  mat_t* mat = create_mat(path, MAT_FT_MAT5);
  write_var(mat, name.c_str(), double_row(values), MAT_COMPRESSION_NONE);
  Mat_Close(mat);
}

size_t conv_layer_index(const FakeNet& net, int k) {
  for (size_t i = 0; i < net.layers.size(); ++i) {
    if (net.layers[i].type == "conv" && k-- == 0) return i;
  }
  throw std::out_of_range("no such conv");
}

}  // namespace gpulab::testing
