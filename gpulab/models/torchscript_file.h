// Loading a TorchScript archive (.pt) with an error that says what is wrong
// with the file: missing, cut short, damaged, or a torch.save pickle.
#pragma once

#include <string>
#include <unordered_map>

namespace torch::jit {
struct Module;
}

namespace gpulab::models {

// torch::jit::load onto the CPU; `extra_files` (e.g. {"gpulab.json", ""})
// receives the archive's extra files of those names. Throws Error(kNotFound)
// for a missing file and Error(kCorruptData) naming the file: a zip archive
// without its end-of-archive record or central directory is truncated or
// damaged; one holding no TorchScript code is most likely a torch.save
// pickle (the message says how to convert it).
torch::jit::Module load_torchscript_file(
    const std::string& path, std::unordered_map<std::string, std::string>* extra_files = nullptr);

// Why `path`, a zip archive, is not whole ("" when its end-of-archive record
// and central directory are where they should be). For the messages above.
std::string zip_damage(const std::string& path);

}  // namespace gpulab::models
