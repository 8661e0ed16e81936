// Fast neural style transfer (Johnson et al.): a feed-forward network
// (transformer_net) trained to restyle any image as one style image, by a
// perceptual loss measured through a frozen VGG: content features of the
// input kept, Gram matrices of the style image's features matched, and
// optionally a total-variation term. Data: folders of unlabelled images.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "gpulab/tasks/task.h"

namespace gpulab::tasks {

class PerceptualLoss;

// The task's options (train flags --style-image …, spec task_options):
//   style_image            FILE (required for training)
//   loss_network           vgg16 (default) | vgg19
//   loss_network_weights   FILE: torchvision VGG safetensors, or MatConvNet
//                          imagenet-vgg-verydeep-*.mat
//   content_layers         comma-separated tap names (default relu2_2)
//   style_layers           (default relu1_2,relu2_2,relu3_3,relu4_3)
//   content_weight         (default 1e5)
//   style_weight           (default 1e10)
//   tv_weight              (default 0)
//   style_size             the style image's shorter side in pixels; 0 =
//                          its own size (default)
//   preview_image          FILE stylised into RUN_DIR/previews/ at each
//                          checkpoint ("" = none)
// The defaults are pytorch/examples' fast_neural_style recipe (VGG-16,
// ImageNet weights); lengstrom's fast-style-transfer recipe is
// loss_network vgg19 with its .mat file, content relu4_2, style
// relu1_1,relu2_1,relu3_1,relu4_1,relu5_1 (docs/style-transfer.md).
struct StyleTransferOptions {
  std::string style_image;
  std::string loss_network = "vgg16";
  std::string loss_network_weights;
  std::vector<std::string> content_layers = {"relu2_2"};
  std::vector<std::string> style_layers = {"relu1_2", "relu2_2", "relu3_3", "relu4_3"};
  double content_weight = 1e5;
  double style_weight = 1e10;
  double tv_weight = 0;
  int style_size = 0;
  std::string preview_image;

  // Throws Error(kInvalidArgument) naming an unknown key or a bad value.
  static StyleTransferOptions from_json(const nlohmann::json& j);
  nlohmann::json to_json() const;
};

class StyleTransferTask : public Task {
 public:
  StyleTransferTask(std::string arch, nlohmann::json model_options, StyleTransferOptions options);
  ~StyleTransferTask() override;

  std::string name() const override { return "style"; }
  TargetKind target_kind() const override { return TargetKind::kNone; }
  // Every image below the data folder (local, s3:// or http(s) lists),
  // streamed through the decode threads: the shorter side resized to
  // image_size (default 256) and centre-cropped to a square; the network
  // sees 0-255 pixels (normalisation mean 0, std 1/255). --val-data or
  // --val-split give a validation loss.
  data::TrainingData open_training_data(const data::DataRequest& request) const override;
  models::ModelConfig model_config(const DataShape& data) const override;
  // Loads the loss network onto the device, frozen, and computes the style
  // image's Gram matrices once. Throws Error(kInvalidArgument) for a missing
  // style image or weight file, naming it.
  void setup(const TaskSetup& setup) override;
  // content + style + tv (each weighted), the parts named "content", "style"
  // and "tv".
  LossTerms loss(const at::Tensor& output, const data::Batch& batch) const override;
  std::unique_ptr<Metrics> metrics(Stage stage, c10::Device device) const override;
  std::string primary_metric() const override { return "loss"; }
  std::vector<ProgressColumn> progress_columns() const override;
  models::OutputKind output_kind() const override { return models::OutputKind::kImage; }
  bool fixed_input_size(const models::ModelConfig&) const override { return false; }
  // {"options": {...}, "style_image": its file name}.
  nlohmann::json metadata() const override;
  // With preview_image: the image stylised by the network as it stands,
  // written to RUN_DIR/previews/iteration-NNNNNNN.png (lengstrom's --test).
  void after_checkpoint(const CheckpointContext& context) override;

  const StyleTransferOptions& options() const { return options_; }

 private:
  std::string arch_;
  nlohmann::json model_options_;
  StyleTransferOptions options_;
  c10::Device device_ = c10::Device(c10::kCPU);
  data::Normalization normalization_;     // of the batches (0-255 pixels)
  std::unique_ptr<PerceptualLoss> loss_;  // null until setup() with a style image
};

}  // namespace gpulab::tasks
