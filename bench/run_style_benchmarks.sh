#!/usr/bin/env bash
# Fast neural style transfer on the CPU, gpulab vs PyTorch eager: the training
# step (transformer_net + VGG-16 perceptual loss + backward + Adam) at batch 4
# on 256x256 and 128x128 crops, and inference (transformer_net forward) at
# 256x256 and 512x512 batch 1. Each case runs ROUNDS times alternating
# bench_style_throughput and bench/peers/style_transfer.py (pytorch/examples'
# fast_neural_style), both from the same seeded weights (transformer_net by
# seed, the VGG-16 from one file the peer writes first) on the same random
# batch, so their step-1 losses are checked equal; writes the medians and the
# ratio gpulab/pytorch to bench/results/style_transfer-cpu-<hostname>.json.
# Builds nothing.
#
#   cmake --build build --target bench_style_throughput
#   bench/run_style_benchmarks.sh                   # ~10 min on 2 cores
#   CASES=forward:256x256:1 ROUNDS=5 bench/run_style_benchmarks.sh
#   PLAN_ONLY=1 bench/run_style_benchmarks.sh       # print the plan only
#   OUT=FILE replaces the result file's name.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${BUILD:-$ROOT/build}"
PYTHON="${PYTHON:-/usr/bin/python3}"       # Debian's python3 with torch + torchvision
# MODE:WIDTHxHEIGHT:BATCH, comma-separated.
CASES="${CASES:-train:256x256:4,train:128x128:4,forward:256x256:1,forward:512x512:1}"
THREADS="${THREADS:-2}"
ROUNDS="${ROUNDS:-3}"
STYLE_SIZE="${STYLE_SIZE:-256}"            # the random style image's side
# Iterations per case so that each program run times about FORWARD_SECONDS /
# TRAIN_SECONDS of work at an assumed GFLOPS (sustained float32 GFLOP/s),
# within 3 (forward) or 2 (train) to 40; ITERS and WARMUP, when set, replace
# the counts for every case (training warms up at least 2 steps). 60 GFLOP/s
# is what a training step sustains on the 2-core VM (forward runs ~130).
GFLOPS="${GFLOPS:-60}"
FORWARD_SECONDS="${FORWARD_SECONDS:-8}"
TRAIN_SECONDS="${TRAIN_SECONDS:-20}"
ITERS="${ITERS:-}"
WARMUP="${WARMUP:-}"
PLAN_ONLY="${PLAN_ONLY:-0}"
BENCH="$BUILD/bench/bench_style_throughput"
PEER="$ROOT/bench/peers/style_transfer.py"
OUT_DIR="$ROOT/bench/results"
SUFFIX="$([[ "$THREADS" == 2 ]] || echo "-t$THREADS")"
OUT="${OUT:-$OUT_DIR/style_transfer-cpu-$(uname -n)$SUFFIX.json}"

# Forward GFLOP per megapixel (2 x the convs' multiply-adds): transformer_net
# and VGG-16 to relu4_3. A training step is 3 x both (the transformer's
# forward and backward; the VGG's forward on the output, its input-gradient
# backward and its forward on the content batch).
GFLOP_MP_TRANSFORMER=307.584
GFLOP_MP_VGG=556.416

IFS=, read -r -a case_list <<<"$CASES"
for c in "${case_list[@]}"; do
  IFS=: read -r mode res batch <<<"$c"
  [[ "$mode" == forward || "$mode" == train ]] || { echo "error: CASES: '$c': mode '$mode'; valid: forward, train" >&2; exit 2; }
  [[ "$res" =~ ^[0-9]+x[0-9]+$ && "$batch" =~ ^[0-9]+$ ]] || { echo "error: CASES: '$c': expected MODE:WIDTHxHEIGHT:BATCH" >&2; exit 2; }
done

