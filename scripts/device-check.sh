#!/usr/bin/env bash
# The one command for a session on the GPU machine: builds the reduced build
# (LibTorch from the machine's PyTorch, small dependencies and OpenCV core +
# imgproc from .devdeps/, JPEG decoding with libjpeg-turbo), runs the GPU
# tests (ctest -L gpu), then the GPU benchmarks beside their PyTorch peers,
# the loader and end-to-end training from a JPEG folder last, and leaves
# everything in $OUT: device-check.log (all
# output), device-check.json (every result, stage times, a summary) and
# ctest-gpu.xml. Each stage runs under its own timeout inside one overall
# budget; a failed stage is recorded and the next one runs.
#
# GPU machine (see bench/README.md for the exact run call):
#   scripts/fetch-device-deps.sh          # once, here: fills .devdeps/
#   scripts/device-check.sh               # there, carry [".devdeps"]
# Dry run on this CPU machine (tiny sizes; only the CUDA parts go untested):
#   DEVICE_CHECK_DEVICE=cpu OUT=/tmp/device-check scripts/device-check.sh
#
# Environment: OUT (device-check-out/), DEVICE_CHECK_DEVICE (cuda | cpu),
# DEVICE_CHECK_BUDGET (seconds for everything, 560), BUILD (build-device/),
# JOBS (nproc), PYTHON (python3; /usr/bin/python3 in a dry run),
# TORCH_CMAKE_PREFIX (from PYTHON's torch; the system's in a dry run),
# ROUNDS (2: benchmark rounds, ours and the peer alternating), E2E (after:
# the loader and end-to-end stages after the first model and data-parallel
# runs; first: before the benchmarks; skip), SEG (on: the segmentation
# networks, erfnet and deeplabv3plus, right after the first model round; skip),
# STYLE (on: fast neural style transfer, transformer_net's training step with
# the VGG-16 perceptual loss and its inference, right after SEG; skip),
# STREAM (on: `gpulab stream` of a style network on a synthetic 1080p camera,
# after STYLE; skip).
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
DEVICE="${DEVICE_CHECK_DEVICE:-cuda}"
OUT="${OUT:-$ROOT/device-check-out}"
BUDGET="${DEVICE_CHECK_BUDGET:-560}"
BUILD="${BUILD:-$ROOT/build-device}"
JOBS="${JOBS:-$(nproc)}"
ROUNDS="${ROUNDS:-2}"
E2E="${E2E:-after}"
SEG="${SEG:-on}"
STYLE="${STYLE:-on}"
STREAM="${STREAM:-on}"
DEPS="$ROOT/.devdeps"
if [ "$DEVICE" = cpu ]; then PYTHON="${PYTHON:-/usr/bin/python3}"; else PYTHON="${PYTHON:-python3}"; fi
export PYTHONUNBUFFERED=1

mkdir -p "$OUT"
RESULTS="$(mktemp -d)"
LOG="$OUT/device-check.log"
exec > >(tee -a "$LOG") 2>&1
START=$(date +%s)
echo "device-check: device $DEVICE, budget ${BUDGET}s, out $OUT, commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"

remaining() { echo $((BUDGET - ($(date +%s) - START))); }
# stage NAME SECONDS COMMAND...: runs under its timeout (cut to the budget
# left, less 15 s for the summary); records rc and seconds in stages.tsv.
stage() {
  local name="$1" limit="$2"
  shift 2
  local left=$(($(remaining) - 15))
  if [ "$left" -lt 10 ]; then
    echo "== stage $name: SKIPPED (budget spent)"
    printf '%s\t%s\t%s\n' "$name" skipped 0 >> "$RESULTS/stages.tsv"
    return 125
  fi
  [ "$limit" -gt "$left" ] && limit=$left
  echo "== stage $name (timeout ${limit}s) at +$(($(date +%s) - START))s"
  local t0=$(date +%s)
  timeout --kill-after=10 "$limit" "$@"
  local rc=$?
  local dt=$(($(date +%s) - t0))
  echo "== stage $name: rc $rc in ${dt}s"
  printf '%s\t%s\t%s\n' "$name" "$rc" "$dt" >> "$RESULTS/stages.tsv"
  return $rc
}

