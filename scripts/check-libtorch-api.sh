#!/usr/bin/env bash
# Compiles every translation unit (-fsyntax-only) against Debian trixie's CUDA
# LibTorch 2.6 headers with CUDA, CUDA graphs and NCCL on: the API checks a
# GPU machine's first build would otherwise make, taken here on a CPU machine
# whose own LibTorch is 1.13. Nothing is installed: the packages are fetched
# with apt-get download into WORK and unpacked there (about 1.1 GB fetched;
# only headers kept).
#
#   scripts/check-libtorch-api.sh [NAME ...]      # NAMEs: only files matching
#
# Environment: WORK (/tmp/libtorch-api), STD (c++17; c++20 as LibTorch >= 2.10
# needs), JOBS (nproc).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WORK="${WORK:-/tmp/libtorch-api}"
STD="${STD:-c++17}"
JOBS="${JOBS:-$(nproc)}"
HEADERS="$WORK/root"

if [ ! -f "$HEADERS/usr/include/ATen/cuda/CUDAGraph.h" ]; then
  mkdir -p "$WORK/lists/partial" "$WORK/cache/archives/partial" "$WORK/debs" "$HEADERS"
  echo "deb http://deb.debian.org/debian trixie main contrib non-free" > "$WORK/sources.list"
  apt=(-oDir::Etc::SourceList="$WORK/sources.list" -oDir::Etc::SourceParts=/dev/null
    -oDir::State::Lists="$WORK/lists" -oDir::Cache="$WORK/cache" -oAPT::Architecture=amd64)
  apt-get "${apt[@]}" update
  chmod 777 "$WORK/debs"  # apt-get download may run as _apt
  (cd "$WORK/debs" && apt-get "${apt[@]}" download libtorch-cuda-dev libgloo-dev \
    libgloo-cuda-dev libnccl-dev libcu++-dev nvidia-cuda-dev)
  for deb in "$WORK"/debs/*.deb; do
    case "$deb" in
      *nvidia-cuda-dev*) dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$HEADERS" --wildcards './usr/include/*' ;;
      *) dpkg -x "$deb" "$HEADERS" ;;
    esac
  done
  rm -rf "$WORK/debs" "$WORK/cache"
fi

cmake -S "$ROOT" -B "$WORK/build" -G Ninja -DCMAKE_EXPORT_COMPILE_COMMANDS=ON \
  -DGPULAB_USE_PCH=OFF -DGPULAB_UNITY_BUILD=OFF >/dev/null
python3 "$ROOT/scripts/check_libtorch_api.py" "$HEADERS" "$WORK/build/compile_commands.json" \
  --std "$STD" --jobs "$JOBS" "$@"
