#!/usr/bin/env bash
# Peak memory of segmentation training against batch size (seed 003's table of
# what fits at each batch size): for each MODEL:WIDTHxHEIGHT and batch size,
#   train  `gpulab train --task segment` for STEPS steps on generated scenes
#          (make_scenes), one epoch of STEPS x batch images, no validation; the
#          figure is the one the run records itself (core/resource_monitor.h):
#          peak_host_memory_mb (VmHWM) of history.jsonl's last step, and on a
#          GPU peak_device_memory_mb (the CUDA caching allocator's peak);
#          summary.json's (the whole run, model file written) beside it;
#   step   bench_model_throughput --modes train: the bare step on a random batch
#          (forward, per-pixel cross-entropy, backward, SGD momentum), STEPS
#          steps (2 of them warm-up);
#   peer   the same step in PyTorch eager (bench/peers/model_throughput.py with
#          bench/peers/segmentation_models.py).
# Every program runs as the child of a Python process that reads its peak
# resident set (getrusage RUSAGE_CHILDREN ru_maxrss): the same measure for all
# three, and a check of the figure `train` records. On a GPU, `step` and `peer`
# also report the caching allocator's peak (torch.cuda.max_memory_allocated).
# Writes bench/results/segmentation_memory-<device>-<hostname>.json. Builds
# nothing.
#
#   cmake --build build --target gpulab bench_model_throughput make_scenes
#   bench/run_segmentation_memory.sh                     # ~5 min on 2 CPU cores
#   DEVICE=cuda bench/run_segmentation_memory.sh         # a GPU: device memory too
#   MODELS=erfnet:256x128 BATCHES=1,2 STEPS=3 PROGRAMS=train bench/run_segmentation_memory.sh
#   PLAN_ONLY=1 bench/run_segmentation_memory.sh         # print the plan only
#   OUT=FILE replaces the result file's name.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${BUILD:-$ROOT/build}"
PYTHON="${PYTHON:-/usr/bin/python3}"       # Debian's python3 with torch + torchvision
MODELS="${MODELS:-erfnet:512x256,deeplabv3plus:512x256}"
BATCHES="${BATCHES:-1,2,4,8}"
STEPS="${STEPS:-3}"                        # training steps per run, at least 3
THREADS="${THREADS:-2}"
DEVICE="${DEVICE:-cpu}"                    # cpu | cuda
PROGRAMS="${PROGRAMS:-train,step,peer}"
NUM_CLASSES=11                             # the scenes' (background + 10 objects)
PLAN_ONLY="${PLAN_ONLY:-0}"
GPULAB="$BUILD/apps/gpulab/gpulab"
BENCH="$BUILD/bench/bench_model_throughput"
SCENES="$BUILD/examples/segmentation/make_scenes"
PEER="$ROOT/bench/peers/model_throughput.py"
OUT_DIR="$ROOT/bench/results"
OUT="${OUT:-$OUT_DIR/segmentation_memory-$DEVICE-$(uname -n).json}"

IFS=, read -r -a model_list <<<"$MODELS"
IFS=, read -r -a batch_list <<<"$BATCHES"
IFS=, read -r -a program_list <<<"$PROGRAMS"
for m in "${model_list[@]}"; do
  [[ "$m" =~ ^(erfnet|deeplabv3plus):[0-9]+x[0-9]+$ ]] ||
    { echo "error: MODELS: '$m': expected erfnet|deeplabv3plus:WIDTHxHEIGHT" >&2; exit 2; }
done
for b in "${batch_list[@]}"; do
  [[ "$b" =~ ^[1-9][0-9]*$ ]] || { echo "error: BATCHES: '$b' is not a batch size" >&2; exit 2; }
done
for p in "${program_list[@]}"; do
  [[ "$p" == train || "$p" == step || "$p" == peer ]] ||
    { echo "error: PROGRAMS: '$p'; valid: train, step, peer" >&2; exit 2; }
done
[[ "$STEPS" =~ ^[0-9]+$ && "$STEPS" -ge 3 ]] || { echo "error: STEPS must be >= 3" >&2; exit 2; }
[[ "$DEVICE" == cpu || "$DEVICE" == cuda ]] || { echo "error: DEVICE: cpu or cuda" >&2; exit 2; }
has() { [[ ",$PROGRAMS," == *",$1,"* ]]; }
max_batch=0
for b in "${batch_list[@]}"; do ((b > max_batch)) && max_batch=$b; done