# plan MODE WIDTH HEIGHT BATCH -> "ITERS WARMUP EST_SECONDS_PER_ITER"
plan() {
  awk -v t="$GFLOP_MP_TRANSFORMER" -v v="$GFLOP_MP_VGG" -v mode="$1" -v w="$2" -v h="$3" \
      -v b="$4" -v rate="$GFLOPS" -v tf="$FORWARD_SECONDS" -v tt="$TRAIN_SECONDS" \
      -v iters="$ITERS" -v warm="$WARMUP" 'BEGIN {
    g = (mode == "train") ? 3 * (t + v) : t
    est = g * w * h / 1e6 * b / rate
    n = int(((mode == "train") ? tt : tf) / est + 0.5)
    lo = (mode == "train") ? 2 : 3
    n = n < lo ? lo : (n > 40 ? 40 : n)
    w = (mode == "train") ? 2 : (est > 2 ? 1 : 2)
    if (iters != "") n = iters
    if (warm != "") w = (mode == "train" && warm < 2) ? 2 : warm
    printf "%d %d %.3f\n", n, w, est
  }'
}

total=0
echo "plan (threads $THREADS, $ROUNDS rounds x 2 programs; estimates at $GFLOPS GFLOP/s):"
for c in "${case_list[@]}"; do
  IFS=: read -r mode res batch <<<"$c"
  read -r n w est < <(plan "$mode" "${res%x*}" "${res#*x}" "$batch")
  t=$(awk -v n="$n" -v w="$w" -v e="$est" -v r="$ROUNDS" 'BEGIN { printf "%.0f", 2 * r * (n + w) * e }')
  total=$((total + t))
  printf "  transformer_net %-7s %9s batch %d: %2d iterations after %d warm-up, ~%.2f s each, ~%d s in all\n" \
    "$mode" "$res" "$batch" "$n" "$w" "$est" "$t"
done
echo "  estimated: ~$((total / 60)) min of iterations + ~2 s start-up per program run"
[[ "$PLAN_ONLY" == 1 ]] && exit 0

[[ -x "$BENCH" ]] || { echo "error: $BENCH not built; run: cmake --build ${BUILD#"$ROOT"/} --target bench_style_throughput" >&2; exit 2; }
"$PYTHON" -c 'import torch, torchvision' 2>/dev/null || { echo "error: $PYTHON has no torch/torchvision; set PYTHON=" >&2; exit 2; }
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) (run on an idle machine)"
mkdir -p "$OUT_DIR"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
# One VGG-16 for both: torchvision's initialisation, seed 0 (no download).
"$PYTHON" "$PEER" --write-loss-network "$TMP/vgg16.pth" --seed 0 >/dev/null

start=$SECONDS
for round in $(seq 1 "$ROUNDS"); do
  k=0
  for c in "${case_list[@]}"; do
    IFS=: read -r mode res batch <<<"$c"
    read -r n w _ < <(plan "$mode" "${res%x*}" "${res#*x}" "$batch")
    args=(--modes "$mode" --batch-size "$batch" --threads "$THREADS" --width "${res%x*}"
          --height "${res#*x}" --style-size "$STYLE_SIZE" --iters "$n" --warmup "$w" --seed 0
          --loss-network-weights "$TMP/vgg16.pth")
    ours=("$BENCH" "${args[@]}" --json "$TMP/gpulab-$k-$round.json")
    peer=("$PYTHON" "$PEER" "${args[@]}" --json "$TMP/pytorch-$k-$round.json")
    # Alternate which goes first, so neither always runs on a warmer machine.
    if (( round % 2 )); then "${peer[@]}"; "${ours[@]}"; else "${ours[@]}"; "${peer[@]}"; fi
    k=$((k + 1))
  done
  echo "== round $round/$ROUNDS done after $((SECONDS - start)) s"
done

"$PYTHON" - "$TMP" "$ROUNDS" "$OUT" "$CASES" "$((SECONDS - start))" <<'PY'
import json, os, statistics, sys
tmp, rounds, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
cases, seconds = sys.argv[4].split(","), int(sys.argv[5])
med = statistics.median

def load(impl, k):
    return [json.load(open(f"{tmp}/{impl}-{k}-{r}.json")) for r in range(1, rounds + 1)]

