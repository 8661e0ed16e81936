#!/usr/bin/env bash
# Model-zoo throughput on the CPU, gpulab vs PyTorch eager: forward (eval, no
# grad) and training-step images/s of torchvision-identical models, each
# (model, mode) run RUNS times alternating bench_model_throughput and
# bench/peers/model_throughput.py; writes the medians and the ratio
# gpulab/pytorch to bench/results/model_throughput-cpu-<hostname>.json.
# Builds nothing.
#
#   cmake --build build --target bench_model_throughput
#   bench/run_model_benchmarks.sh                       # ~8-14 min on 2 cores
#   MODELS=resnet50 MODES=train RUNS=5 bench/run_model_benchmarks.sh
#   PLAN_ONLY=1 bench/run_model_benchmarks.sh            # print the plan only
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${BUILD:-$ROOT/build}"
PYTHON="${PYTHON:-/usr/bin/python3}"       # Debian's python3 with torch + torchvision
MODELS="${MODELS:-resnet18,alexnet,vgg16}"
MODES="${MODES:-forward,train}"
BATCH="${BATCH:-16}"
THREADS="${THREADS:-2}"
SIZE="${SIZE:-224}"
RUNS="${RUNS:-3}"
# Iteration counts are picked per (model, mode) so that each program run
# times about FORWARD_SECONDS / TRAIN_SECONDS of work at an assumed GFLOPS
# (sustained float32 GFLOP/s of the machine), within 3 (forward) or 2 (train)
# to 40 iterations: a VGG16 training step takes ~5-15 s on 2 cores, so its 2
# timed steps are 10-30 s of measurement per run. ITERS and WARMUP, when set,
# replace the counts for every case (training warms up at least 2 steps).
GFLOPS="${GFLOPS:-48}"
FORWARD_SECONDS="${FORWARD_SECONDS:-5}"
TRAIN_SECONDS="${TRAIN_SECONDS:-10}"
ITERS="${ITERS:-}"
WARMUP="${WARMUP:-}"
PLAN_ONLY="${PLAN_ONLY:-0}"
BENCH="$BUILD/bench/bench_model_throughput"
PEER="$ROOT/bench/peers/model_throughput.py"
OUT_DIR="$ROOT/bench/results"
SUFFIX="$([[ "$THREADS" == 2 ]] || echo "-t$THREADS")$([[ "$BATCH" == 16 ]] || echo "-b$BATCH")$([[ "$SIZE" == 224 ]] || echo "-s$SIZE")"
OUT="$OUT_DIR/model_throughput-cpu-$(uname -n)$SUFFIX.json"

# Forward GFLOP per 224x224 image (torchvision's model docs); a training step
# counts as 3x forward.
declare -A GFLOP=(
  [alexnet]=0.71 [resnet18]=1.81 [resnet34]=3.66 [resnet50]=4.09 [resnet101]=7.80
  [resnet152]=11.51 [vgg11]=7.61 [vgg11_bn]=7.61 [vgg13]=11.31 [vgg13_bn]=11.31
  [vgg16]=15.47 [vgg16_bn]=15.47 [vgg19]=19.63 [vgg19_bn]=19.63
)

IFS=, read -r -a model_list <<<"$MODELS"
IFS=, read -r -a mode_list <<<"$MODES"
for m in "${model_list[@]}"; do
  [[ -n "${GFLOP[$m]:-}" ]] || { echo "error: MODELS: '$m' is not a model this script knows; valid: $(printf '%s\n' "${!GFLOP[@]}" | sort | paste -sd, -)" >&2; exit 2; }
done
for mode in "${mode_list[@]}"; do
  [[ "$mode" == forward || "$mode" == train ]] || { echo "error: MODES: '$mode'; valid: forward, train" >&2; exit 2; }
done

# plan MODEL MODE -> "ITERS WARMUP EST_SECONDS_PER_ITER"
plan() {
  awk -v g="${GFLOP[$1]}" -v mode="$2" -v b="$BATCH" -v s="$SIZE" -v rate="$GFLOPS" \
      -v tf="$FORWARD_SECONDS" -v tt="$TRAIN_SECONDS" -v iters="$ITERS" -v warm="$WARMUP" 'BEGIN {
    k = (mode == "train") ? 3 : 1
    est = g * (s / 224.0) ^ 2 * b * k / rate
    n = int(((mode == "train") ? tt : tf) / est + 0.5)
    lo = (mode == "train") ? 2 : 3
    n = n < lo ? lo : (n > 40 ? 40 : n)
    # Training validates on warm-up steps 1 and 2; a forward pass longer
    # than 2 s needs one warm-up pass only.
    w = (mode == "train") ? 2 : (est > 2 ? 1 : 2)
    if (iters != "") n = iters
    if (warm != "") w = (mode == "train" && warm < 2) ? 2 : warm
    printf "%d %d %.3f\n", n, w, est
  }'
}

