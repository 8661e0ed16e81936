#!/usr/bin/env bash
# `gpulab stream` on the CPU against the PyTorch peer loop
# (bench/peers/stream_loop.py): the same seeded transformer_net weights on the
# same frames of Debian's vtest.avi (768x576), each frame resized to the
# network's size, stylised, resized back and written to an MJPG .avi. Cases:
#   peer t2, peer t1          the loop with 2 and 1 LibTorch threads
#   gpulab w1t2, w1t1, w2t1   1 worker with 2 or 1 threads, 2 workers with 1 each
# ROUNDS rounds alternate all cases; medians of frames per second and the
# ratios gpulab/peer and the scaling efficiency from 1 to 2 workers
# (w2t1 / (2 x w1t1)) go to bench/results/stream-cpu-<hostname>.json.
# Builds nothing (cmake --build build --target gpulab). Needs python3-opencv.
#
#   bench/run_stream_benchmarks.sh                 # ~6 min on 2 cores
#   FRAMES=30 ROUNDS=1 bench/run_stream_benchmarks.sh
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${BUILD:-$ROOT/build}"
PYTHON="${PYTHON:-/usr/bin/python3}"
VIDEO="${VIDEO:-/usr/share/doc/opencv-doc/examples/data/vtest.avi}"
FRAMES="${FRAMES:-60}"
HEIGHT="${HEIGHT:-144}"
WIDTH="${WIDTH:-192}"
ROUNDS="${ROUNDS:-3}"
GPULAB="$BUILD/apps/gpulab/gpulab"
PEER="$ROOT/bench/peers/stream_loop.py"
OUT="${OUT:-$ROOT/bench/results/stream-cpu-$(uname -n).json}"

"$PYTHON" -c 'import cv2, torch' 2>/dev/null ||
  { echo "error: $PYTHON lacks torch or cv2: apt-get install python3-torch python3-opencv" >&2; exit 2; }
[[ -x "$GPULAB" ]] || { echo "error: $GPULAB not built: cmake --build build --target gpulab" >&2; exit 2; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
"$PYTHON" "$PEER" --input "$VIDEO" --out "$work/x.avi" --write-weights "$work/style.pth"

results="$work/results.jsonl"
for round in $(seq 1 "$ROUNDS"); do
  for threads in 2 1; do
    line="$("$PYTHON" "$PEER" --input "$VIDEO" --out "$work/peer.avi" --weights "$work/style.pth" \
      --frames "$FRAMES" --height "$HEIGHT" --width "$WIDTH" --threads "$threads")"
    echo "{\"case\": \"peer-t$threads\", \"round\": $round, \"result\": $line}" >>"$results"
    echo "round $round peer t$threads: $line"
  done
  for wt in 1:2 1:1 2:1; do
    IFS=: read -r workers threads <<<"$wt"
    "$GPULAB" stream --model transformer_net --weights "$work/style.pth" --input "$VIDEO" \
      --out "$work/gpulab.avi" --env cpu --workers "$workers" --threads "$threads" \
      --max-frames "$FRAMES" --image-size "${HEIGHT}x${WIDTH}" --stats-interval 0 \
      --stats-json "$work/stats.json" >/dev/null
    line="$("$PYTHON" -c 'import json,sys; s=json.load(open(sys.argv[1])); print(json.dumps({"frames": s["frames_written"], "seconds": s["elapsed_seconds"], "fps": s["output_fps"], "latency_p50_ms": s["latency_p50_ms"], "latency_p99_ms": s["latency_p99_ms"], "shares": [w["share"] for w in s["workers"]]}))' "$work/stats.json")"
    echo "{\"case\": \"gpulab-w${workers}t${threads}\", \"round\": $round, \"result\": $line}" >>"$results"
    echo "round $round gpulab w${workers}t${threads}: $line"
  done
done

mkdir -p "$(dirname "$OUT")"
"$PYTHON" - "$results" "$OUT" "$FRAMES" "$HEIGHT" "$WIDTH" "$VIDEO" <<'PY'
import json, platform, statistics, subprocess, sys, datetime
rows = [json.loads(l) for l in open(sys.argv[1])]
fps = {}
for r in rows:
    fps.setdefault(r["case"], []).append(r["result"]["fps"])
med = {k: statistics.median(v) for k, v in fps.items()}
try:
    commit = subprocess.check_output(["git", "rev-parse", "--short", "HEAD"], text=True).strip()
except Exception:
    commit = "unknown"
out = {
    "benchmark": "stream-cpu",
    "machine": platform.node(), "cores": __import__("os").cpu_count(),
    "date": datetime.datetime.utcnow().isoformat(timespec="seconds") + "Z", "commit": commit,
    "model": "transformer_net (seeded, the same .pth on both sides)",
    "video": sys.argv[6], "frames": int(sys.argv[3]),
    "network_input": f"{sys.argv[4]}x{sys.argv[5]} (height x width), output resized back to the source's size",
    "median_fps": med,
    "ratio_gpulab_w1t2_over_peer_t2": med["gpulab-w1t2"] / med["peer-t2"],
    "ratio_gpulab_w2t1_over_peer_t2": med["gpulab-w2t1"] / med["peer-t2"],
    "ratio_gpulab_w1t1_over_peer_t1": med["gpulab-w1t1"] / med["peer-t1"],
    "scaling_efficiency_w1t1_to_w2t1": med["gpulab-w2t1"] / (2 * med["gpulab-w1t1"]),
    "rounds": rows,
}
json.dump(out, open(sys.argv[2], "w"), indent=2)
print(json.dumps({k: v for k, v in out.items() if k != "rounds"}, indent=2))
PY