echo "plan ($DEVICE, $THREADS threads, $STEPS steps per run, programs: $PROGRAMS):"
for m in "${model_list[@]}"; do
  echo "  ${m%%:*} ${m#*:}: batch ${BATCHES//,/, } (scenes: $((STEPS * max_batch)) at ${m#*:})"
done
[[ "$PLAN_ONLY" == 1 ]] && exit 0

for tool in "$GPULAB" "$BENCH" "$SCENES"; do
  [[ -x "$tool" ]] || { echo "error: $tool not built; run: cmake --build ${BUILD#"$ROOT"/} --target gpulab bench_model_throughput make_scenes" >&2; exit 2; }
done
if has peer; then
  "$PYTHON" -c 'import torch, torchvision' 2>/dev/null || { echo "error: $PYTHON has no torch/torchvision; set PYTHON=" >&2; exit 2; }
fi
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) (run on an idle machine)"
mkdir -p "$OUT_DIR"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

# peak_rss FILE CMD...: runs CMD (its output appended to $TMP/log) as the only
# child of a Python process and writes the child's peak resident set in KiB
# to FILE.
peak_rss() {
  local file=$1
  shift
  "$PYTHON" -c 'import resource, subprocess, sys
r = subprocess.run(sys.argv[2:])
open(sys.argv[1], "w").write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))
sys.exit(r.returncode)' "$file" "$@" >>"$TMP/log" 2>&1 ||
    { echo "error: failed: $*; its output:" >&2; tail -n 30 "$TMP/log" >&2; exit 1; }
}

