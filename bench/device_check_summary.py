#!/usr/bin/env python3
"""Merges scripts/device-check.sh's results into one JSON and prints the summary.

Usage: device_check_summary.py RESULTS_DIR OUT_JSON DEVICE SECONDS
       device_check_summary.py --markdown device-check.json   # tables for docs/benchmarks.md

RESULTS_DIR holds stages.tsv (name, rc, seconds per stage) and one JSON per
program run: model-{gpulab,pytorch}-ROUND.json, train-gpulab-ROUND.json,
train-pytorch-ROUND-K.json (K = 0: bf16 peer, 1: fp32 peer),
dist-{gpulab,pytorch}-{1rank,2ranks}.json, model-pytorch-cudnnbench.json (the
peer with cudnn.benchmark on), cli-train-{graphs,eager}.json (`gpulab train`'s
summary.json), loader-{gpulab,pytorch}-ROUND.json, e2e-settings.json,
e2e-pytorch-ROUND.json and the folder e2e-gpulab-run (the `gpulab train` run:
summary.json, history.jsonl). Figures are medians over rounds; ratio = gpulab
images/s / PyTorch images/s (above 1: gpulab is faster).
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


def loader_summary(runs):
    """`gpulab bench loader` against torchvision's ImageFolder + DataLoader."""
    sides = {"gpulab": [], "pytorch": []}
    for name, data in runs.items():
        for side in sides:
            if name.startswith(f"loader-{side}-") and "images_per_second" in data:
                sides[side].append(data)
    if not sides["gpulab"] and not sides["pytorch"]:
        return {}
    first = (sides["gpulab"] or sides["pytorch"])[0]
    out = {"threads": first.get("threads"), "batch_size": first.get("batch_size"),
           "output": first.get("output")}
    for side, entries in sides.items():
        out[f"{side}_images_per_second"] = median_or_none(e["images_per_second"] for e in entries)
        out[f"{side}_runs"] = [e["images_per_second"] for e in entries]
    out["ratio"] = ratio(out["gpulab_images_per_second"], out["pytorch_images_per_second"])
    return out


def load_gpulab_run(folder):
    """A `gpulab train` run folder's summary.json and history.jsonl, or None."""
    summary = os.path.join(folder, "summary.json")
    if not os.path.exists(summary):
        return None
    history = []
    try:
        with open(os.path.join(folder, "history.jsonl")) as f:
            history = [json.loads(line) for line in f if line.strip()]
    except (OSError, ValueError):
        pass
    return {"summary": load(summary), "history": history}


def gpulab_steady(run, batch_size):
    """images/s and data wait share after the first epoch, from the rows the
    trainer logs at each epoch's end (time: wall seconds since the start;
    data_wait_share: of the training time so far, so the wait is about
    share x time)."""
    ends = {}
    for row in run.get("history", []):
        if row["iteration"] >= ends.get(row["epoch"], {}).get("iteration", -1):
            ends[row["epoch"]] = row
    if len(ends) < 2 or not batch_size:
        return None, None
    first, last = ends[min(ends)], ends[max(ends)]
    seconds = last["time"] - first["time"]
    if seconds <= 0:
        return None, None
    images = (last["iteration"] - first["iteration"]) * batch_size
    wait = (last["data_wait_share"] * last["time"] - first["data_wait_share"] * first["time"])
    return images / seconds, wait / seconds


