#!/usr/bin/env python3
# PyTorch eager peer of bench_model_throughput: the same torchvision models,
# fixed random batch, modes, solver, validation and timing, the same JSON.
"""Forward and training-step images/s of torchvision models in PyTorch eager mode.

Usage: /usr/bin/python3 bench/peers/model_throughput.py [--models resnet18,alexnet,vgg16]
           [--batch-size 16] [--threads 2] [--size 224] [--iters 10] [--warmup 2]
           [--modes forward,train] [--seed 0] [--json FILE]

forward: model.eval() under torch.no_grad(), time model(x).
train:   model.train(), zero_grad(set_to_none=True), cross-entropy, backward,
         SGD (lr 0.01, momentum 0.9) step, loss.item(); at least 2 warm-up steps,
         and the loss on the fixed batch must fall from step 1 to step 2 (both
         steps draw the same dropout masks).
images_per_second = batch / mean iteration time; ms_per_iter is that mean.
"""
import argparse
import statistics
import sys
import time

import torch
import torch.nn.functional as F
import torchvision

from peer_env import cpu_model, git_commit, host_name, write_json_atomic

NUM_CLASSES = 1000
IN_CHANNELS = 3
LEARN_RATE = 0.01
MOMENTUM = 0.9
MIN_TRAIN_WARMUP = 2


def time_forward(model, x, args):
    model.eval()
    r = {"iter_ms": []}
    with torch.no_grad():
        for i in range(max(args.warmup, 1)):
            y = model(x)
            if i == 0:  # validate once: shape and finite logits
                if tuple(y.shape) != (args.batch_size, NUM_CLASSES):
                    sys.exit(f"error: forward: expected logits [{args.batch_size}, "
                             f"{NUM_CLASSES}], got {list(y.shape)}")
                if not torch.isfinite(y).all().item():
                    sys.exit("error: forward: the logits are not all finite")
                r["validation"] = {"logits_finite": True,
                                   "logits_abs_mean": y.abs().mean().item()}
        for _ in range(args.iters):
            t0 = time.perf_counter()
            y = model(x)
            r["iter_ms"].append(1e3 * (time.perf_counter() - t0))
    return r


