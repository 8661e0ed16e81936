#!/usr/bin/env bash
# Data-parallel step on 2 CPU ranks (Gloo), gpulab vs PyTorch DDP, side by
# side: bench_dist_step (compute / sync / overlap) and bench/peers/ddp_step.py
# (compute / overlap), alternated RUNS times per model. Writes
# bench/results/dist_step-cpu-<hostname>.json. Run on an idle machine.
#
#   cmake --build build --target gpulab bench_dist_step
#   bench/run_dist_benchmarks.sh                 # ~5 min on 2 cores
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${BUILD:-$ROOT/build}"
PYTHON="${PYTHON:-/usr/bin/python3}"
MODELS="${MODELS:-resnet18,lenet5}"
RUNS="${RUNS:-3}"
ITERS="${ITERS:-10}"
OUT="${OUT:-$ROOT/bench/results/dist_step-cpu-$(hostname -s).json}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for model in ${MODELS//,/ }; do
  if [ "$model" = lenet5 ]; then size=28; ch=1; batch=64; else size=64; ch=3; batch=16; fi
  for run in $(seq 1 "$RUNS"); do
    "$BUILD/apps/gpulab/gpulab" launch -n 2 -- "$BUILD/bench/bench_dist_step" --model "$model" \
      --size $size --channels $ch --batch-size $batch --iters "$ITERS" \
      --json "$tmp/gpulab-$model-$run.json" > /dev/null
    if [ "$model" != lenet5 ]; then
      "$PYTHON" "$ROOT/bench/peers/ddp_step.py" --nproc 2 --model "$model" --size $size \
        --batch-size $batch --iters "$ITERS" --json "$tmp/pytorch-$model-$run.json" > /dev/null
    fi
  done
done
"$PYTHON" - "$tmp" "$OUT" <<'PY'
import glob, json, os, statistics, sys
tmp, out = sys.argv[1], sys.argv[2]
runs = {}
for path in sorted(glob.glob(os.path.join(tmp, "*.json"))):
    framework, model, _ = os.path.basename(path)[:-5].split("-")
    runs.setdefault(model, {}).setdefault(framework, []).append(json.load(open(path)))
result = {"benchmark": "dist_step", "world_size": 2, "backend": "gloo", "models": {}}
for model, by in runs.items():
    g = by["gpulab"]
    entry = {"gpulab": {k: statistics.median(r["ms_per_step"][k] for r in g)
                        for k in ("compute", "sync", "overlap")},
             "hidden_share": statistics.median(r["hidden_share"] for r in g),
             "buckets": g[0]["buckets"], "gradient_megabytes": g[0]["gradient_megabytes"],
             "input": g[0]["input"], "batch_per_rank": g[0]["batch_per_rank"],
             "runs": {k: v for k, v in by.items()}}
    result["machine"] = g[0]["machine"]
    result["commit"] = g[0]["commit"]
    if "pytorch" in by:
        p = by["pytorch"]
        entry["pytorch_ddp"] = {k: statistics.median(r["ms_per_step"][k] for r in p)
                                for k in ("compute", "overlap")}
        entry["step_time_ratio_pytorch_over_gpulab"] = (
            entry["pytorch_ddp"]["overlap"] / entry["gpulab"]["overlap"])
    result["models"][model] = entry
tmp_out = out + ".tmp"
with open(tmp_out, "w") as f:
    json.dump(result, f, indent=2)
    f.write("\n")
os.replace(tmp_out, out)
for model, e in result["models"].items():
    print(model, json.dumps({k: v for k, v in e.items() if k != "runs"}))
PY
