#!/usr/bin/env bash
# Side-by-side loader throughput: `gpulab bench loader` and the torchvision
# peer (ImageFolder + DataLoader) on an ImageNet-like JPEG folder, decode +
# RandomResizedCrop(224) + horizontal flip + normalise, for each thread count,
# alternated RUNS times; then a short resnet18 training run on the same folder
# for the share of step time spent waiting for data. Writes
# bench/results/loader-cpu-<hostname>.json. Builds nothing.
#
#   bench/run_loader_benchmarks.sh                  # after: cmake --build build --target gpulab
#   THREADS_LIST="1 2" RUNS=3 BATCH=64 bench/run_loader_benchmarks.sh
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${BUILD:-$ROOT/build}"
PYTHON="${PYTHON:-/usr/bin/python3}"   # Debian's python3 with python3-torchvision
DATA="${DATA:-/tmp/imagenet-like}"
COUNT="${COUNT:-2000}"
BATCH="${BATCH:-64}"
BATCHES="${BATCHES:-30}"               # timed batches per run
THREADS_LIST="${THREADS_LIST:-1 2}"
RUNS="${RUNS:-3}"
TRAIN_ITERS="${TRAIN_ITERS:-20}"       # resnet18 steps for data_wait_share (0 = skip)
GPULAB="$BUILD/apps/gpulab/gpulab"
OUT_DIR="$ROOT/bench/results"
OUT="$OUT_DIR/loader-cpu-$(uname -n).json"

[[ -x "$GPULAB" ]] || { echo "error: $GPULAB not built; run: cmake --build ${BUILD#$ROOT/} --target gpulab" >&2; exit 2; }
"$PYTHON" -c 'import torchvision' 2>/dev/null || { echo "error: $PYTHON has no torchvision; set PYTHON=" >&2; exit 2; }
"$PYTHON" "$ROOT/bench/make_imagenet_like.py" --out "$DATA" --count "$COUNT"
mkdir -p "$OUT_DIR"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

for threads in $THREADS_LIST; do
  for run in $(seq 1 "$RUNS"); do
    echo "== threads $threads, run $run/$RUNS (batch $BATCH, $BATCHES batches)"
    # Alternate who goes first: page cache and CPU clocks favour neither.
    if (( run % 2 )); then order="peer ours"; else order="ours peer"; fi
    for who in $order; do
      if [[ $who == peer ]]; then
        "$PYTHON" "$ROOT/bench/peers/loader_torchvision.py" --data "$DATA" --workers "$threads" \
          --batch-size "$BATCH" --batches "$BATCHES" --seed "$run" --json "$TMP/peer-$threads-$run.json"
      else
        "$GPULAB" bench loader --data "$DATA" --threads "$threads" --batch-size "$BATCH" \
          --batches "$BATCHES" --seed "$run" --random-resized-crop 224 --rand-x-reflection \
          --json "$TMP/ours-$threads-$run.json"
      fi
    done
  done
done

if (( TRAIN_ITERS > 0 )); then
  # A CPU resnet18 at 224 is far slower than the loader: the wait share must be small.
  echo "== training resnet18 for $TRAIN_ITERS iterations on $DATA"
  "$GPULAB" train --data "$DATA" --model resnet18 --out "$TMP/run" --random-resized-crop 224 \
    --rand-x-reflection --batch-size 16 --epochs 1 --per-class $(( TRAIN_ITERS * 16 / 10 )) \
    --verbose-frequency 5 --env cpu --checkpoint-frequency 1000
fi

"$PYTHON" - "$TMP" "$RUNS" "$THREADS_LIST" "$OUT" "$TRAIN_ITERS" <<'PY'
import json, os, statistics, sys
tmp, runs, threads_list, out, train_iters = sys.argv[1], int(sys.argv[2]), sys.argv[3].split(), sys.argv[4], int(sys.argv[5])
sys.path.insert(0, os.path.join(os.path.dirname(out), "..", "peers"))
import peer_env
cases = []
for t in threads_list:
    peer = [json.load(open(f"{tmp}/peer-{t}-{r}.json")) for r in range(1, runs + 1)]
    ours = [json.load(open(f"{tmp}/ours-{t}-{r}.json")) for r in range(1, runs + 1)]
    p = statistics.median(x["images_per_second"] for x in peer)
    o = statistics.median(x["images_per_second"] for x in ours)
    cases.append({"threads": int(t), "batch_size": ours[0]["batch_size"],
                  "gpulab_images_per_second": o, "torchvision_images_per_second": p,
                  "ratio_vs_peer": o / p, "gpulab_images_per_second_per_thread": o / int(t),
                  "runs_gpulab": [x["images_per_second"] for x in ours],
                  "runs_torchvision": [x["images_per_second"] for x in peer]})
result = {"benchmark": "loader", "data": ours[0]["data"],
          "pipeline": "read + JPEG decode + RandomResizedCrop(224) + horizontal flip + normalise + collate",
          "torchvision_version": peer[0]["torchvision_version"], "machine": peer_env.host_name(),
          "cpu": peer_env.cpu_model(), "commit": peer_env.git_commit(), "cases": cases}
summary = f"{tmp}/run/summary.json"
if train_iters > 0 and os.path.exists(summary):
    s = json.load(open(summary))
    result["training"] = {"model": "resnet18", "batch_size": 16, "iterations": s["iterations"],
                          "images_per_second": s["images_per_second"],
                          "data_wait_share": s["data_wait_share"]}
peer_env.write_json_atomic(out, result)
for c in cases:
    print(f"threads {c['threads']}: gpulab {c['gpulab_images_per_second']:.0f} images/s, "
          f"torchvision {c['torchvision_images_per_second']:.0f}, ratio {c['ratio_vs_peer']:.2f}")
if "training" in result:
    print(f"training: data_wait_share {result['training']['data_wait_share']:.3f}")
print(f"wrote {out}")
PY