# --- what the machine has ---------------------------------------------------
machine_facts() {
  set -x
  uname -a; nproc; ldd --version | head -n1; g++ --version | head -n1
  cmake --version | head -n1; ninja --version
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.max.sm --format=csv
  command -v nvcc && nvcc --version | tail -n2
  "$PYTHON" -c 'import torch, sys; print("torch", torch.__version__, "cuda", torch.version.cuda, "cxx11abi", torch.compiled_with_cxx11_abi(), "gpus", torch.cuda.device_count(), "nccl", torch.cuda.nccl.version() if torch.cuda.is_available() else None); print(torch.utils.cmake_prefix_path)'
  "$PYTHON" -c 'import torchvision; print("torchvision", torchvision.__version__)'
  set +x
  echo "torch include: fmt $([ -f "$TORCH_INCLUDE/fmt/format.h" ] && echo yes || echo no), gloo $([ -f "$TORCH_INCLUDE/gloo/config.h" ] && echo yes || echo no), C++ standard $CXX_STD"
  echo "nccl.h: ${NCCL_INCLUDE_DIR:-not found}"
}

if [ "$DEVICE" = cpu ]; then
  TORCH_CMAKE_PREFIX="${TORCH_CMAKE_PREFIX:-}"
  TORCH_INCLUDE=/usr/include
else
  TORCH_CMAKE_PREFIX="${TORCH_CMAKE_PREFIX:-$("$PYTHON" -c 'import torch;print(torch.utils.cmake_prefix_path)')}"
  TORCH_INCLUDE="$("$PYTHON" -c 'import os,torch;print(os.path.join(os.path.dirname(torch.__file__),"include"))')"
fi
# LibTorch versions whose headers demand C++20 say so in an #error line.
CXX_STD=17
if grep -rqs "C++20 or later compatible compiler is required" "$TORCH_INCLUDE/c10/macros" \
    "$TORCH_INCLUDE/torch/csrc/api/include/torch/all.h" "$TORCH_INCLUDE/ATen/ATen.h"; then
  CXX_STD=20
fi
NCCL_INCLUDE_DIR=""
if [ "$DEVICE" != cpu ]; then
  site="$(dirname "$(dirname "$TORCH_INCLUDE")")"
  nccl_h="$(find "$site/nvidia" /usr/local/cuda/include /usr/include -name nccl.h 2>/dev/null | head -n1)"
  [ -n "$nccl_h" ] && NCCL_INCLUDE_DIR="$(dirname "$nccl_h")" && export NCCL_INCLUDE_DIR
fi
export PYTHON TORCH_INCLUDE CXX_STD NCCL_INCLUDE_DIR
export -f machine_facts
stage machine 60 bash -c machine_facts

# --- OpenCV from .devdeps: does it link and load here? --------------------------
# Seconds to find out, before the build depends on it: every program links
# gpulab_data, so an OpenCV that cannot load would fail every stage after.
# Without it the build goes on as before, only without the loader stages.
opencv_probe() {
  local dir lib="$DEPS/usr/lib/x86_64-linux-gnu" rc
  dir="$(mktemp -d)"
  cat > "$dir/probe.cpp" <<'CPP'
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include <cstdio>

int main() {
  cv::Mat a(64, 48, CV_8UC3, cv::Scalar(10, 20, 30)), b;
  cv::resize(a, b, cv::Size(24, 32), 0, 0, cv::INTER_AREA);
  cv::cvtColor(b, b, cv::COLOR_BGR2RGB);
  std::printf("OpenCV %s: resize and cvtColor work (%dx%d)\n", CV_VERSION, b.cols, b.rows);
  return b.at<cv::Vec3b>(0, 0)[0] == 30 ? 0 : 1;
}
CPP
  "${CXX:-c++}" -std=c++17 "$dir/probe.cpp" -o "$dir/probe" -I"$DEPS/usr/include/opencv4" \
    -L"$lib" -lopencv_imgproc -lopencv_core -Wl,-rpath,"$lib" && "$dir/probe" &&
    ldd "$dir/probe" | grep -E 'opencv|tbb|jpeg|not found'
  rc=$?
  rm -rf "$dir"
  return $rc
}
export DEPS
export -f opencv_probe
OPENCV_ARGS=(-DGPULAB_WITH_OPENCV=ON -DGPULAB_WITH_IMGCODECS=OFF)
if ! stage opencv-probe 60 bash -c opencv_probe; then
  echo "device-check: OpenCV from .devdeps does not link or load here (run" \
    "scripts/fetch-device-deps.sh?): building without it, so no loader stages"
  OPENCV_ARGS=(-DGPULAB_WITH_OPENCV=OFF)
