// Precompiled header: LibTorch and the standard library, parsed once per build.
#pragma once
#include <torch/torch.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <map>
#include <memory>
#include <string>
#include <vector>