total=0
echo "plan (batch $BATCH, size $SIZE, threads $THREADS, $RUNS runs x 2 programs; estimates at $GFLOPS GFLOP/s):"
for m in "${model_list[@]}"; do
  for mode in "${mode_list[@]}"; do
    read -r n w est < <(plan "$m" "$mode")
    t=$(awk -v n="$n" -v w="$w" -v e="$est" -v r="$RUNS" 'BEGIN { printf "%.0f", 2 * r * (n + w) * e }')
    total=$((total + t))
    printf "  %-10s %-7s %2d iterations after %d warm-up, ~%.2f s each, ~%d s in all\n" \
      "$m" "$mode" "$n" "$w" "$est" "$t"
  done
done
echo "  estimated: ~$((total / 60)) min of iterations + ~2 s start-up per program run"
[[ "$PLAN_ONLY" == 1 ]] && exit 0

[[ -x "$BENCH" ]] || { echo "error: $BENCH not built; run: cmake --build ${BUILD#"$ROOT"/} --target bench_model_throughput" >&2; exit 2; }
"$PYTHON" -c 'import torch, torchvision' 2>/dev/null || { echo "error: $PYTHON has no torch/torchvision; set PYTHON=" >&2; exit 2; }
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) (run on an idle machine)"
mkdir -p "$OUT_DIR"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

start=$SECONDS
for run in $(seq 1 "$RUNS"); do
  for m in "${model_list[@]}"; do
    for mode in "${mode_list[@]}"; do
      read -r n w _ < <(plan "$m" "$mode")
      args=(--models "$m" --modes "$mode" --batch-size "$BATCH" --threads "$THREADS"
            --size "$SIZE" --iters "$n" --warmup "$w")
      ours=("$BENCH" "${args[@]}" --json "$TMP/gpulab-$m-$mode-$run.json")
      peer=("$PYTHON" "$PEER" "${args[@]}" --json "$TMP/pytorch-$m-$mode-$run.json")
      # Alternate which goes first, so neither always runs on a warmer machine.
      if (( run % 2 )); then "${peer[@]}"; "${ours[@]}"; else "${ours[@]}"; "${peer[@]}"; fi
    done
  done
  echo "== run $run/$RUNS done after $((SECONDS - start)) s"
done

"$PYTHON" - "$TMP" "$RUNS" "$OUT" "$MODELS" "$MODES" "$((SECONDS - start))" <<'PY'
import json, os, statistics, sys
tmp, runs, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
models, modes, seconds = sys.argv[4].split(","), sys.argv[5].split(","), int(sys.argv[6])
med = statistics.median

def load(impl, model, mode):
    return [json.load(open(f"{tmp}/{impl}-{model}-{mode}-{r}.json")) for r in range(1, runs + 1)]

def summary(files):
    entries = sorted((f["results"][0] for f in files), key=lambda e: e["images_per_second"])
    return {
        "images_per_second": med(e["images_per_second"] for e in entries),
        "ms_per_iter": med(e["ms_per_iter"] for e in entries),
        "images_per_second_at_median_iter": med(e["images_per_second_at_median"]
                                                for e in entries),
        "runs_images_per_second": [f["results"][0]["images_per_second"] for f in files],
        # Phase medians of the run with the median images/s.
        "phase_ms_median": entries[len(entries) // 2].get("phase_ms_median"),
        "validation": entries[0]["validation"],
    }

results, ratio = [], {}
for model in models:
    for mode in modes:
        ours, peer = load("gpulab", model, mode), load("pytorch", model, mode)
        o, p = summary(ours), summary(peer)
        e0 = ours[0]["results"][0]
        r = o["images_per_second"] / p["images_per_second"]
        ratio[f"{model}/{mode}"] = r
        results.append({
            "model": model, "mode": mode, "iters": e0["iters"], "warmup": e0["warmup"],
            "parameters": e0["parameters"], "gpulab": o, "pytorch": p,
            "ratio": r,
            "ratio_at_median_iter": o["images_per_second_at_median_iter"]
                                    / p["images_per_second_at_median_iter"],
        })
first = load("gpulab", models[0], modes[0])[0]
peer0 = load("pytorch", models[0], modes[0])[0]
result = {
    "benchmark": "model_throughput",
    "batch_size": first["batch_size"],
    "threads": first["threads"],
    "size": first["size"],
    "device": "cpu",
    "dtype": "float32",
    "machine": first["machine"],
    "cpu_model": first["cpu_model"],
    "git_commit": first["git_commit"],
    "torch_version": first["torch_version"],
    "peer": {"implementation": "pytorch-eager", "torch_version": peer0["torch_version"],
             "torchvision_version": peer0["torchvision_version"]},
    "runs": runs,
    "wall_seconds": seconds,
    "statistic": "per run: batch / mean iteration time; reported: the median over runs; "
                 "ratio = gpulab / pytorch images/s (> 1: gpulab is faster)",
    "results": results,
    "ratio": ratio,
}
tmp_out = out + ".tmp"
with open(tmp_out, "w") as f:
    json.dump(result, f, indent=2)
    f.write("\n")
os.replace(tmp_out, out)
print(f"{'model':10s} {'mode':7s} {'gpulab img/s':>13s} {'pytorch img/s':>14s} {'ratio':>6s}")
for x in results:
    print(f"{x['model']:10s} {x['mode']:7s} {x['gpulab']['images_per_second']:13.2f} "
          f"{x['pytorch']['images_per_second']:14.2f} {x['ratio']:6.2f}")
print(f"wrote {out} ({seconds} s)")
PY
