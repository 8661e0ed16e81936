#!/usr/bin/env python3
"""Merges scripts/device-check.sh's results into one JSON and prints the summary.

Usage: device_check_summary.py RESULTS_DIR OUT_JSON DEVICE SECONDS
       device_check_summary.py --markdown device-check.json   # tables for docs/benchmarks.md

RESULTS_DIR holds stages.tsv (name, rc, seconds per stage) and one JSON per
program run: model-{gpulab,pytorch}-ROUND.json, train-gpulab-ROUND.json,
train-pytorch-ROUND-K.json (K = 0: bf16 peer, 1: fp32 peer),
dist-{gpulab,pytorch}-{1rank,2ranks}.json, model-pytorch-cudnnbench.json (the
peer with cudnn.benchmark on), cli-train-{graphs,eager}.json (`gpulab train`'s
summary.json). Figures are medians over rounds;
ratio = gpulab images/s / PyTorch images/s (above 1: gpulab is faster).
"""
import glob
import json
import os
import statistics
import sys


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        return {"error": f"{os.path.basename(path)}: {e}"}


def median_or_none(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def ratio(a, b):
    return a / b if a and b else None


def model_summary(runs):
    """Per (model, mode, precision): median images/s of each side, ratio, MFU."""
    rows = {}
    for name, data in runs.items():
        if not name.startswith("model-") or "results" not in data:
            continue
        for e in data["results"]:
            side = name.split("-")[1]
            # A peer run with cuDNN's autotuner on (gpulab's default) is
            # a second peer beside PyTorch's default.
            if side == "pytorch" and e.get("cudnn_benchmark"):
                side = "pytorch_cudnn_benchmark"
            key = (e["model"], e["mode"], e.get("precision", "fp32"))
            rows.setdefault(key, {"gpulab": [], "pytorch": [],
                                  "pytorch_cudnn_benchmark": []})[side].append(e)
    out = []
    for (model, mode, precision), sides in sorted(rows.items()):
        row = {"model": model, "mode": mode, "precision": precision}
        for side, entries in sides.items():
            row[f"{side}_images_per_second"] = median_or_none(
                e["images_per_second"] for e in entries)
            row[f"{side}_runs"] = [e["images_per_second"] for e in entries]
            row[f"{side}_mfu"] = median_or_none(e.get("mfu") for e in entries)
            row[f"{side}_peak_memory_gib"] = median_or_none(
                e.get("peak_memory_bytes", 0) / 2**30 or None for e in entries)
        row["ratio"] = ratio(row.get("gpulab_images_per_second"),
                             row.get("pytorch_images_per_second"))
        row["ratio_vs_cudnn_benchmark_peer"] = ratio(
            row.get("gpulab_images_per_second"),
            row.get("pytorch_cudnn_benchmark_images_per_second"))
        out.append(row)
    return out


def train_summary(runs):
    """gpulab's cases against the eager peer of the same precision."""
    ours, peers = {}, {"bf16": [], "fp32": []}
    for name, data in runs.items():
        if name.startswith("train-gpulab-") and "cases" in data:
            for c in data["cases"]:
                ours.setdefault(c["case"], []).append(c["images_per_second"])
        elif name.startswith("train-pytorch-") and "images_per_second" in data:
            precision = "bf16" if "bfloat16" in data.get("dtype", "") else "fp32"
            peers[precision].append(data["images_per_second"])
    peer_of = {"gpu": "bf16", "gpu_graph": "bf16", "gpu_fp32": "fp32",
               "default": "fp32", "channels_last": "fp32"}
    out = []
    for case, values in sorted(ours.items()):
        precision = peer_of.get(case, "fp32")
        row = {"case": case, "gpulab_images_per_second": statistics.median(values),
               "gpulab_runs": values, "peer": f"pytorch eager {precision}",
               "pytorch_images_per_second": median_or_none(peers[precision]),
               "pytorch_runs": peers[precision]}
        row["ratio"] = ratio(row["gpulab_images_per_second"], row["pytorch_images_per_second"])
        out.append(row)
    return out


def cli_train_summary(runs):
    """`gpulab train` itself: images/s with the step replayed as CUDA graphs
    and eagerly (cli-train-{graphs,eager}.json are the runs' summary.json)."""
    out = {}
    for mode in ("graphs", "eager"):
        r = runs.get(f"cli-train-{mode}")
        if r and "images_per_second" in r:
            out[mode] = {k: r.get(k) for k in ("images_per_second", "cuda_graphs",
                                               "cuda_graph_replays", "iterations",
                                               "final_minibatch_accuracy", "device")}
    if "graphs" in out and "eager" in out:
        out["ratio"] = ratio(out["graphs"]["images_per_second"],
                             out["eager"]["images_per_second"])
    return out


def dist_summary(runs):
    out = {}
    for name, data in runs.items():
        if not name.startswith("dist-"):
            continue
        entry = {k: data.get(k) for k in ("world_size", "backend", "ms_per_step",
                                            "allreduce_ms_exposed_overlap", "hidden_share",
                                            "allreduce", "error")}
        out[name[len("dist-"):]] = {k: v for k, v in entry.items() if v is not None}
    for ranks in ("1rank", "2ranks"):
        g, p = out.get(f"gpulab-{ranks}", {}), out.get(f"pytorch-{ranks}", {})
        go = g.get("ms_per_step", {}).get("overlap")
        po = p.get("ms_per_step", {}).get("overlap")
        if go and po:
            out[f"step_time_ratio_pytorch_over_gpulab_{ranks}"] = po / go
    return out


def fmt(x, spec=".2f"):
    return "-" if x is None else format(x, spec)


def markdown(path):
    """docs/benchmarks.md tables from a device-check.json."""
    with open(path) as f:
        doc = json.load(f)
    s = doc["summary"]
    runs = doc["runs"]
    first = next((r for n, r in runs.items() if n.startswith("model-gpulab")), {})
    peer = next((r for n, r in runs.items() if n.startswith("model-pytorch")), {})
    print(f"Device: {first.get('device_name', '?')}; gpulab commit {first.get('git_commit', '?')}, "
          f"LibTorch {first.get('torch_version', '?')}; peer PyTorch {peer.get('torch_version', '?')}."
          "\n")
    print("| model | mode | precision | gpulab img/s | PyTorch img/s | ratio | PyTorch with "
          "cudnn.benchmark img/s | ratio | MFU gpulab | MFU PyTorch | peak GiB gpulab / PyTorch |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in s["model_throughput"]:
        print(f"| {r['model']} | {r['mode']} | {r['precision']} | "
              f"{fmt(r.get('gpulab_images_per_second'), '.0f')} | "
              f"{fmt(r.get('pytorch_images_per_second'), '.0f')} | **{fmt(r['ratio'])}** | "
              f"{fmt(r.get('pytorch_cudnn_benchmark_images_per_second'), '.0f')} | "
              f"{fmt(r.get('ratio_vs_cudnn_benchmark_peer'))} | "
              f"{fmt(r.get('gpulab_mfu'), '.1%')} | {fmt(r.get('pytorch_mfu'), '.1%')} | "
              f"{fmt(r.get('gpulab_peak_memory_gib'))} / {fmt(r.get('pytorch_peak_memory_gib'))} |")
    print("\n| basic_cnn case | gpulab img/s | peer | PyTorch img/s | ratio |")
    print("|---|---|---|---|---|")
    for r in s["train_throughput"]:
        print(f"| {r['case']} | {fmt(r['gpulab_images_per_second'], '.0f')} | {r['peer']} | "
              f"{fmt(r['pytorch_images_per_second'], '.0f')} | **{fmt(r['ratio'])}** |")
    print("\n| data-parallel run | backend | step ms (compute / overlap) | bucket all-reduce ms | "
          "busbw GB/s |")
    print("|---|---|---|---|---|")
    for name, r in s["dist_step"].items():
        if not isinstance(r, dict):
            continue
        step = r.get("ms_per_step", {})
        ar = r.get("allreduce", {})
        print(f"| {name} | {r.get('backend', '-')} | {fmt(step.get('compute'))} / "
              f"{fmt(step.get('overlap'))} | {fmt(ar.get('ms_median'), '.3f')} | "
              f"{fmt(ar.get('busbw_gb_per_s'), '.1f')} |")
    cli = s.get("cli_train", {})
    if cli:
        print("\n| `gpulab train`, basic_cnn, Fashion-MNIST | images/s | CUDA graphs | replays |")
        print("|---|---|---|---|")
        for mode in ("graphs", "eager"):
            r = cli.get(mode)
            if r:
                print(f"| {mode} | {fmt(r['images_per_second'], '.0f')} | {r['cuda_graphs']} | "
                      f"{r['cuda_graph_replays']} |")
        print(f"\nGraphs vs eager: **{fmt(cli.get('ratio'))}x**.")
    failed = doc["device_check"]["failed_stages"]
    print(f"\nFailed stages: {', '.join(failed) if failed else 'none'}.")


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--markdown":
        return markdown(sys.argv[2])
    results_dir, out_json, device, seconds = sys.argv[1:5]
    stages = []
    tsv = os.path.join(results_dir, "stages.tsv")
    if os.path.exists(tsv):
        with open(tsv) as f:
            for line in f:
                name, rc, secs = line.rstrip("\n").split("\t")
                stages.append({"stage": name, "rc": rc, "seconds": int(secs)})
    runs = {os.path.basename(p)[:-5]: load(p)
            for p in sorted(glob.glob(os.path.join(results_dir, "*.json")))}
    summary = {"model_throughput": model_summary(runs),
               "train_throughput": train_summary(runs),
               "dist_step": dist_summary(runs),
               "cli_train": cli_train_summary(runs)}
    doc = {"device_check": {"device": device, "seconds": int(seconds),
                            "failed_stages": [s["stage"] for s in stages
                                              if s["rc"] not in ("0", "skipped")],
                            "skipped_stages": [s["stage"] for s in stages
                                               if s["rc"] == "skipped"]},
           "stages": stages, "summary": summary, "runs": runs}
    tmp = out_json + ".tmp"
    with open(tmp, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    os.replace(tmp, out_json)

    print("\nstage                       rc  seconds")
    for s in stages:
        print(f"{s['stage']:27s} {s['rc']:>3s} {s['seconds']:8d}")
    print("\nmodel       mode     prec  gpulab img/s  pytorch img/s  ratio  MFU gpulab/pytorch"
          "  peak GiB gpulab/pytorch")
    for r in summary["model_throughput"]:
        print(f"{r['model']:11s} {r['mode']:8s} {r['precision']:5s} "
              f"{fmt(r.get('gpulab_images_per_second'), '12.1f')} "
              f"{fmt(r.get('pytorch_images_per_second'), '14.1f')} {fmt(r['ratio'], '6.2f')}  "
              f"{fmt(r.get('gpulab_mfu'), '.3f')}/{fmt(r.get('pytorch_mfu'), '.3f')}"
              f"  {fmt(r.get('gpulab_peak_memory_gib'))}/{fmt(r.get('pytorch_peak_memory_gib'))}")
    print("\nbasic_cnn case   gpulab img/s  peer                 pytorch img/s  ratio")
    for r in summary["train_throughput"]:
        print(f"{r['case']:15s} {fmt(r['gpulab_images_per_second'], '13.0f')}  "
              f"{r['peer']:20s} {fmt(r['pytorch_images_per_second'], '13.0f')} "
              f"{fmt(r['ratio'], '6.2f')}")
    print("\ndist_step:")
    for k, v in summary["dist_step"].items():
        print(f"  {k}: {json.dumps(v)}")
    failed = doc["device_check"]["failed_stages"]
    print(f"\nfailed stages: {', '.join(failed) if failed else 'none'}; "
          f"skipped: {', '.join(doc['device_check']['skipped_stages']) or 'none'}")


if __name__ == "__main__":
    main()
