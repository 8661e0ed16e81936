// A registry of things by name, as every registry of gpulab behaves (models,
// tasks): names match case-insensitively, a duplicate is an error, an unknown
// name lists the valid ones. Thread-safe.
#pragma once

#include <fmt/format.h>

#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "gpulab/core/error.h"
#include "gpulab/core/text.h"

namespace gpulab::core {

template <typename T>
class NameRegistry {
 public:
  // `what` names the kind in messages ("model", "task").
  explicit NameRegistry(std::string what) : what_(std::move(what)) {}
  NameRegistry(const NameRegistry&) = delete;
  NameRegistry& operator=(const NameRegistry&) = delete;

  // Throws Error(kInvalidArgument) when `name` is taken (in any case).
  void add(const std::string& name, T value) {
    std::lock_guard<std::mutex> lock(mutex_);
    const std::string key = to_lower(name);
    GPULAB_CHECK(entries_.count(key) == 0, ErrorKind::kInvalidArgument,
                 "{} '{}' is registered twice", what_, name);
    entries_.emplace(key, std::make_pair(name, std::move(value)));
  }

  // The registered spelling of `name`; throws Error(kInvalidArgument)
  // listing the valid names for an unknown one.
  std::string resolve(const std::string& name) const {
    std::lock_guard<std::mutex> lock(mutex_);
    return find(name).first;
  }

  // A copy of the value registered as `name` (see resolve).
  T get(const std::string& name) const {
    std::lock_guard<std::mutex> lock(mutex_);
    return find(name).second;
  }

  bool contains(const std::string& name) const {
    std::lock_guard<std::mutex> lock(mutex_);
    return entries_.count(to_lower(name)) > 0;
  }

  // Registered spellings, sorted case-insensitively.
  std::vector<std::string> names() const {
    std::lock_guard<std::mutex> lock(mutex_);
    std::vector<std::string> out;
    for (const auto& [key, entry] : entries_) out.push_back(entry.first);
    return out;
  }

 private:
  const std::pair<std::string, T>& find(const std::string& name) const {
    const auto it = entries_.find(to_lower(name));
    if (it == entries_.end()) {
      std::vector<std::string> valid;
      for (const auto& [key, entry] : entries_) valid.push_back(entry.first);
      GPULAB_FAIL(ErrorKind::kInvalidArgument, "unknown {} '{}'; valid: {}", what_, name,
                  fmt::join(valid, ", "));
    }
    return it->second;
  }

  std::string what_;
  mutable std::mutex mutex_;                                  // guards entries_
  std::map<std::string, std::pair<std::string, T>> entries_;  // lower case -> (name, value)
};

}  // namespace gpulab::core