fi

# --- configure and build ------------------------------------------------------
cmake_args=(-S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release
  -DGPULAB_DEPS_PREFIX="$DEPS" "${OPENCV_ARGS[@]}" -DGPULAB_WITH_MATIO=OFF
  -DGPULAB_WITH_CURL=OFF -DGPULAB_CXX_STANDARD="$CXX_STD")
[ -n "$TORCH_CMAKE_PREFIX" ] && cmake_args+=(-DCMAKE_PREFIX_PATH="$TORCH_CMAKE_PREFIX")
if [ "$DEVICE" != cpu ]; then
  nvcc="$(command -v nvcc || ls /usr/local/cuda/bin/nvcc 2>/dev/null || true)"
  if [ -n "$nvcc" ]; then
    cmake_args+=(-DCMAKE_CUDA_COMPILER="$nvcc" -DCUDAToolkit_ROOT="$(dirname "$(dirname "$nvcc")")")
  fi
  # Hopper only: no architecture probing, one target.
  export TORCH_CUDA_ARCH_LIST="${TORCH_CUDA_ARCH_LIST:-9.0}"
  cmake_args+=(-DCMAKE_CUDA_ARCHITECTURES=90)
fi
targets=(gpulab bench_model_throughput bench_train_throughput bench_dist_step
  bench_style_throughput gpulab_cuda_tests)
stage configure 120 cmake "${cmake_args[@]}"
stage build 330 cmake --build "$BUILD" -j"$JOBS" --target "${targets[@]}" -- -k 0
# A LibTorch whose CUDA-graph API differs: core/cuda_graph.cpp did not
# compile, so nothing linked; build again without graphs (steps run eagerly).
if [ ! -f "$BUILD/gpulab/CMakeFiles/gpulab_core.dir/core/cuda_graph.cpp.o" ]; then
  stage configure-nographs 60 cmake "${cmake_args[@]}" -DGPULAB_WITH_CUDA_GRAPHS=OFF
  stage build-nographs 180 cmake --build "$BUILD" -j"$JOBS" --target "${targets[@]}" -- -k 0
fi
for t in "${targets[@]}"; do
  f="$(find "$BUILD" -maxdepth 3 -name "$t" -type f -perm -u+x | head -n1)"
  echo "built $t: ${f:-MISSING}"
done
# Where the programs find OpenCV and what it loads (their RUNPATH, then
# OpenCV's own, $ORIGIN: .devdeps).
[ -x "$BUILD/apps/gpulab/gpulab" ] &&
  ldd "$BUILD/apps/gpulab/gpulab" | grep -E 'opencv|tbb|jpeg|not found'

# --- GPU tests ----------------------------------------------------------------
if [ -x "$BUILD/tests/gpulab_cuda_tests" ]; then
  stage tests 150 ctest --test-dir "$BUILD" -L gpu --output-on-failure --timeout 300 \
    --output-junit "$OUT/ctest-gpu.xml"
fi

