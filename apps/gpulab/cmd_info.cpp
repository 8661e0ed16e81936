// gpulab info: devices, library versions, threads.
#include <torch/torch.h>
#include <CLI/CLI.hpp>

#include <nlohmann/json.hpp>
#include <thread>

#include "apps/gpulab/commands.h"
#include "gpulab/core/atomic_file.h"
#include "gpulab/core/compat.h"
#include "gpulab/core/device.h"

namespace gpulab::app {

Action add_info_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("info", "Devices, LibTorch/CUDA/cuDNN versions, threads");
  auto json_path = std::make_shared<std::string>();
  cmd->add_option("--json", *json_path, "Also write the information as JSON to FILE");
  return [json_path]() {
    core::configure_threads(0);
    nlohmann::json info;
    info["gpulab_version"] = GPULAB_VERSION;
    info["libtorch_version"] = compat::torch_version();
    info["cuda_available"] = torch::cuda::is_available();
    info["cudnn_available"] = torch::cuda::cudnn_is_available();
    info["cuda_devices"] = core::cuda_device_count();
    info["threads"] = torch::get_num_threads();
    info["hardware_concurrency"] = std::thread::hardware_concurrency();
    nlohmann::json devices = nlohmann::json::array();
    devices.push_back(core::describe_device(c10::Device(c10::kCPU)));
    for (int i = 0; i < core::cuda_device_count(); ++i) {
      devices.push_back(
          core::describe_device(c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(i))));
    }
    info["devices"] = devices;
    info["default_device"] =
        core::describe_device(core::resolve_device(core::ExecutionEnvironment::kAuto));
    std::printf("gpulab %s\n", GPULAB_VERSION);
    std::printf("LibTorch %s, CUDA %s, cuDNN %s\n", compat::torch_version(),
                torch::cuda::is_available() ? "available" : "not available",
                torch::cuda::cudnn_is_available() ? "available" : "not available");
    std::printf("Threads: %d (cores: %u)\n", torch::get_num_threads(),
                std::thread::hardware_concurrency());
    std::printf("Devices:\n");
    for (const auto& d : devices) std::printf("  %s\n", d.get<std::string>().c_str());
    std::printf("--env auto uses: %s\n", info["default_device"].get<std::string>().c_str());
    if (!json_path->empty()) core::write_file_atomic(*json_path, info.dump(2) + "\n");
    return 0;
  };
}

}  // namespace gpulab::app
