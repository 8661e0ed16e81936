#!/usr/bin/env bash
# Transfer learning on Fashion-MNIST (seed 002's workflow, on data we have):
# pre-train resnet18 on classes 0-4, then learn classes 5-9 from only 100
# images per class, three ways on the same budget:
#   scratch    random initialisation
#   finetune   pre-trained weights, new 5-class head with a 10x learn rate
#   frozen     pre-trained body frozen (batch-norm statistics too), head only
# Each is validated on all 5,000 test images of classes 5-9. Writes
# OUT/results.json and prints a table.
#
#   examples/transfer/run.sh [OUT]          (default /tmp/gpulab-transfer)
#   GPULAB=build/apps/gpulab/gpulab DATA=/usr/share/datasets/fashion-mnist ...
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
GPULAB="${GPULAB:-$ROOT/build/apps/gpulab/gpulab}"
DATA="${DATA:-/usr/share/datasets/fashion-mnist}"
OUT="${1:-/tmp/gpulab-transfer}"
PRETRAIN_EPOCHS="${PRETRAIN_EPOCHS:-3}"
EPOCHS="${EPOCHS:-15}"
rm -rf "$OUT" && mkdir -p "$OUT"

# resnet18 with torchvision's stem (7x7/2 + max-pool): cheap at 28x28.
common=(--model resnet18 --model-option small_input=false --env cpu --seed 7
        --verbose-frequency 1000)
target=(--data "$DATA" --classes 5,6,7,8,9 --per-class 100 --val-data "$DATA"
        --epochs "$EPOCHS" --batch-size 50 --validation-frequency 1000 --quiet)

echo "== pre-training on classes 0-4 (30,000 images, $PRETRAIN_EPOCHS epochs)"
"$GPULAB" train "${common[@]}" --data "$DATA" --classes 0,1,2,3,4 --epochs "$PRETRAIN_EPOCHS" \
  --learn-rate 0.05 --lr-schedule cosine --out "$OUT/pretrain"
PRE="$OUT/pretrain/model.safetensors"

echo "== classes 5-9 from 100 images per class"
"$GPULAB" train "${common[@]}" "${target[@]}" --learn-rate 0.01 --out "$OUT/scratch"
"$GPULAB" train "${common[@]}" "${target[@]}" --learn-rate 0.01 --weights "$PRE" \
  --num-classes 5 --learn-rate-factor 'fc.*=10' --out "$OUT/finetune"
"$GPULAB" train "${common[@]}" "${target[@]}" --learn-rate 0.01 --weights "$PRE" \
  --num-classes 5 --freeze '*' --learn-rate-factor 'fc.*=10' --out "$OUT/frozen"

/usr/bin/env python3 - "$OUT" <<'PY'
import json, sys, os
out = sys.argv[1]
rows = {}
for name in ["scratch", "finetune", "frozen"]:
    s = json.load(open(os.path.join(out, name, "summary.json")))
    rows[name] = {"validation_accuracy": s["validation_accuracy"],
                  "validation_loss": s["validation_loss"],
                  "train_seconds": s["train_seconds"], "iterations": s["iterations"]}
pre = json.load(open(os.path.join(out, "pretrain", "summary.json")))
result = {"pretrain": {"train_seconds": pre["train_seconds"], "iterations": pre["iterations"],
                       "images_per_second": pre["images_per_second"]}, "target": rows}
json.dump(result, open(os.path.join(out, "results.json"), "w"), indent=2)
print(f"{'run':10} {'val accuracy':>12} {'val loss':>9} {'train s':>8}")
for name, r in rows.items():
    print(f"{name:10} {100 * r['validation_accuracy']:11.2f}% {r['validation_loss']:9.4f} "
          f"{r['train_seconds']:8.1f}")
PY
