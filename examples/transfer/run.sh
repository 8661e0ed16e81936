#!/usr/bin/env bash
# Transfer learning on Fashion-MNIST (seed 002's workflow, on data we have):
# pre-train resnet18 on classes 0-4, then learn classes 5-9 from only 100
# images per class, four ways on the same budget:
#   scratch       random initialisation, learn rate 0.01
#   finetune      pre-trained weights, new 5-class head with a 10x learn rate
#   finetune-002  the same with seed 002's rates: base 0.001, new head 20x
#   frozen        pre-trained body frozen (batch-norm statistics too), head only
# Each is validated on all 5,000 test images of classes 5-9, once per seed in
# SEEDS (the pre-training runs once); a single run's difference of a point is
# within the spread between seeds. Writes OUT/results.json and prints a table
# of each run's mean and standard deviation over the seeds.
#
#   examples/transfer/run.sh [OUT]          (default /tmp/gpulab-transfer)
#   GPULAB=build/apps/gpulab/gpulab DATA=/usr/share/datasets/fashion-mnist SEEDS="7 8 9" ...
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
GPULAB="${GPULAB:-$ROOT/build/apps/gpulab/gpulab}"
DATA="${DATA:-/usr/share/datasets/fashion-mnist}"
OUT="${1:-/tmp/gpulab-transfer}"
PRETRAIN_EPOCHS="${PRETRAIN_EPOCHS:-3}"
EPOCHS="${EPOCHS:-15}"
SEEDS="${SEEDS:-7 8 9}"
rm -rf "$OUT" && mkdir -p "$OUT"

# resnet18 with torchvision's stem (7x7/2 + max-pool): cheap at 28x28.
common=(--model resnet18 --model-option small_input=false --env cpu --verbose-frequency 1000)
target=(--data "$DATA" --classes 5,6,7,8,9 --per-class 100 --val-data "$DATA"
        --epochs "$EPOCHS" --batch-size 50 --validation-frequency 1000 --quiet)

echo "== pre-training on classes 0-4 (30,000 images, $PRETRAIN_EPOCHS epochs)"
"$GPULAB" train "${common[@]}" --seed 7 --data "$DATA" --classes 0,1,2,3,4 \
  --epochs "$PRETRAIN_EPOCHS" --learn-rate 0.05 --lr-schedule cosine --out "$OUT/pretrain"
PRE="$OUT/pretrain/model.safetensors"

for seed in $SEEDS; do
  echo "== classes 5-9 from 100 images per class, seed $seed"
  run=("${common[@]}" "${target[@]}" --seed "$seed")
  "$GPULAB" train "${run[@]}" --learn-rate 0.01 --out "$OUT/scratch-$seed"
  "$GPULAB" train "${run[@]}" --learn-rate 0.01 --weights "$PRE" --num-classes 5 \
    --learn-rate-factor 'fc.*=10' --out "$OUT/finetune-$seed"
  "$GPULAB" train "${run[@]}" --learn-rate 0.001 --weights "$PRE" --num-classes 5 \
    --learn-rate-factor 'fc.*=20' --out "$OUT/finetune-002-$seed"
  "$GPULAB" train "${run[@]}" --learn-rate 0.01 --weights "$PRE" --num-classes 5 \
    --freeze '*' --learn-rate-factor 'fc.*=10' --out "$OUT/frozen-$seed"
done

/usr/bin/env python3 - "$OUT" $SEEDS <<'PY'
import json, os, statistics, sys
out, seeds = sys.argv[1], sys.argv[2:]
def mean_sd(values):
    return {"mean": statistics.mean(values),
            "sd": statistics.stdev(values) if len(values) > 1 else 0.0}
rows = {}
for name in ["scratch", "finetune", "finetune-002", "frozen"]:
    runs = {}
    for seed in seeds:
        s = json.load(open(os.path.join(out, f"{name}-{seed}", "summary.json")))
        runs[seed] = {"validation_accuracy": s["validation_accuracy"],
                      "validation_loss": s["validation_loss"],
                      "train_seconds": s["train_seconds"], "iterations": s["iterations"]}
    rows[name] = {"seeds": runs}
    for key in ["validation_accuracy", "validation_loss", "train_seconds"]:
        rows[name][key] = mean_sd([r[key] for r in runs.values()])
pre = json.load(open(os.path.join(out, "pretrain", "summary.json")))
result = {"pretrain": {"train_seconds": pre["train_seconds"], "iterations": pre["iterations"],
                       "images_per_second": pre["images_per_second"]},
          "seeds": seeds, "target": rows}
json.dump(result, open(os.path.join(out, "results.json"), "w"), indent=2)
print(f"{'run':13} {'val accuracy':>16} {'val loss':>16} {'train s':>8}   per seed ({' '.join(seeds)})")
for name, r in rows.items():
    a, l = r["validation_accuracy"], r["validation_loss"]
    each = " ".join(f"{100 * s['validation_accuracy']:.2f}" for s in r["seeds"].values())
    print(f"{name:13} {100 * a['mean']:8.2f} ± {100 * a['sd']:4.2f}% {l['mean']:8.4f} ± {l['sd']:5.3f} "
          f"{r['train_seconds']['mean']:8.1f}   {each}")
PY
