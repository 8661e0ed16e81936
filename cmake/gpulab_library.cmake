# Helpers shared by every gpulab target: warnings, the LibTorch precompiled header.

# Flags LibTorch's config adds (e.g. -D_GLIBCXX_USE_CXX11_ABI) must reach every target.
separate_arguments(GPULAB_TORCH_CXX_FLAGS UNIX_COMMAND "${TORCH_CXX_FLAGS}")

# The first target compiles the precompiled header; the others reuse it.
set(GPULAB_PCH_OWNER "" CACHE INTERNAL "")

function(gpulab_target_defaults target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wno-unused-parameter
                                           ${GPULAB_TORCH_CXX_FLAGS})
  if(GPULAB_WITH_CUDA)
    target_compile_definitions(${target} PUBLIC GPULAB_WITH_CUDA=1)
  endif()
  if(GPULAB_USE_PCH)
    if(GPULAB_PCH_OWNER STREQUAL "")
      target_precompile_headers(${target} PRIVATE
                                "${PROJECT_SOURCE_DIR}/gpulab/core/pch.h")
      set(GPULAB_PCH_OWNER ${target} CACHE INTERNAL "")
    else()
      target_precompile_headers(${target} REUSE_FROM ${GPULAB_PCH_OWNER})
    endif()
  endif()
endfunction()

# gpulab_library(NAME SOURCES ... PUBLIC_LINKS ... PRIVATE_LINKS ...)
function(gpulab_library name)
  cmake_parse_arguments(ARG "" "" "SOURCES;PUBLIC_LINKS;PRIVATE_LINKS" ${ARGN})
  add_library(${name} STATIC ${ARG_SOURCES})
  if(GPULAB_UNITY_BUILD)
    # Batches of files compile as one: each file would otherwise load the
    # ~600 MB precompiled LibTorch header on its own (about 10 s a file on a
    # 2-core CI machine). Files with their own compile definitions stay apart.
    set_target_properties(${name} PROPERTIES UNITY_BUILD ON UNITY_BUILD_BATCH_SIZE 8)
  endif()
  target_include_directories(${name} PUBLIC ${PROJECT_SOURCE_DIR})
  target_link_libraries(${name} PUBLIC ${ARG_PUBLIC_LINKS} PRIVATE ${ARG_PRIVATE_LINKS})
  gpulab_target_defaults(${name})
endfunction()