# --- benchmarks, ours and the PyTorch peer alternating --------------------------
GPULAB="$BUILD/apps/gpulab/gpulab"
B="$BUILD/bench"
FMNIST="$DEPS/usr/share/datasets/fashion-mnist"
if [ "$DEVICE" = cpu ]; then
  # Tiny sizes: the dry run proves the plumbing, not the speed.
  MODEL_ARGS=(--models resnet18 --modes forward,train --batch-size 2 --size 64 --iters 1
    --warmup 2 --threads 2 --device cpu --precisions fp32 --memory-format channels_last)
  TRAIN_ARGS=(--data "$FMNIST" --steps 200 --warmup 5 --threads 2 --device cpu)
  TRAIN_CASES=default,channels_last
  PEER_TRAIN=("--threads 2 --device cpu")
  DIST_ARGS=(--model resnet18 --size 64 --channels 3 --batch-size 4 --iters 2 --warmup 1
    --device cpu --allreduce-mib 1 --allreduce-iters 3)
  PEER_DIST=(--model resnet18 --size 64 --batch-size 4 --iters 2 --warmup 1 --device cpu
    --allreduce-mib 1 --allreduce-iters 3)
  # Loader and end-to-end training: 32 images, 2 epochs of 2 steps at 32x32.
  E2E_IMAGES=32 E2E_BATCH=16 E2E_EPOCHS=2 E2E_SIZE=64 E2E_THREADS=2 E2E_LOADER_BATCHES=4
  E2E_ENV=cpu
  PEER_E2E=(--device cpu --precision fp32)
  # Segmentation: the same three runs at toy sizes.
  SEG_COMMON=(--threads 2 --device cpu --precisions fp32 --memory-format channels_last)
  SEG_ERFNET=(--models erfnet --modes forward --batch-size 1 --width 128 --height 64 --iters 1
    --warmup 1)
  SEG_DEEPLAB=(--models deeplabv3plus --modes forward --batch-size 1 --width 64 --height 48
    --iters 1 --warmup 1)
  SEG_TRAIN=(--models erfnet,deeplabv3plus --modes train --batch-size 2 --width 64 --height 32
    --iters 1 --warmup 2)
  # Style transfer: the same two runs at toy sizes.
  STYLE_COMMON=(--threads 2 --device cpu --precisions fp32 --memory-format channels_last)
  STYLE_TRAIN=(--modes train --batch-size 2 --size 32 --style-size 32 --iters 1 --warmup 2)
  STYLE_FORWARD=(--modes forward --batch-size 1 --width 64 --height 48 --iters 1 --warmup 1)
else
  MODEL_ARGS=(--models resnet18 --modes forward,train --batch-size 256 --size 224 --iters 30
    --warmup 5 --threads 8 --device cuda --precisions fp32,bf16 --memory-format channels_last)
  TRAIN_ARGS=(--data "$FMNIST" --steps 3000 --warmup 100 --threads 8 --device cuda
    --sync-every 50)
  TRAIN_CASES=gpu,gpu_fp32,gpu_graph
  PEER_TRAIN=("--device cuda --precision bf16 --channels-last --sync-every 50"
    "--device cuda --precision fp32 --channels-last --sync-every 50")
  DIST_ARGS=(--model resnet18 --size 224 --channels 3 --batch-size 64 --iters 20 --warmup 5
    --device cuda --allreduce-mib 25 --allreduce-iters 30)
  PEER_DIST=(--model resnet18 --size 224 --batch-size 64 --iters 20 --warmup 5 --device cuda
    --allreduce-mib 25 --allreduce-iters 30)
  # Loader and end-to-end training: 5120 ImageNet-like JPEGs (~0.35 GB, in the
  # page cache once written), 5 epochs of 20 steps of 256 at 224x224, 8 decode
  # threads on one side and 8 DataLoader workers on the other.
  E2E_IMAGES=5120 E2E_BATCH=256 E2E_EPOCHS=5 E2E_SIZE=224 E2E_THREADS=8 E2E_LOADER_BATCHES=20
  E2E_ENV=gpu
  PEER_E2E=(--device cuda --precision bf16 --channels-last)
  # Segmentation (bf16 autocast, channels-last, both sides): ERFNet forward at
  # 1024x512 batch 1 (target < 1.5 ms per image on an H100-class GPU and >= 2x
  # eager PyTorch), DeepLab v3+ (ResNet-18) forward at 960x720 batch 1, and a
  # training step of each at batch 4 on 512x256 crops.
  SEG_COMMON=(--threads 8 --device cuda --precisions bf16 --memory-format channels_last)
  SEG_ERFNET=(--models erfnet --modes forward --batch-size 1 --width 1024 --height 512
    --iters 200 --warmup 20)
  SEG_DEEPLAB=(--models deeplabv3plus --modes forward --batch-size 1 --width 960 --height 720
    --iters 100 --warmup 10)
  SEG_TRAIN=(--models erfnet,deeplabv3plus --modes train --batch-size 4 --width 512 --height 256
    --iters 30 --warmup 5)
  # Style transfer (bf16 autocast, channels-last, both sides): the training
  # step at batch 4 on 256x256 (transformer_net, VGG-16 perceptual loss to
  # relu4_3, backward, Adam: pytorch/examples' recipe) and inference at
  # 1920x1080 batch 1 (frames/s at 1080p).
  STYLE_COMMON=(--threads 8 --device cuda --precisions bf16 --memory-format channels_last)
  STYLE_TRAIN=(--modes train --batch-size 4 --size 256 --style-size 256 --iters 30 --warmup 5)
  STYLE_FORWARD=(--modes forward --batch-size 1 --width 1920 --height 1080 --iters 50
    --warmup 10)