def time_train(model, x, labels, args):
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=LEARN_RATE, momentum=MOMENTUM)
    warmup = max(args.warmup, MIN_TRAIN_WARMUP)
    losses, iter_ms, fwd_ms, bwd_ms, step_ms = [], [], [], [], []
    for i in range(warmup + args.iters):
        if i < 2:
            # Steps 1 and 2 draw the same dropout masks, so their losses
            # differ by the first weight update alone.
            torch.manual_seed(args.seed)
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        t_zero = time.perf_counter()
        loss = F.cross_entropy(model(x), labels)
        t_fwd = time.perf_counter()
        loss.backward()
        t_bwd = time.perf_counter()
        opt.step()
        value = loss.item()
        t_end = time.perf_counter()
        if value != value or value in (float("inf"), float("-inf")):
            sys.exit(f"error: train: the loss is {value} at step {i + 1}")
        if i < warmup:
            losses.append(value)
            continue
        iter_ms.append(1e3 * (t_end - t0))
        fwd_ms.append(1e3 * (t_fwd - t_zero))
        bwd_ms.append(1e3 * (t_bwd - t_fwd))
        step_ms.append(1e3 * ((t_end - t_bwd) + (t_zero - t0)))
    # Validate once: one SGD step on the batch must lower its loss.
    if not losses[1] < losses[0]:
        sys.exit(f"error: train: the loss on the fixed batch did not fall from step 1 to 2 "
                 f"({losses[0]} -> {losses[1]})")
    return {
        "iter_ms": iter_ms,
        "validation": {"loss_step1": losses[0], "loss_step2": losses[1]},
        "phase_ms_median": {"forward": statistics.median(fwd_ms),
                            "backward": statistics.median(bwd_ms),
                            "step": statistics.median(step_ms)},
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="resnet18,alexnet,vgg16",
                    help="torchvision.models names (default resnet18,alexnet,vgg16)")
    ap.add_argument("--batch-size", type=int, default=16, help="images per iteration (default 16)")
    ap.add_argument("--threads", type=int, default=2,
                    help="intra-op threads; inter-op is 1 (default 2)")
    ap.add_argument("--size", type=int, default=224,
                    help="input height = width, at least 64 (default 224)")
    ap.add_argument("--iters", type=int, default=10, help="timed iterations (default 10)")
    ap.add_argument("--warmup", type=int, default=2,
                    help="untimed iterations first; training does at least 2 (default 2)")
    ap.add_argument("--modes", default="forward,train", help="forward and/or train")
    ap.add_argument("--seed", type=int, default=0, help="seeds weights, batch, dropout")
    ap.add_argument("--json", help="write the results as JSON to FILE")
    args = ap.parse_args()

    torch.set_num_interop_threads(1)  # before any inter-op work, as the C++ side
    torch.set_num_threads(args.threads)
    models = [m.strip().lower() for m in args.models.split(",") if m.strip()]
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    for m in modes:
        if m not in ("forward", "train"):
            ap.error(f"--modes: unknown mode '{m}'; valid: forward, train")
    for m in models:
        if not hasattr(torchvision.models, m):
            ap.error(f"--models: torchvision.models has no '{m}'")
    if args.size < 64:
        ap.error("--size: at least 64 (gpulab's ResNet uses a small-input stem below 64)")
    if args.batch_size < 1 or args.threads < 1 or args.iters < 1 or args.warmup < 0:
        ap.error("--batch-size, --threads and --iters must be >= 1, --warmup >= 0")

    machine, cpu, commit = host_name(), cpu_model(), git_commit()
    results = []
    for arch in models:
        torch.manual_seed(args.seed)
        model = getattr(torchvision.models, arch)(num_classes=NUM_CLASSES)
        num_parameters = sum(p.numel() for p in model.parameters())
        x = torch.randn(args.batch_size, IN_CHANNELS, args.size, args.size)
        labels = torch.randint(0, NUM_CLASSES, (args.batch_size,), dtype=torch.int64)
        for mode in modes:
            r = time_forward(model, x, args) if mode == "forward" else \
                time_train(model, x, labels, args)
            mean_ms = sum(r["iter_ms"]) / len(r["iter_ms"])
            median_ms = statistics.median(r["iter_ms"])
            ips = 1e3 * args.batch_size / mean_ms
            print(f"pytorch {arch:10s} {mode:7s} batch {args.batch_size} size {args.size} "
                  f"threads {torch.get_num_threads()}: {ips:8.2f} images/s, "
                  f"{mean_ms:9.2f} ms/iter (median {median_ms:.2f})", flush=True)
            entry = {
                "model": arch,
                "mode": mode,
                "implementation": "pytorch-eager",
                "images_per_second": ips,
                "ms_per_iter": mean_ms,
                "ms_per_iter_median": median_ms,
                "images_per_second_at_median": 1e3 * args.batch_size / median_ms,
                "iter_ms": r["iter_ms"],
                "iters": args.iters,
                "warmup": max(args.warmup, MIN_TRAIN_WARMUP) if mode == "train" else args.warmup,
                "batch_size": args.batch_size,
                "threads": torch.get_num_threads(),
                "interop_threads": torch.get_num_interop_threads(),
                "size": args.size,
                "parameters": num_parameters,
                "dtype": "float32",
                "device": "cpu",
                "memory_format": "contiguous (NCHW)",
                "machine": machine,
                "cpu_model": cpu,
                "torch_version": torch.__version__,
                "torchvision_version": torchvision.__version__,
                "git_commit": commit,
                "validation": r["validation"],
            }
            if "phase_ms_median" in r:
                entry["phase_ms_median"] = r["phase_ms_median"]
            results.append(entry)

    if args.json:
        out = {
            "benchmark": "model_throughput",
            "implementation": "pytorch-eager",
            "statistic": "images_per_second = batch / mean iteration time over the timed "
                         "iterations; ms_per_iter is that mean, ms_per_iter_median the median",
            "batch_size": args.batch_size,
            "threads": torch.get_num_threads(),
            "size": args.size,
            "dtype": "float32",
            "device": "cpu",
            "machine": machine,
            "cpu_model": cpu,
            "torch_version": torch.__version__,
            "torchvision_version": torchvision.__version__,
            "git_commit": commit,
            "results": results,
        }
        write_json_atomic(args.json, out)


if __name__ == "__main__":
    main()
