#!/usr/bin/env bash
# Configures and builds gpulab (Release) into build/.
# GPULAB_CCACHE=1 compiles through ccache; off by default, because ccache
# hashes the ~600 MB precompiled LibTorch header for every file, which costs
# more than it saves on a cold cache (CI) and on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
launcher=()
if [ "${GPULAB_CCACHE:-0}" = 1 ] && command -v ccache >/dev/null; then
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release "${launcher[@]}" "$@"
cmake --build build -j"$(nproc)"