fi
PEERS="$ROOT/bench/peers"

# Each round runs gpulab and its peer; even rounds run the peer first.
model_gpulab() {
  [ -x "$B/bench_model_throughput" ] &&
    stage "model-gpulab-$1" 120 "$B/bench_model_throughput" "${MODEL_ARGS[@]}" \
      --json "$RESULTS/model-gpulab-$1.json"
}
model_pytorch() {
  stage "model-pytorch-$1" 120 "$PYTHON" "$PEERS/model_throughput.py" "${MODEL_ARGS[@]}" \
    --json "$RESULTS/model-pytorch-$1.json"
}
train_gpulab() {
  [ -x "$B/bench_train_throughput" ] &&
    stage "train-gpulab-$1" 120 "$B/bench_train_throughput" "${TRAIN_ARGS[@]}" \
      --cases="$TRAIN_CASES" --json "$RESULTS/train-gpulab-$1.json"
}
train_pytorch() {
  local k=0
  for peer in "${PEER_TRAIN[@]}"; do
    # shellcheck disable=SC2086
    stage "train-pytorch-$1-$k" 90 "$PYTHON" "$PEERS/train_throughput.py" --data "$FMNIST" \
      --steps "${TRAIN_ARGS[3]}" --warmup "${TRAIN_ARGS[5]}" $peer \
      --json "$RESULTS/train-pytorch-$1-$k.json"
    k=$((k + 1))
  done
}
# Segmentation: each of the three runs as ours then the peer's (the order
# swapped in even rounds); model-* names, so the summary's model table has them.
seg_run() {  # round tag args...
  local round="$1" tag="$2"
  shift 2
  local name="seg-$tag-$round"
  local ours=(stage "model-gpulab-$name" 60 "$B/bench_model_throughput" "$@" "${SEG_COMMON[@]}"
    --json "$RESULTS/model-gpulab-$name.json")
  local peer=(stage "model-pytorch-$name" 90 "$PYTHON" "$PEERS/model_throughput.py" "$@"
    "${SEG_COMMON[@]}" --json "$RESULTS/model-pytorch-$name.json")
  if [ ! -x "$B/bench_model_throughput" ]; then "${peer[@]}"
  elif [ $((round % 2)) = 1 ]; then "${ours[@]}"; "${peer[@]}"
  else "${peer[@]}"; "${ours[@]}"; fi
}
bench_seg() {  # round
  seg_run "$1" erfnet-forward "${SEG_ERFNET[@]}"
  seg_run "$1" deeplabv3plus-forward "${SEG_DEEPLAB[@]}"
  seg_run "$1" train "${SEG_TRAIN[@]}"
}
# Style transfer: bench_style_throughput against bench/peers/style_transfer.py
# (pytorch/examples' fast_neural_style), both from one seeded VGG-16 file the
# peer writes first (without it each side seeds its own VGG), model-* names as
# the segmentation runs (rows transformer_net train / forward in the summary).
STYLE_VGG="$RESULTS/style-vgg16-seed0.pth"
style_run() {  # round tag args...
  local round="$1" tag="$2"
  shift 2
  local name="style-$tag-$round" vgg=()
  [ -f "$STYLE_VGG" ] && vgg=(--loss-network-weights "$STYLE_VGG")
  local ours=(stage "model-gpulab-$name" 90 "$B/bench_style_throughput" "$@" "${STYLE_COMMON[@]}"
    "${vgg[@]}" --json "$RESULTS/model-gpulab-$name.json")
  local peer=(stage "model-pytorch-$name" 90 "$PYTHON" "$PEERS/style_transfer.py" "$@"
    "${STYLE_COMMON[@]}" "${vgg[@]}" --json "$RESULTS/model-pytorch-$name.json")
  if [ ! -x "$B/bench_style_throughput" ]; then "${peer[@]}"
  elif [ $((round % 2)) = 1 ]; then "${ours[@]}"; "${peer[@]}"
  else "${peer[@]}"; "${ours[@]}"; fi
}
bench_style() {  # round
  [ -f "$STYLE_VGG" ] || stage style-vgg16 60 "$PYTHON" "$PEERS/style_transfer.py" \
    --write-loss-network "$STYLE_VGG"
  style_run "$1" train "${STYLE_TRAIN[@]}"
  style_run "$1" forward "${STYLE_FORWARD[@]}"
}
bench_model() {  # round
  if [ $(($1 % 2)) = 1 ]; then model_gpulab "$1"; model_pytorch "$1"; else model_pytorch "$1"; model_gpulab "$1"; fi
}
bench_train() {  # round
  if [ $(($1 % 2)) = 1 ]; then train_gpulab "$1"; train_pytorch "$1"; else train_pytorch "$1"; train_gpulab "$1"; fi
}
# The trainer itself, `gpulab train` (basic_cnn, Fashion-MNIST resident on the
# device): its step replayed as CUDA graphs, then eagerly; the runs' summaries.
train_cli() {  # graphs | eager
  local flags=(--data "$FMNIST" --model basic_cnn --batch-size 128 --epochs 1 --quiet
    --out "$RESULTS/run-$1")
  if [ "$DEVICE" = cpu ]; then flags+=(--env cpu --limit 1280); else flags+=(--env gpu); fi
  [ "$1" = eager ] && flags+=(--no-cuda-graphs)
  stage "cli-train-$1" 90 "$GPULAB" train "${flags[@]}" &&
    cp "$RESULTS/run-$1/summary.json" "$RESULTS/cli-train-$1.json"
}
bench_dist() {
  # One rank with a real process group (NCCL on a GPU, Gloo on a CPU), then 2
  # ranks sharing the device (NCCL refuses that on one GPU: recorded as is;
  # short timeouts, so a hang there costs little).
  if [ -x "$B/bench_dist_step" ]; then
    stage dist-gpulab-1rank 60 env MASTER_PORT=29611 "$B/bench_dist_step" "${DIST_ARGS[@]}" \
      --one-rank-group 1 --json "$RESULTS/dist-gpulab-1rank.json"
    stage dist-gpulab-2ranks 45 "$GPULAB" launch -n 2 -- "$B/bench_dist_step" "${DIST_ARGS[@]}" \
      --json "$RESULTS/dist-gpulab-2ranks.json"
  fi
  stage dist-pytorch-1rank 60 "$PYTHON" "$PEERS/ddp_step.py" --nproc 1 --port 29621 \
    "${PEER_DIST[@]}" --json "$RESULTS/dist-pytorch-1rank.json"
  stage dist-pytorch-2ranks 45 "$PYTHON" "$PEERS/ddp_step.py" --nproc 2 --port 29631 \
    "${PEER_DIST[@]}" --json "$RESULTS/dist-pytorch-2ranks.json"
}

