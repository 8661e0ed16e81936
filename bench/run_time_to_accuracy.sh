#!/usr/bin/env bash
# Time to 90% Fashion-MNIST test accuracy with `gpulab train` (full 60k train,
# t10k as validation, validated once per epoch = 469 iterations at batch 128),
# plus the test accuracy after epochs 1 and 5. Builds nothing.
#
#   bench/run_time_to_accuracy.sh                 # basic_cnn nf 8, defaults
#   NF=16 EPOCHS=10 EXTRA="--lr-schedule cosine" bench/run_time_to_accuracy.sh
# Writes bench/results/time_to_accuracy-cpu-<hostname>-nf<NF>.json.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${BUILD:-$ROOT/build}"
PYTHON="${PYTHON:-/usr/bin/python3}"
DATA="${DATA:-/usr/share/datasets/fashion-mnist}"
NF="${NF:-8}"
EPOCHS="${EPOCHS:-10}"
TARGET="${TARGET:-0.90}"
EXTRA="${EXTRA:-}"            # more `gpulab train` flags, e.g. "--threads 1"
GPULAB="$BUILD/apps/gpulab/gpulab"
OUT_DIR="$ROOT/bench/results"
OUT="$OUT_DIR/time_to_accuracy-cpu-$(uname -n)-nf$NF${TAG:+-$TAG}.json"

[[ -x "$GPULAB" ]] || { echo "error: $GPULAB not built" >&2; exit 2; }
mkdir -p "$OUT_DIR"
RUN_DIR="$(mktemp -d)/run"
trap 'rm -rf "$(dirname "$RUN_DIR")"' EXIT

# shellcheck disable=SC2086
CMD=("$GPULAB" train --data "$DATA" --val-data "$DATA" --model basic_cnn --nf "$NF"
     --out "$RUN_DIR" --epochs "$EPOCHS" --validation-frequency 469 --quiet $EXTRA)
echo "${CMD[*]}"
"${CMD[@]}"

"$PYTHON" - "$RUN_DIR/history.jsonl" "$TARGET" "$OUT" "${CMD[*]}" "$NF" <<'PY'
import json, os, re, sys
history, target, out, cmd, nf = sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5])
rows = [json.loads(l) for l in open(history) if l.strip()]
val = [r for r in rows if "validation_accuracy" in r]
per_epoch = {}
for r in val:
    per_epoch[r["epoch"]] = r  # last validation of each epoch (the epoch end)
hit = next((r for r in val if r["validation_accuracy"] >= target), None)
res = {
    "benchmark": "time_to_accuracy",
    "model": "basic_cnn",
    "nf": nf,
    "dataset": "fashion-mnist (60k train, 10k t10k test)",
    "command": re.sub(r"--out \S+", "--out RUN_DIR", cmd.replace(os.path.dirname(os.path.dirname(os.path.dirname(out))) + "/", "")),
    "target_accuracy": target,
    "reached": hit is not None,
    "seconds_to_target": hit["time"] if hit else None,
    "iteration_at_target": hit["iteration"] if hit else None,
    "epoch_at_target": hit["iteration"] / 469.0 if hit else None,
    "test_accuracy_by_epoch": {str(e): r["validation_accuracy"] for e, r in sorted(per_epoch.items())},
    "seconds_by_epoch": {str(e): r["time"] for e, r in sorted(per_epoch.items())},
    "images_per_second": val[-1]["images_per_second"] if val else None,
    "machine": os.uname().nodename,
}
with open(out + ".tmp", "w") as f:
    json.dump(res, f, indent=2)
    f.write("\n")
os.replace(out + ".tmp", out)
for e, a in res["test_accuracy_by_epoch"].items():
    print(f"epoch {e}: test accuracy {a:.4f} at {res['seconds_by_epoch'][e]:.1f} s")
if hit:
    print(f"reached {target:.0%} at iteration {hit['iteration']} ({res['epoch_at_target']:.1f} epochs), {hit['time']:.1f} s")
else:
    print(f"did not reach {target:.0%} in the run")
print(f"wrote {out}")
PY
