// GPULAB_ARG: chained setters for options structs, like LibTorch's TORCH_ARG.
//   struct FooOptions { GPULAB_ARG(int, batch_size) = 128; };
//   FooOptions().batch_size(64).batch_size() == 64
#pragma once

#include <utility>

#define GPULAB_ARG(T, name)                                \
 public:                                                   \
  inline auto name(const T& new_##name)->decltype(*this) { \
    this->name##_ = new_##name;                            \
    return *this;                                          \
  }                                                        \
  inline auto name(T&& new_##name)->decltype(*this) {      \
    this->name##_ = std::move(new_##name);                 \
    return *this;                                          \
  }                                                        \
  inline const T& name() const noexcept {                  \
    return this->name##_;                                  \
  }                                                        \
  inline T& name() noexcept {                              \
    return this->name##_;                                  \
  }                                                        \
                                                           \
 private:                                                  \
  T name##_