def summary(files):
    entries = sorted((f["results"][0] for f in files), key=lambda e: e["images_per_second"])
    return {
        "images_per_second": med(e["images_per_second"] for e in entries),
        "ms_per_iter": med(e["ms_per_iter"] for e in entries),
        "images_per_second_at_median_iter": med(e["images_per_second_at_median"]
                                                for e in entries),
        "runs_images_per_second": [f["results"][0]["images_per_second"] for f in files],
        # Phase medians of the round with the median images/s.
        "phase_ms_median": entries[len(entries) // 2].get("phase_ms_median"),
        "validation": entries[0]["validation"],
    }

results, ratio = [], {}
for k, case in enumerate(cases):
    ours, peer = load("gpulab", k), load("pytorch", k)
    o, p = summary(ours), summary(peer)
    e0, p0 = ours[0]["results"][0], peer[0]["results"][0]
    for key in ("parameters", "loss_network_parameters"):
        if e0[key] != p0[key]:
            sys.exit(f"error: {case}: {key}: gpulab {e0[key]}, the peer {p0[key]}: "
                     "not the same networks")
    # Same weights, batch and style: the first step's loss (training) or the
    # output's mean (forward) must agree, or the two do not compute the same.
    key = "loss_step1" if e0["mode"] == "train" else "output_mean"
    a, b = e0["validation"][key], p0["validation"][key]
    rel = abs(a - b) / max(abs(b), 1e-12)
    if rel > 1e-3:
        sys.exit(f"error: {case}: {key}: gpulab {a}, the peer {b} (relative {rel:.2e})")
    r = o["images_per_second"] / p["images_per_second"]
    ratio[case] = r
    results.append({
        "case": case, "model": e0["model"], "mode": e0["mode"], "height": e0["height"],
        "width": e0["width"], "batch_size": e0["batch_size"], "style_size": e0["style_size"],
        "iters": e0["iters"], "warmup": e0["warmup"], "parameters": e0["parameters"],
        "loss_network": e0["loss_network"],
        "loss_network_parameters": e0["loss_network_parameters"],
        "gflop_per_image": e0["gflop_per_image"],
        "same_work_check": {"quantity": key, "gpulab": a, "pytorch": b, "relative": rel},
        "gpulab": o, "pytorch": p, "ratio": r,
        "ratio_at_median_iter": o["images_per_second_at_median_iter"]
                                / p["images_per_second_at_median_iter"],
    })
first, peer0 = load("gpulab", 0)[0], load("pytorch", 0)[0]
result = {
    "benchmark": "style_transfer_throughput",
    "threads": first["threads"],
    "device": "cpu",
    "dtype": "float32",
    "memory_format": first["memory_format"],
    "machine": first["machine"],
    "cpu_model": first["cpu_model"],
    "git_commit": first["git_commit"],
    "torch_version": first["torch_version"],
    "peer": {"implementation": "pytorch-eager (bench/peers/style_transfer.py: pytorch/examples "
                               "fast_neural_style)",
             "torch_version": peer0["torch_version"],
             "torchvision_version": peer0["torchvision_version"]},
    "rounds": rounds,
    "wall_seconds": seconds,
    "timed": {
        "train": "one step on a fixed [N, 3, H, W] 0..255 batch: gradients dropped, "
                 "transformer_net forward, VGG-16 (to relu4_3, frozen) on the output and on "
                 "the batch, content (relu2_2, 1e5) and style (Gram / (C H W) of relu1_2, "
                 "relu2_2, relu3_3, relu4_3, 1e10) losses, backward, Adam (lr 1e-3) step, "
                 "the loss read on the host",
        "forward": "transformer_net forward of the batch in eval mode without gradient "
                   "(0..255 in and out); no image decoding, resizing or encoding",
    },
    "statistic": "per round: batch / mean iteration time; reported: the median over rounds; "
                 "ratio = gpulab / pytorch images/s (> 1: gpulab is faster)",
    "results": results,
    "ratio": ratio,
}
tmp_out = out + ".tmp"
with open(tmp_out, "w") as f:
    json.dump(result, f, indent=2)
    f.write("\n")
os.replace(tmp_out, out)
print(f"{'mode':7s} {'input':>9s} {'batch':>5s} {'gpulab img/s':>13s} {'pytorch img/s':>14s} "
      f"{'ratio':>6s}  same-work check")
for x in results:
    s = x["same_work_check"]
    print(f"{x['mode']:7s} {x['width']:>4d}x{x['height']:<4d} {x['batch_size']:5d} "
          f"{x['gpulab']['images_per_second']:13.3f} {x['pytorch']['images_per_second']:14.3f} "
          f"{x['ratio']:6.2f}  {s['quantity']} equal to {s['relative']:.1e}")
print(f"wrote {out} ({seconds} s)")
PY