def e2e_summary(runs):
    """resnet18 trained from the JPEG folder: gpulab's summary.json against
    the peer (bench/peers/train_folder.py), whole run and after epoch 1."""
    settings = runs.get("e2e-settings", {})
    ours = runs.get("e2e-gpulab") or {}
    summary = ours.get("summary", {})
    peers = [d for n, d in runs.items()
             if n.startswith("e2e-pytorch-") and "images_per_second" in d]
    if not summary and not peers:
        return {}
    out = {"settings": settings,
           "gpulab_images_per_second": summary.get("images_per_second"),
           "gpulab_data_wait_share": summary.get("data_wait_share"),
           "gpulab_iterations": summary.get("iterations"),
           "gpulab_device": summary.get("device"),
           "pytorch_images_per_second": median_or_none(p["images_per_second"] for p in peers),
           "pytorch_data_wait_share": median_or_none(p["data_wait_share"] for p in peers),
           "pytorch_steps": peers[0]["steps"] if peers else None}
    steady, wait = gpulab_steady(ours, settings.get("batch_size")) if ours else (None, None)
    out["gpulab_images_per_second_steady"] = steady
    out["gpulab_data_wait_share_steady"] = wait
    out["pytorch_images_per_second_steady"] = median_or_none(
        p.get("images_per_second_steady") for p in peers)
    out["pytorch_data_wait_share_steady"] = median_or_none(
        p.get("data_wait_share_steady") for p in peers)
    out["ratio"] = ratio(out["gpulab_images_per_second"], out["pytorch_images_per_second"])
    out["ratio_steady"] = ratio(steady, out["pytorch_images_per_second_steady"])
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
    loader, e2e = s.get("loader", {}), s.get("e2e_training", {})
    if loader or e2e:
        st = e2e.get("settings", {})
        print(f"\n| issue 3 ({loader.get('threads', st.get('threads', '?'))} decode threads / "
              f"DataLoader workers, batch {loader.get('batch_size', st.get('batch_size', '?'))}) | "
              "gpulab | PyTorch | ratio |")
        print("|---|---|---|---|")
        if loader:
            print(f"| loader images/s (read + decode + RandomResizedCrop + flip + normalise) | "
                  f"{fmt(loader.get('gpulab_images_per_second'), '.0f')} | "
                  f"{fmt(loader.get('pytorch_images_per_second'), '.0f')} | "
                  f"**{fmt(loader.get('ratio'))}** |")
        if e2e:
            print(f"| resnet18 training from {st.get('images', '?')} JPEGs, "
                  f"{st.get('epochs', '?')} epochs: images/s | "
                  f"{fmt(e2e.get('gpulab_images_per_second'), '.0f')} | "
                  f"{fmt(e2e.get('pytorch_images_per_second'), '.0f')} | "
                  f"**{fmt(e2e.get('ratio'))}** |")
            print(f"| the same after the first epoch | "
                  f"{fmt(e2e.get('gpulab_images_per_second_steady'), '.0f')} | "
                  f"{fmt(e2e.get('pytorch_images_per_second_steady'), '.0f')} | "
                  f"{fmt(e2e.get('ratio_steady'))} |")
            print(f"| share of the time waiting for data | "
                  f"{fmt(e2e.get('gpulab_data_wait_share'), '.1%')} | "
                  f"{fmt(e2e.get('pytorch_data_wait_share'), '.1%')} | |")
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
    e2e_run = load_gpulab_run(os.path.join(results_dir, "e2e-gpulab-run"))
    if e2e_run:
        runs["e2e-gpulab"] = e2e_run
    summary = {"model_throughput": model_summary(runs),
               "train_throughput": train_summary(runs),
               "dist_step": dist_summary(runs),
               "cli_train": cli_train_summary(runs),
               "loader": loader_summary(runs),
               "e2e_training": e2e_summary(runs)}
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
    loader, e2e = summary["loader"], summary["e2e_training"]
    if loader:
        print(f"\nloader ({loader['threads']} threads/workers, batch {loader['batch_size']}): "
              f"gpulab {fmt(loader['gpulab_images_per_second'], '.0f')} images/s, torchvision "
              f"{fmt(loader['pytorch_images_per_second'], '.0f')}, ratio {fmt(loader['ratio'])}")
    if e2e:
        print(f"resnet18 from JPEGs: gpulab {fmt(e2e['gpulab_images_per_second'], '.0f')} images/s "
              f"(wait {fmt(e2e['gpulab_data_wait_share'], '.1%')}), PyTorch "
              f"{fmt(e2e['pytorch_images_per_second'], '.0f')} "
              f"(wait {fmt(e2e['pytorch_data_wait_share'], '.1%')}), ratio {fmt(e2e['ratio'])}; "
              f"after epoch 1: {fmt(e2e['gpulab_images_per_second_steady'], '.0f')} vs "
              f"{fmt(e2e['pytorch_images_per_second_steady'], '.0f')}, ratio "
              f"{fmt(e2e['ratio_steady'])}")
    failed = doc["device_check"]["failed_stages"]
    print(f"\nfailed stages: {', '.join(failed) if failed else 'none'}; "
          f"skipped: {', '.join(doc['device_check']['skipped_stages']) or 'none'}")


if __name__ == "__main__":
    main()