# Issue 3: the streaming loader, then resnet18 training from a JPEG folder on
# the device, gpulab (summary.json: images/s, data wait share) against
# torchvision's ImageFolder + DataLoader, same threads/workers, batch, crop,
# epochs. One run each; the folder is written first, into the page cache.
IMAGES="$RESULTS/imagenet-like"
bench_e2e() {
  if [ ! -x "$GPULAB" ] || ! "$GPULAB" bench loader --help >/dev/null 2>&1; then
    echo "== loader stages: not run (gpulab built without OpenCV, or not built)"
    return 0
  fi
  stage e2e-images 60 "$PYTHON" "$ROOT/bench/make_imagenet_like.py" --out "$IMAGES" \
    --count "$E2E_IMAGES" || return 0
  printf '{"images": %d, "batch_size": %d, "epochs": %d, "size": %d, "threads": %d, "env": "%s"}\n' \
    "$E2E_IMAGES" "$E2E_BATCH" "$E2E_EPOCHS" "$E2E_SIZE" "$E2E_THREADS" "$E2E_ENV" \
    > "$RESULTS/e2e-settings.json"
  stage loader-gpulab 45 "$GPULAB" bench loader --data "$IMAGES" --threads "$E2E_THREADS" \
    --batch-size "$E2E_BATCH" --batches "$E2E_LOADER_BATCHES" --random-resized-crop "$E2E_SIZE" \
    --rand-x-reflection --json "$RESULTS/loader-gpulab-1.json"
  stage loader-pytorch 60 "$PYTHON" "$PEERS/loader_torchvision.py" --data "$IMAGES" \
    --workers "$E2E_THREADS" --batch-size "$E2E_BATCH" --batches "$E2E_LOADER_BATCHES" \
    --size "$E2E_SIZE" --json "$RESULTS/loader-pytorch-1.json"
  # No checkpoints but the last, one progress row per epoch.
  stage e2e-gpulab 120 "$GPULAB" train --data "$IMAGES" --model resnet18 \
    --out "$RESULTS/e2e-gpulab-run" --env "$E2E_ENV" --loader stream \
    --loader-threads "$E2E_THREADS" --threads "$E2E_THREADS" --random-resized-crop "$E2E_SIZE" \
    --rand-x-reflection --batch-size "$E2E_BATCH" --epochs "$E2E_EPOCHS" --shuffle every-epoch \
    --checkpoint-unit iteration --checkpoint-frequency 1000000 --verbose-frequency 1000000 \
    --seed 0
  stage e2e-pytorch 120 "$PYTHON" "$PEERS/train_folder.py" --data "$IMAGES" \
    --workers "$E2E_THREADS" --threads "$E2E_THREADS" --batch-size "$E2E_BATCH" \
    --epochs "$E2E_EPOCHS" --size "$E2E_SIZE" "${PEER_E2E[@]}" \
    --json "$RESULTS/e2e-pytorch-1.json"
  rm -rf "$IMAGES"
}

