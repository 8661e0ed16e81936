// MatConvNet SimpleNN VGG -> torchvision VGG: reads the layer list, checks it
// is one of torchvision's VGG configurations and renames/permutes the weights.
#include "gpulab/models/matconvnet.h"

#include <torch/torch.h>

#include <algorithm>

#include "gpulab/core/error.h"
#include "gpulab/core/text.h"
#include "gpulab/models/mat_file.h"

namespace gpulab::models {
namespace {
using detail::mat_cell;
using detail::mat_field;
using detail::mat_numel;

// torchvision's VGG configurations with widths in units of the first conv's
// (64 in torchvision); 0 is a max-pool. Three fully connected layers follow.
struct VggConfig {
  int depth;
  std::vector<int> units;
};

const std::vector<VggConfig>& vgg_configs() {
  static const std::vector<VggConfig> configs = {
      {11, {1, 0, 2, 0, 4, 4, 0, 8, 8, 0, 8, 8, 0}},
      {13, {1, 1, 0, 2, 2, 0, 4, 4, 0, 8, 8, 0, 8, 8, 0}},
      {16, {1, 1, 0, 2, 2, 0, 4, 4, 4, 0, 8, 8, 8, 0, 8, 8, 8, 0}},
      {19, {1, 1, 0, 2, 2, 0, 4, 4, 4, 4, 0, 8, 8, 8, 8, 0, 8, 8, 8, 8, 0}},
  };
  return configs;
}

constexpr int kFullyConnected = 3;

int feature_convs(const VggConfig& config) {
  return static_cast<int>(
      std::count_if(config.units.begin(), config.units.end(), [](int u) { return u != 0; }));
}

// "C" per conv and "M" per pool in the features, then "FFF".
std::string layer_pattern(const VggConfig& config) {
  std::string pattern;
  for (int u : config.units) pattern += u != 0 ? 'C' : 'M';
  return pattern + std::string(kFullyConnected, 'F');
}

struct ConvLayer {
  std::string where;  // "layer 3 ('conv1_2')", for messages
  matvar_t* layer;
  at::Tensor weight;  // MATLAB order [H, W, Cin, Cout]
  at::Tensor bias;    // [Cout]
  int64_t cin() const { return weight.size(2); }
  int64_t cout() const { return weight.size(3); }
};

// Fields such as `pad` (a scalar or [top bottom left right]) and `stride` hold
// one value repeated; when present, every entry must be `expected`.
void check_all_equal(matvar_t* layer, const char* name, double expected, const std::string& where,
                     const std::string& path) {
  matvar_t* var = mat_field(layer, name);
  if (var == nullptr || mat_numel(var) == 0) return;
  at::Tensor values = detail::mat_tensor(var, where + "'s " + name, path).reshape({-1});
  std::vector<float> found(values.data_ptr<float>(), values.data_ptr<float>() + values.numel());
  GPULAB_CHECK(std::all_of(found.begin(), found.end(), [&](float v) { return v == expected; }),
               ErrorKind::kCorruptData,
               "'{}': {} has {} [{}]; torchvision's VGG has {} {} here, so the weights would not "
               "mean the same",
               path, where, name, fmt::join(found, " "), name, expected);
}

ConvLayer read_conv(matvar_t* layer, const std::string& where, const std::string& path) {
  matvar_t* w = nullptr;
  matvar_t* b = nullptr;
  if (matvar_t* weights = mat_field(layer, "weights")) {
    GPULAB_CHECK(weights->class_type == MAT_C_CELL && mat_numel(weights) >= 1,
                 ErrorKind::kCorruptData, "'{}': {}'s 'weights' must be a cell {{W, b}}, found {}",
                 path, where, detail::mat_describe(weights));
    w = mat_cell(weights, 0);
    b = mat_cell(weights, 1);
  } else {  // the 2014 beta files
    w = mat_field(layer, "filters");
    b = mat_field(layer, "biases");
    GPULAB_CHECK(w != nullptr, ErrorKind::kCorruptData,
                 "'{}': conv {} has neither 'weights' nor 'filters'", path, where);
  }
  at::Tensor weight = detail::mat_tensor(w, where + "'s weights", path);
  GPULAB_CHECK(weight.dim() <= 4, ErrorKind::kCorruptData,
               "'{}': {} has a {}-D weight ({}); expected H x W x Cin x Cout", path, where,
               weight.dim(), detail::mat_describe(w));
  while (weight.dim() < 4) weight = weight.unsqueeze(-1);  // MATLAB drops trailing 1s
  const int64_t cout = weight.size(3);
  at::Tensor bias = torch::zeros({cout});  // MatConvNet allows an empty bias
  if (mat_numel(b) > 0) {
    bias = detail::mat_tensor(b, where + "'s biases", path);
    const auto sizes = bias.sizes();
    GPULAB_CHECK(
        bias.numel() == cout &&
            std::count_if(sizes.begin(), sizes.end(), [](int64_t s) { return s != 1; }) <= 1,
        ErrorKind::kCorruptData, "'{}': {} has biases of {} for {} output channels; expected 1x{}",
        path, where, detail::mat_describe(b), cout, cout);
    bias = bias.reshape({cout});
  }
  return {where, layer, weight, bias};
}

void check_pool(matvar_t* layer, const std::string& where, const std::string& path) {
  if (matvar_t* method = mat_field(layer, "method")) {
    std::string m = detail::mat_string(method, where + "'s method", path);
    GPULAB_CHECK(m == "max", ErrorKind::kCorruptData,
                 "'{}': {} is a '{}' pool; torchvision's VGG max-pools", path, where, m);
  }
  check_all_equal(layer, "pool", 2, where, path);
  check_all_equal(layer, "stride", 2, where, path);
  check_all_equal(layer, "pad", 0, where, path);
}

// Reads the layer list, keeping the convs and a C/M/F pattern of the layers
// that shape the network (C for every conv until the depth is known).
std::vector<ConvLayer> read_layers(matvar_t* layers, std::string& pattern,
                                   const std::string& path) {
  GPULAB_CHECK(layers->class_type == MAT_C_CELL, ErrorKind::kCorruptData,
               "'{}': 'layers' is a {}, not a cell array of layers{}", path,
               detail::mat_describe(layers),
               layers->class_type == MAT_C_STRUCT
                   ? " — this looks like a DagNN model; only SimpleNN models (such as "
                     "imagenet-vgg-verydeep-19.mat) are supported"
                   : "");
  std::vector<ConvLayer> convs;
  for (size_t i = 0, n = mat_numel(layers); i < n; ++i) {
    matvar_t* layer = mat_cell(layers, i);
    GPULAB_CHECK(layer != nullptr && layer->class_type == MAT_C_STRUCT && mat_numel(layer) == 1,
                 ErrorKind::kCorruptData, "'{}': layers{{{}}} must be a 1x1 struct, found {}", path,
                 i + 1, detail::mat_describe(layer));
    const std::string index = fmt::format("layers{{{}}}", i + 1);
    matvar_t* name_var = mat_field(layer, "name");
    const std::string name =
        name_var != nullptr ? detail::mat_string(name_var, index + ".name", path) : "";
    const std::string where = fmt::format("layer {} ('{}')", i + 1, name);
    const std::string type =
        core::to_lower(detail::mat_string(mat_field(layer, "type"), index + ".type", path));
    if (type == "conv") {
      convs.push_back(read_conv(layer, where, path));
      pattern += 'C';
    } else if (type == "pool") {
      check_pool(layer, where, path);
      pattern += 'M';
    } else if (type == "relu") {
      check_all_equal(layer, "leak", 0, where, path);
    } else if (type == "bnorm") {
      GPULAB_FAIL(ErrorKind::kCorruptData,
                  "'{}': {} is batch normalisation ('bnorm'), which is not supported: "
                  "torchvision's plain VGG has none — merge it into the conv before it "
                  "(MatConvNet's cnn_imagenet_deploy does) and export again",
                  path, where);
    } else if (type == "lrn") {
      GPULAB_FAIL(ErrorKind::kCorruptData,
                  "'{}': {} is local response normalisation ('lrn'), which torchvision's VGG "
                  "does not have — is this a VGG-F/M/S or AlexNet-style model?",
                  path, where);
    } else if (type != "dropout" && type != "softmax" && type != "softmaxloss") {
      GPULAB_FAIL(ErrorKind::kCorruptData,
                  "'{}': {} has type '{}', which is not supported; a VGG has conv, relu, pool, "
                  "dropout and softmax layers",
                  path, where, type);
    }
  }
  return convs;
}

const VggConfig& config_for(size_t convs, const std::string& path) {
  std::vector<std::string> known;
  for (const auto& config : vgg_configs()) {
    if (static_cast<size_t>(feature_convs(config) + kFullyConnected) == convs) return config;
    known.push_back(fmt::format("vgg{} has {} ({} + {} fully connected)", config.depth,
                                feature_convs(config) + kFullyConnected, feature_convs(config),
                                kFullyConnected));
  }
  GPULAB_FAIL(ErrorKind::kCorruptData, "'{}' has {} conv layers, which is no VGG: {}", path, convs,
              fmt::join(known, ", "));
}

// Checks kernels, padding and channels against `config` and returns the width
// (first conv's output channels).
void check_shapes(const VggConfig& config, const std::vector<ConvLayer>& convs,
                  const std::string& path) {
  const std::string arch = fmt::format("vgg{}", config.depth);
  const int64_t width = convs[0].cout();
  const int features = feature_convs(config);
  std::vector<int64_t> units;
  for (int u : config.units) {
    if (u != 0) units.push_back(u);
  }
  std::vector<int64_t> found;
  for (int k = 0; k < features; ++k) found.push_back(convs[k].cout());

  int64_t channels = 3;  // RGB
  for (size_t k = 0; k < convs.size(); ++k) {
    const ConvLayer& conv = convs[k];
    const bool fc = static_cast<int>(k) >= features;
    GPULAB_CHECK(conv.cin() == channels, ErrorKind::kCorruptData,
                 "'{}': {} takes {} input channels but {} gives {} — the layers do not chain", path,
                 conv.where, conv.cin(), k == 0 ? "an RGB image" : convs[k - 1].where, channels);
    const int64_t kernel = !fc ? 3 : static_cast<int>(k) == features ? 7 : 1;
    GPULAB_CHECK(conv.weight.size(0) == kernel && conv.weight.size(1) == kernel,
                 ErrorKind::kCorruptData, "'{}': {} has a {}x{} kernel; {} has {}x{} here", path,
                 conv.where, conv.weight.size(0), conv.weight.size(1), arch, kernel, kernel);
    check_all_equal(conv.layer, "pad", fc ? 0 : 1, conv.where, path);
    check_all_equal(conv.layer, "stride", 1, conv.where, path);
    if (!fc) {
      GPULAB_CHECK(conv.cout() == units[k] * width, ErrorKind::kCorruptData,
                   "'{}': {} has {} output channels but {} with width w = {} needs {}: the conv "
                   "widths must be [{}] x w, found [{}]",
                   path, conv.where, conv.cout(), arch, width, units[k] * width,
                   fmt::join(units, ", "), fmt::join(found, ", "));
    } else if (static_cast<int>(k) == features + 1) {
      GPULAB_CHECK(conv.cout() == conv.cin(), ErrorKind::kCorruptData,
                   "'{}': {} maps {} to {} features; torchvision's fc7 keeps the hidden size", path,
                   conv.where, conv.cin(), conv.cout());
    }
    channels = conv.cout();
  }
}

// MatConvNet H x W x Cin x Cout -> torch [Cout, Cin, H, W]; fully connected
// layers then flatten [Cin, H, W] in torch's order: c * H * W + h * W + w.
at::Tensor torch_weight(const ConvLayer& conv, bool linear) {
  at::Tensor w = conv.weight.permute({3, 2, 0, 1});
  if (linear) w = w.reshape({conv.cout(), -1});
  return w.contiguous();
}

// normalization.averageImage: 3 values or an H x W x 3 image; imageSize [H W 3 ...].
void read_normalization(matvar_t* norm, MatConvNetImport& out, const std::string& path) {
  out.mean.assign(3, 0.0);
  out.std.assign(3, 1.0 / 255.0);
  matvar_t* average = mat_field(norm, "averageImage");
  if (mat_numel(average) > 0) {
    at::Tensor image = detail::mat_tensor(average, "normalization.averageImage", path);
    at::Tensor per_channel;
    if (image.numel() == 3) {
      per_channel = image.reshape({3});
    } else {
      GPULAB_CHECK(image.dim() == 3 && image.size(2) == 3, ErrorKind::kCorruptData,
                   "'{}': normalization.averageImage is {}; expected 3 values or an H x W x 3 "
                   "image",
                   path, detail::mat_describe(average));
      per_channel = image.to(torch::kFloat64).mean(std::vector<int64_t>{0, 1});
    }
    per_channel = per_channel.to(torch::kFloat64).contiguous();
    for (int c = 0; c < 3; ++c) out.mean[c] = per_channel[c].item<double>() / 255.0;
  }
  matvar_t* size = mat_field(norm, "imageSize");
  if (mat_numel(size) > 0) {
    at::Tensor hw = detail::mat_tensor(size, "normalization.imageSize", path).reshape({-1});
    GPULAB_CHECK(hw.numel() >= 2 && hw[0].item<float>() >= 1 && hw[1].item<float>() >= 1,
                 ErrorKind::kCorruptData,
                 "'{}': normalization.imageSize is {}; expected [height width 3]", path,
                 detail::mat_describe(size));
    out.input_height = static_cast<int64_t>(hw[0].item<float>());
    out.input_width = static_cast<int64_t>(hw[1].item<float>());
  }
}

// classes.description: a cell of strings, or a char matrix with one per row.
std::vector<std::string> read_class_names(matvar_t* classes, const std::string& path) {
  matvar_t* description = mat_field(classes, "description");
  if (description == nullptr) return {};
  if (description->class_type != MAT_C_CELL) {
    return detail::mat_char_rows(description, "classes.description", path);
  }
  std::vector<std::string> names;
  for (size_t i = 0, n = mat_numel(description); i < n; ++i) {
    names.push_back(detail::mat_string(mat_cell(description, i),
                                       fmt::format("classes.description{{{}}}", i + 1), path));
  }
  return names;
}

}  // namespace

MatConvNetImport load_matconvnet_vgg(const std::string& path) {
  detail::MatFilePtr mat = detail::open_mat_file(path);
  const std::vector<std::string> variables = detail::mat_variable_names(mat.get(), path);
  auto has = [&](const std::string& name) {
    return std::find(variables.begin(), variables.end(), name) != variables.end();
  };
  GPULAB_CHECK(has("layers"), ErrorKind::kCorruptData,
               "'{}' has no 'layers' variable (found [{}]); is it a MatConvNet SimpleNN model?",
               path, fmt::join(variables, ", "));
  detail::MatVarPtr layers = detail::read_mat_variable(mat.get(), "layers", path);

  std::string pattern;
  std::vector<ConvLayer> convs = read_layers(layers.get(), pattern, path);
  const VggConfig& config = config_for(convs.size(), path);
  const int features = feature_convs(config);
  for (size_t i = 0, seen = 0; i < pattern.size(); ++i) {
    if (pattern[i] == 'C' && static_cast<int>(seen++) >= features) pattern[i] = 'F';
  }
  GPULAB_CHECK(pattern == layer_pattern(config), ErrorKind::kCorruptData,
               "'{}': the layers run {} but torchvision's vgg{} runs {} (C = conv, M = max-pool, "
               "F = fully connected)",
               path, pattern, config.depth, layer_pattern(config));
  check_shapes(config, convs, path);

  MatConvNetImport out;
  out.arch = fmt::format("vgg{}", config.depth);
  const int64_t hidden = convs[features].cout();
  out.options = {{"depth", config.depth}, {"width", convs[0].cout()}, {"hidden", hidden}};
  out.num_classes = convs.back().cout();
  // torchvision's features Sequential: Conv2d + ReLU per conv, MaxPool2d per M.
  int module = 0;
  size_t k = 0;
  for (int u : config.units) {
    if (u == 0) {
      module += 1;
      continue;
    }
    const std::string prefix = fmt::format("features.{}.", module);
    out.tensors[prefix + "weight"] = torch_weight(convs[k], /*linear=*/false);
    out.tensors[prefix + "bias"] = convs[k].bias.contiguous();
    module += 2;
    ++k;
  }
  // classifier: Linear, ReLU, Dropout, Linear, ReLU, Dropout, Linear.
  for (int fc = 0; fc < kFullyConnected; ++fc, ++k) {
    const std::string prefix = fmt::format("classifier.{}.", 3 * fc);
    out.tensors[prefix + "weight"] = torch_weight(convs[k], /*linear=*/true);
    out.tensors[prefix + "bias"] = convs[k].bias.contiguous();
  }

  // Newer files keep normalisation and classes in `meta`, older ones at the top.
  detail::MatVarPtr meta =
      has("meta") ? detail::read_mat_variable(mat.get(), "meta", path) : nullptr;
  detail::MatVarPtr old_norm = !meta && has("normalization")
                                   ? detail::read_mat_variable(mat.get(), "normalization", path)
                                   : nullptr;
  detail::MatVarPtr old_classes =
      !meta && has("classes") ? detail::read_mat_variable(mat.get(), "classes", path) : nullptr;
  read_normalization(meta ? mat_field(meta.get(), "normalization") : old_norm.get(), out, path);
  out.class_names =
      read_class_names(meta ? mat_field(meta.get(), "classes") : old_classes.get(), path);
  GPULAB_CHECK(
      out.class_names.empty() || static_cast<int64_t>(out.class_names.size()) == out.num_classes,
      ErrorKind::kCorruptData, "'{}' names {} classes but its last layer has {} outputs", path,
      out.class_names.size(), out.num_classes);
  return out;
}

}  // namespace gpulab::models
