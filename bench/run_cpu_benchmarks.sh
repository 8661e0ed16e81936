#!/usr/bin/env bash
# Side-by-side CPU training throughput: gpulab's bench_train_throughput and the
# PyTorch eager peer, alternated RUNS times; writes the medians and ratios to
# bench/results/train_throughput-cpu-<hostname>.json. Builds nothing.
#
#   bench/run_cpu_benchmarks.sh            # after: cmake --build build
#   BUILD=build RUNS=5 CASES=default,channels_last bench/run_cpu_benchmarks.sh
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${BUILD:-$ROOT/build}"
PYTHON="${PYTHON:-/usr/bin/python3}"       # Debian's python3 with python3-torch
DATA="${DATA:-/usr/share/datasets/fashion-mnist}"
BATCH="${BATCH:-128}"
THREADS="${THREADS:-2}"
STEPS="${STEPS:-300}"
RUNS="${RUNS:-3}"
CASES="${CASES:-default,zero_grad,channels_last}"
BENCH="$BUILD/bench/bench_train_throughput"
OUT_DIR="$ROOT/bench/results"
# Named per host; "-t<N>" added when THREADS is not the target's 2.
OUT="$OUT_DIR/train_throughput-cpu-$(uname -n)$([[ "$THREADS" == 2 ]] || echo "-t$THREADS").json"

[[ -x "$BENCH" ]] || { echo "error: $BENCH not built; run: cmake --build ${BUILD#$ROOT/} --target bench_train_throughput" >&2; exit 2; }
"$PYTHON" -c 'import torch' 2>/dev/null || { echo "error: $PYTHON has no torch; set PYTHON=" >&2; exit 2; }
mkdir -p "$OUT_DIR"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

for run in $(seq 1 "$RUNS"); do
  echo "== run $run/$RUNS (batch $BATCH, threads $THREADS, $STEPS steps)"
  "$PYTHON" "$ROOT/bench/peers/train_throughput.py" --data "$DATA" --batch-size "$BATCH" \
    --threads "$THREADS" --steps "$STEPS" --json "$TMP/peer-$run.json"
  "$BENCH" --data "$DATA" --batch-size "$BATCH" --threads "$THREADS" --steps "$STEPS" \
    --cases="$CASES" --json "$TMP/ours-$run.json"
done

"$PYTHON" - "$TMP" "$RUNS" "$OUT" <<'PY'
import json, os, statistics, sys
tmp, runs, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
peer = [json.load(open(f"{tmp}/peer-{r}.json")) for r in range(1, runs + 1)]
ours = [json.load(open(f"{tmp}/ours-{r}.json")) for r in range(1, runs + 1)]
med = statistics.median
peer_ips = med(p["images_per_second"] for p in peer)
peer_med_ips = med(p["batch_size"] * 1000.0 / p["step_ms_median"] for p in peer)
cases = {}
for c in ours[0]["cases"]:
    name = c["case"]
    runs_c = [next(x for x in o["cases"] if x["case"] == name) for o in ours]
    ips = med(x["images_per_second"] for x in runs_c)
    ips_at_median = med(ours[0]["batch_size"] * 1000.0 / x["step_ms_median"] for x in runs_c)
    cases[name] = {
        "description": c["description"],
        "threads": c["threads"],
        "images_per_second": ips,
        "step_ms": med(x["step_ms"] for x in runs_c),
        "images_per_second_at_median_step": ips_at_median,
        "ratio_vs_peer": ips / peer_ips,
        "ratio_vs_peer_at_median_step": ips_at_median / peer_med_ips,
        "runs_images_per_second": [x["images_per_second"] for x in runs_c],
        "phase_ms_median": runs_c[len(runs_c) // 2]["phase_ms_median"],
    }
first = ours[0]
best = max(cases, key=lambda k: cases[k]["images_per_second"])
result = {
    "benchmark": "train_throughput",
    "model": "basic_cnn",
    "batch_size": first["batch_size"],
    "threads": first["threads"],
    "device": "cpu",
    "dtype": "float32",
    "machine": first["machine"],
    "git_commit": first["git_commit"],
    "torch_version": first["torch_version"],
    "runs": runs,
    "steps": first["steps"],
    "statistic": "median over runs of batch / mean step time",
    "peer": {
        "implementation": "pytorch-eager",
        "torch_version": peer[0]["torch_version"],
        "images_per_second": peer_ips,
        "step_ms": med(p["step_ms"] for p in peer),
        "images_per_second_at_median_step": peer_med_ips,
        "runs_images_per_second": [p["images_per_second"] for p in peer],
    },
    "ours": cases,
    "ratio": {k: v["ratio_vs_peer"] for k, v in cases.items()},
    "best_case": best,
}
tmp_out = out + ".tmp"
with open(tmp_out, "w") as f:
    json.dump(result, f, indent=2)
    f.write("\n")
os.replace(tmp_out, out)
print(f"peer (pytorch eager): {peer_ips:8.0f} images/s")
for k, v in cases.items():
    print(f"gpulab {k:26s}: {v['images_per_second']:8.0f} images/s  ratio {v['ratio_vs_peer']:.2f}x "
          f"(at median step {v['ratio_vs_peer_at_median_step']:.2f}x)")
print(f"wrote {out}")
PY
