#!/usr/bin/env bash
# Compiles the CUDA-only code paths (#ifdef GPULAB_WITH_CUDA, NCCL, CUDA
# graphs) with -fsyntax-only on a machine without a GPU: Debian LibTorch's
# ATen/c10 CUDA and c10d NCCL headers, and the CUDA toolkit's headers
# (cuda_runtime_api.h, nccl.h). Catches typos and API misuse before device
# time is spent; it cannot see API differences of newer LibTorch versions.
#
#   scripts/check-cuda-syntax.sh        # needs build-dev/ or build/ configured
# Environment: CUDA_INCLUDE (/usr/local/cuda/include), BUILD (build-dev).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CUDA_INCLUDE="${CUDA_INCLUDE:-/usr/local/cuda/include}"
BUILD="${BUILD:-$ROOT/build-dev}"
[ -f "$CUDA_INCLUDE/cuda_runtime_api.h" ] || {
  echo "error: no cuda_runtime_api.h in $CUDA_INCLUDE (set CUDA_INCLUDE)" >&2
  exit 2
}
# Debian's LibTorch lacks this generated header of CUDA builds.
stub="$(mktemp -d)"
trap 'rm -rf "$stub"' EXIT
mkdir -p "$stub/c10/cuda/impl"
printf '#pragma once\n#define C10_CUDA_BUILD_SHARED_LIBS\n' > "$stub/c10/cuda/impl/cuda_cmake_macros.h"
deps=/usr/include
grep -q 'GPULAB_DEPS_PREFIX:PATH=.\+' "$BUILD/CMakeCache.txt" 2>/dev/null &&
  deps="$(sed -n 's/^GPULAB_DEPS_PREFIX:PATH=//p' "$BUILD/CMakeCache.txt")/usr/include"
flags=(-std=c++17 -fsyntax-only -Wall -Wextra -Wno-unused-parameter -D_GLIBCXX_USE_CXX11_ABI=1
  -DFMT_HEADER_ONLY=1 -DUSE_DISTRIBUTED -DGPULAB_WITH_CUDA=1 -I"$ROOT"
  -isystem /usr/include/torch/csrc/api/include -isystem "$deps" -isystem "$CUDA_INCLUDE"
  -isystem "$stub")
status=0
check() {  # FILE EXTRA_FLAGS...
  local file="$1"
  shift
  echo "-- $file"
  g++ "${flags[@]}" "$@" "$ROOT/$file" || status=1
}
check gpulab/core/device.cpp
check bench/bench_device.cpp -DGPULAB_BENCH_CUDA_GRAPHS=1
check gpulab/dist/communicator.cpp -DGPULAB_WITH_NCCL=1 -DUSE_C10D_NCCL=1 -DGPULAB_WITH_GLOO=1 \
  -DUSE_C10D_GLOO=1
[ "$status" = 0 ] && echo "CUDA code paths: syntax OK" || echo "CUDA code paths: errors" >&2
exit "$status"
