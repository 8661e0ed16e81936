#!/usr/bin/env bash
# Which CPU change gives what, on this machine: the streaming loader with and
# without JPEG region decoding (--whole-jpeg) and with and without the caching
# CPU allocator (GPULAB_CPU_ALLOCATOR=default), alternated RUNS times; then
# resnet18 and vgg16 training steps with and without the allocator. Writes
# bench/results/cpu_ablation-cpu-<hostname>.json. Builds nothing; run on an
# idle machine after bench/run_loader_benchmarks.sh made the JPEG folder.
#
#   cmake --build build --target gpulab bench_model_throughput
#   bench/run_cpu_ablation.sh
#   RUNS=5 THREADS=1 bench/run_cpu_ablation.sh
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${BUILD:-$ROOT/build}"
DATA="${DATA:-/tmp/imagenet-like}"
THREADS="${THREADS:-2}"
RUNS="${RUNS:-3}"
MODEL_RUNS="${MODEL_RUNS:-2}"
GPULAB="$BUILD/apps/gpulab/gpulab"
BENCH="$BUILD/bench/bench_model_throughput"
OUT="$ROOT/bench/results/cpu_ablation-cpu-$(uname -n).json"

[[ -x "$GPULAB" && -x "$BENCH" ]] || { echo "error: build gpulab and bench_model_throughput first" >&2; exit 2; }
[[ -d "$DATA" ]] || { echo "error: no $DATA; run bench/run_loader_benchmarks.sh once (it makes the folder)" >&2; exit 2; }
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

for run in $(seq 1 "$RUNS"); do
  for alloc in default caching; do
    for decode in whole region; do
      flag=""; [[ $decode == whole ]] && flag="--whole-jpeg"
      GPULAB_CPU_ALLOCATOR=$alloc "$GPULAB" bench loader --data "$DATA" --threads "$THREADS" \
        --batch-size 64 --batches 30 --seed "$run" --random-resized-crop 224 --rand-x-reflection \
        $flag --json "$TMP/loader-$alloc-$decode-$run.json" | sed "s/^/$alloc $decode: /"
    done
  done
done
for run in $(seq 1 "$MODEL_RUNS"); do
  for alloc in default caching; do
    GPULAB_CPU_ALLOCATOR=$alloc "$BENCH" --models vgg16,resnet18 --modes train --iters 3 \
      --warmup 2 --json "$TMP/model-$alloc-$run.json" | grep "images/s" | sed "s/^/$alloc: /"
  done
done

python3 - "$TMP" "$OUT" "$THREADS" "$(git -C "$ROOT" rev-parse --short HEAD)" <<'PY'
import glob, json, os, statistics, sys
tmp, out, threads, commit = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
result = {"benchmark": "ablation: caching CPU allocator and JPEG region decoding",
          "machine": os.uname().nodename, "commit": commit, "threads": threads,
          "loader_images_per_second": {}, "train_images_per_second": {}}
for alloc in ("default", "caching"):
    for decode in ("whole", "region"):
        runs = [json.load(open(f))["images_per_second"]
                for f in sorted(glob.glob(f"{tmp}/loader-{alloc}-{decode}-*.json"))]
        result["loader_images_per_second"][f"{alloc}-{decode}"] = {
            "runs": runs, "median": statistics.median(runs)}
    for f in sorted(glob.glob(f"{tmp}/model-{alloc}-*.json")):
        for r in json.load(open(f))["results"]:
            result["train_images_per_second"].setdefault(f'{r["model"]}-{alloc}', []).append(
                r["images_per_second"])
for key, value in result["loader_images_per_second"].items():
    print(f"loader {key:16s} {value['median']:8.1f} images/s")
tmp_out = out + ".tmp"
with open(tmp_out, "w") as fh:
    json.dump(result, fh, indent=2)
os.replace(tmp_out, out)
print("wrote", out)
PY