# The inference pool (issue 17): `gpulab stream` with transformer_net (the
# peer's seeded weights) on a synthetic 1080p camera, nothing written (--out
# null: the pool and the network alone), one worker per GPU, dynamic batches
# of up to 8; its statistics JSON is the result (output fps, latency, shares).
bench_stream() {
  local weights="$RESULTS/stream-style.pth" frames=300 size=1920x1080
  [ "$DEVICE" = cpu ] && frames=6 && size=128x96
  stage stream-weights 60 "$PYTHON" "$PEERS/stream_loop.py" --write-weights "$weights" ||
    return 0
  local env=gpu
  [ "$DEVICE" = cpu ] && env=cpu
  stage stream-gpulab 120 "$GPULAB" stream --model transformer_net --weights "$weights" \
    --input "synthetic:${size}@100000/$frames" --out null --env "$env" --max-batch 8 \
    --max-delay-ms 5 --queue-size 16 --stats-interval 0 --stats-json "$RESULTS/stream-gpulab.json"
}

# The open issues' figures first (5, 4, 3), then the rest while the budget
# lasts: stages past it are recorded as skipped.
[ "$E2E" = first ] && bench_e2e
bench_model 1
[ "$SEG" != skip ] && bench_seg 1
[ "$STYLE" != skip ] && bench_style 1
[ "$STREAM" != skip ] && bench_stream
bench_dist
[ "$E2E" = after ] && bench_e2e
# The peer again with cuDNN's autotuner on, as gpulab runs by default.
[ "$DEVICE" != cpu ] && stage model-pytorch-cudnnbench 120 "$PYTHON" "$PEERS/model_throughput.py" \
  "${MODEL_ARGS[@]}" --cudnn-benchmark 1 --json "$RESULTS/model-pytorch-cudnnbench.json"
train_cli graphs
train_cli eager
bench_train 1
for round in $(seq 2 "$ROUNDS"); do
  # Later rounds only while the budget lasts; ours and the peer swap order.
  [ "$(remaining)" -gt 90 ] || break
  bench_train "$round"
  [ "$(remaining)" -gt 90 ] || break
  bench_model "$round"
done

# --- one JSON with everything, and the summary table ------------------------------
"$PYTHON" "$ROOT/bench/device_check_summary.py" "$RESULTS" "$OUT/device-check.json" \
  "$DEVICE" "$(($(date +%s) - START))"
echo "device-check: done in $(($(date +%s) - START))s; files in $OUT:"
ls -la "$OUT"
rm -rf "$RESULTS"