env_flag=cpu
[[ "$DEVICE" == cuda ]] && env_flag=gpu
start=$SECONDS
for m in "${model_list[@]}"; do
  model=${m%%:*} res=${m#*:}
  width=${res%x*} height=${res#*x}
  # Scenes at the size, with no val and test split files: training validates
  # on nothing, so the peak is the training steps'.
  data="$TMP/scenes-$res"
  if [[ ! -d "$data" ]]; then
    "$SCENES" --out "$data" --count $((STEPS * max_batch)) --size "$res" --split 1 0 0 \
      --seed 1 >>"$TMP/log" 2>&1
    rm -f "$data/splits/val.txt" "$data/splits/test.txt"
  fi
  for b in "${batch_list[@]}"; do
    key="$model-$res-$b"
    line="  $model $res batch $b:"
    if has train; then
      peak_rss "$TMP/$key.train.kib" "$GPULAB" train --task segment --model "$model" --data "$data" \
        --out "$TMP/run-$key" --env "$env_flag" --threads "$THREADS" --precision fp32 \
        --epochs 1 --batch-size "$b" --limit $((STEPS * b)) --seed 1 --verbose-frequency 1 --quiet
      cp "$TMP/run-$key/summary.json" "$TMP/$key.train-summary.json"
      tail -n 1 "$TMP/run-$key/history.jsonl" >"$TMP/$key.train-last.json"
      rm -rf "$TMP/run-$key"
      line+=" train $(($(cat "$TMP/$key.train.kib") / 1024)) MiB"
    fi
    args=(--models "$model" --modes train --batch-size "$b" --threads "$THREADS" --width "$width"
          --height "$height" --num-classes "$NUM_CLASSES" --iters $((STEPS - 2)) --warmup 2
          --device "$DEVICE")
    if has step; then
      peak_rss "$TMP/$key.step.kib" "$BENCH" "${args[@]}" --json "$TMP/$key.step.json"
      line+=", step $(($(cat "$TMP/$key.step.kib") / 1024)) MiB"
    fi
    if has peer; then
      peak_rss "$TMP/$key.peer.kib" "$PYTHON" "$PEER" "${args[@]}" --json "$TMP/$key.peer.json"
      line+=", peer $(($(cat "$TMP/$key.peer.kib") / 1024)) MiB"
    fi
    echo "$line ($((SECONDS - start)) s)"
  done
done

commit="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
"$PYTHON" - "$TMP" "$OUT" "$MODELS" "$BATCHES" "$PROGRAMS" "$STEPS" "$THREADS" "$DEVICE" \
  "$((SECONDS - start))" "$commit" "$(uname -n)" <<'PY'
import json, os, sys
(tmp, out, models, batches, programs, steps, threads, device, seconds, commit,
 machine) = sys.argv[1:]
programs = programs.split(",")
MIB = 1024 * 1024

def read(path, parse=json.load):
    with open(path) as f:
        return parse(f)

def cpu_model():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"

results, versions = [], {}
for m in models.split(","):
    model, res = m.split(":")
    width, height = (int(v) for v in res.split("x"))
    for b in batches.split(","):
        key = f"{tmp}/{model}-{res}-{b}"
        e = {"model": model, "width": width, "height": height, "batch_size": int(b),
             "steps": int(steps)}
        if "train" in programs:
            last, summary = read(f"{key}.train-last.json"), read(f"{key}.train-summary.json")
            e["gpulab_train"] = {
                "peak_host_memory_mb": last["peak_host_memory_mb"],
                "peak_device_memory_mb": last.get("peak_device_memory_mb"),
                "run_peak_host_memory_mb": summary["peak_host_memory_mb"],
                "run_peak_device_memory_mb": summary.get("peak_device_memory_mb"),
                "external_peak_rss_mb": int(read(f"{key}.train.kib", lambda f: f.read())) / 1024,
                "images_per_second": summary["images_per_second"],
                "iterations": summary["iterations"],
            }
        for name, impl in (("step", "gpulab_step"), ("peer", "pytorch_step")):
            if name not in programs:
                continue
            j = read(f"{key}.{name}.json")
            r = j["results"][0] if "results" in j else j
            versions[impl] = r.get("torch_version", j.get("torch_version"))
            peak = r.get("peak_memory_bytes")
            e[impl] = {
                "peak_rss_mb": int(read(f"{key}.{name}.kib", lambda f: f.read())) / 1024,
                "peak_device_memory_mb": peak / MIB if peak is not None and peak >= 0 else None,
                "ms_per_iter": r["ms_per_iter"],
                "parameters": r["parameters"],
            }
        if "gpulab_step" in e and "pytorch_step" in e:
            e["step_rss_ratio"] = e["gpulab_step"]["peak_rss_mb"] / e["pytorch_step"]["peak_rss_mb"]
        results.append(e)

result = {
    "benchmark": "segmentation_memory",
    "device": device,
    "threads": int(threads),
    "dtype": "float32",
    "machine": machine,
    "cpu_model": cpu_model(),
    "git_commit": commit,
    "torch_versions": versions,
    "steps": int(steps),
    "num_classes": 11,
    "wall_seconds": int(seconds),
    "method": {
        "gpulab_train": "gpulab train --task segment on make_scenes scenes, one epoch of steps x "
                        "batch images, no validation; peak_host_memory_mb = VmHWM recorded in "
                        "history.jsonl after the last step (run_*: summary.json, the whole run); "
                        "external_peak_rss_mb = getrusage(RUSAGE_CHILDREN).ru_maxrss",
        "gpulab_step": "bench_model_throughput --modes train (random batch, per-pixel "
                       "cross-entropy, SGD momentum), 2 warm-up + steps-2 timed steps; peak RSS "
                       "by getrusage; device: the caching allocator's peak",
        "pytorch_step": "bench/peers/model_throughput.py, the same step in PyTorch eager; peak "
                        "RSS by getrusage; device: torch.cuda.max_memory_allocated",
    },
    "results": results,
}
tmp_out = out + ".tmp"
with open(tmp_out, "w") as f:
    json.dump(result, f, indent=2)
    f.write("\n")
os.replace(tmp_out, out)

def mb(x):
    return "-" if x is None else f"{x:.0f}"

dev = device != "cpu"
print(f"{'model':13s} {'input':>9s} {'batch':>5s} {'train MiB':>10s} {'step MiB':>9s} "
      f"{'peer MiB':>9s}" + (f" {'train dev':>9s} {'step dev':>9s} {'peer dev':>9s}" if dev else ""))
for e in results:
    t, s, p = e.get("gpulab_train", {}), e.get("gpulab_step", {}), e.get("pytorch_step", {})
    row = (f"{e['model']:13s} {e['width']:>4d}x{e['height']:<4d} {e['batch_size']:5d} "
           f"{mb(t.get('peak_host_memory_mb')):>10s} {mb(s.get('peak_rss_mb')):>9s} "
           f"{mb(p.get('peak_rss_mb')):>9s}")
    if dev:
        row += (f" {mb(t.get('peak_device_memory_mb')):>9s} "
                f"{mb(s.get('peak_device_memory_mb')):>9s} {mb(p.get('peak_device_memory_mb')):>9s}")
    print(row)
print(f"wrote {out} ({seconds} s)")
PY
