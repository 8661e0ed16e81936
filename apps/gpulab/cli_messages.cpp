#include "apps/gpulab/cli_messages.h"

#include <cstdio>
#include <map>

#include "apps/gpulab/train_spec.h"

namespace gpulab::app {
namespace {

// Keys whose flag is not "--" + the key with dashes, and keys no
// TrainOptionFlag names.
const std::map<std::string, std::string>& extra_flags() {
  static const std::map<std::string, std::string> flags = {
      {"data", "--data"},
      {"val_data", "--val-data"},
      {"val_limit", "--val-limit"},
      {"classes", "--classes"},
      {"num_classes", "--num-classes"},
      {"weights", "--weights"},
      {"model", "--model"},
      {"model_options", "--model-option"},
      {"task", "--task"},
      {"task_options", "--task-option"},
      {"class_weights", "--class-weights"},
      {"style_image", "--style-image"},
      {"loss_network", "--loss-network"},
      {"loss_network_weights", "--loss-network-weights"},
      {"content_layers", "--content-layers"},
      {"style_layers", "--style-layers"},
      {"content_weight", "--content-weight"},
      {"style_weight", "--style-weight"},
      {"tv_weight", "--tv-weight"},
      {"style_size", "--style-size"},
      {"preview_image", "--preview-image"},
      {"image_size", "--image-size"},
      {"channels", "--channels"},
      {"skip_bad_files", "--skip-bad-files"},
      {"max_pixels", "--max-pixels"},
      {"fetch_threads", "--fetch-threads"},
      {"out", "--out"},
      {"resume", "--resume"},
      {"freeze", "--freeze"},
      {"learn_rate_factors", "--learn-rate-factor"},
      {"max_restarts", "--max-restarts"},
      {"scale_with_workers", "--scale-with-workers"},
      {"sync_batchnorm", "--sync-batchnorm"},
      // gpulab stream and predict (the inference pool).
      {"workers", "--workers"},
      {"devices", "--devices"},
      {"scores", "--scores"},
      {"rate", "--rate"},
      {"stats_interval", "--stats-interval"},
      {"max_frames", "--max-frames"},
      {"queue_size", "--queue-size"},
      {"max_batch", "--max-batch"},
      {"max_delay_ms", "--max-delay-ms"},
      {"token_file", "--token-file"},
  };
  return flags;
}

const std::string* flag_for(const std::string& key) {
  static const std::map<std::string, std::string> flags = [] {
    std::map<std::string, std::string> all = extra_flags();
    for (const auto& f : train_option_flags()) all.emplace(f.key, f.flag);
    return all;
  }();
  const auto it = flags.find(key);
  return it == flags.end() ? nullptr : &it->second;
}

bool is_key_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

}  // namespace

std::string with_cli_flags(const std::string& message) {
  std::string out;
  out.reserve(message.size());
  size_t i = 0;
  while (i < message.size()) {
    const size_t open = message.find('`', i);
    if (open == std::string::npos) break;
    size_t close = open + 1;
    while (close < message.size() && is_key_char(message[close])) ++close;
    const bool is_key = close < message.size() && message[close] == '`' && close > open + 1;
    const std::string* flag =
        is_key ? flag_for(message.substr(open + 1, close - open - 1)) : nullptr;
    if (flag) {
      out.append(message, i, open - i);
      out += *flag;
      i = close + 1;
    } else {
      out.append(message, i, open + 1 - i);
      i = open + 1;
    }
  }
  out.append(message, i, std::string::npos);
  return out;
}

core::Log cli_log(std::FILE* out) {
  return core::Log([out](const std::string& text) {
    std::fprintf(out, "%s\n", with_cli_flags(text).c_str());
    std::fflush(out);
  });
}

}  // namespace gpulab::app
