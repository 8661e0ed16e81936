#!/usr/bin/env python3
# PyTorch eager peer of bench_model_throughput: the same torchvision models (and
# segmentation networks, bench/peers/segmentation_models.py), fixed random
# batch, modes, solver, validation and timing, the same JSON.
"""Forward and training-step images/s of torchvision models in PyTorch eager mode.

Usage: /usr/bin/python3 bench/peers/model_throughput.py [--models resnet18,alexnet,vgg16]
           [--batch-size 16] [--threads 2] [--size 224 | --height H --width W]
           [--num-classes N] [--iters 10] [--warmup 2]
           [--modes forward,train] [--seed 0] [--device cpu|cuda[:N]]
           [--precisions fp32,bf16] [--memory-format contiguous|channels_last]
           [--peak-tflops 990] [--json FILE]

forward: model.eval() under torch.no_grad(), time model(x).
train:   model.train(), zero_grad(set_to_none=True), cross-entropy, backward,
         SGD (lr 0.01, momentum 0.9) step, loss.item(); at least 2 warm-up steps,
         and the loss on the fixed batch must fall from step 1 to step 2 (both
         steps draw the same dropout masks). [N, C, H, W] logits (erfnet,
         deeplabv3plus) take a per-pixel cross-entropy against random [N, H, W]
         targets drawn by a generator of their own seeded with --seed.
bf16:    torch.autocast("cuda", dtype=torch.bfloat16) around forward and loss.
On a GPU each timed iteration ends with torch.cuda.synchronize() (training
also reads its loss), and torch.cuda.max_memory_allocated() is reported.
images_per_second = batch / mean iteration time; ms_per_iter is that mean.
"""
import contextlib
import argparse
import statistics
import sys
import time

import torch
import torch.nn.functional as F
import torchvision

import segmentation_models
from peer_env import cpu_model, git_commit, host_name, write_json_atomic

NUM_CLASSES = 1000  # classifiers; segmentation_models.MODELS has the others'
IN_CHANNELS = 3
LEARN_RATE = 0.01
MOMENTUM = 0.9
MIN_TRAIN_WARMUP = 2
# Forward GFLOP per 224x224 image, as bench_model_throughput's table.
FORWARD_GFLOP_224 = {
    "alexnet": 1.43, "resnet18": 3.6, "resnet34": 7.33, "resnet50": 8.18, "resnet101": 15.6,
    "resnet152": 23.0, "vgg11": 15.2, "vgg13": 22.6, "vgg16": 30.9, "vgg19": 39.3,
}
# Forward GFLOP per megapixel of the segmentation networks, as bench_model_throughput's.
FORWARD_GFLOP_PER_MEGAPIXEL = {"erfnet": 101.52, "deeplabv3plus": 314.18}


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def autocast(bf16):
    return torch.autocast("cuda", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()


def time_forward(model, x, num_classes, args, device, bf16):
    model.eval()
    r = {"iter_ms": []}
    with torch.no_grad():
        for i in range(max(args.warmup, 1)):
            with autocast(bf16):
                y = model(x)
            if i == 0:  # validate once: shape and finite logits
                n, h, w = args.batch_size, x.shape[2], x.shape[3]
                if tuple(y.shape) not in ((n, num_classes), (n, num_classes, h, w)):
                    sys.exit(f"error: forward: expected logits [{n}, {num_classes}] or "
                             f"[{n}, {num_classes}, {h}, {w}], got {list(y.shape)}")
                if not torch.isfinite(y).all().item():
                    sys.exit("error: forward: the logits are not all finite")
                r["validation"] = {"logits_finite": True,
                                   "logits_abs_mean": y.abs().mean().item()}
        for _ in range(args.iters):
            sync(device)
            t0 = time.perf_counter()
            with autocast(bf16):
                y = model(x)
            sync(device)
            r["iter_ms"].append(1e3 * (time.perf_counter() - t0))
    return r


def time_train(model, x, labels, args, bf16):
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
        with autocast(bf16):
            logits = model(x).float()
            if logits.dim() == 4 and labels.dim() == 1:
                # Per-pixel targets, from a generator of their own (the
                # dropout masks stay as drawn).
                gen = torch.Generator().manual_seed(args.seed)
                labels = torch.randint(0, logits.shape[1], (logits.shape[0],) + logits.shape[2:],
                                       generator=gen, dtype=torch.int64).to(logits.device)
            loss = F.cross_entropy(logits, labels)
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
    ap.add_argument("--height", type=int, default=0, help="input height (default --size)")
    ap.add_argument("--width", type=int, default=0, help="input width (default --size)")
    ap.add_argument("--num-classes", type=int, default=0,
                    help="classes (default per model: 1000, erfnet 20, deeplabv3plus 11)")
    ap.add_argument("--iters", type=int, default=10, help="timed iterations (default 10)")
    ap.add_argument("--warmup", type=int, default=2,
                    help="untimed iterations first; training does at least 2 (default 2)")
    ap.add_argument("--modes", default="forward,train", help="forward and/or train")
    ap.add_argument("--seed", type=int, default=0, help="seeds weights, batch, dropout")
    ap.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    ap.add_argument("--precisions", default="fp32",
                    help="fp32 and/or bf16 (CUDA autocast) (default fp32)")
    ap.add_argument("--memory-format", default="contiguous",
                    choices=("contiguous", "channels_last"),
                    help="layout of the model and the input (default contiguous)")
    ap.add_argument("--cudnn-benchmark", type=int, default=0, choices=(0, 1),
                    help="1: torch.backends.cudnn.benchmark on (default 0, PyTorch's default)")
    ap.add_argument("--peak-tflops", type=float, default=990.0,
                    help="device peak for model-FLOPs utilisation (default 990, H200 bf16)")
    ap.add_argument("--json", help="write the results as JSON to FILE")
    args = ap.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        ap.error(f"--device {args.device}: PyTorch sees no GPU")
    precisions = [p.strip() for p in args.precisions.split(",") if p.strip()]
    for p in precisions:
        if p not in ("fp32", "bf16"):
            ap.error(f"--precisions: unknown precision '{p}'; valid: fp32, bf16")
        if p == "bf16" and device.type != "cuda":
            ap.error("--precisions bf16 is CUDA autocast: it needs --device cuda")
    channels_last = args.memory_format == "channels_last"
    torch.backends.cudnn.benchmark = bool(args.cudnn_benchmark)
    memory_format = "channels_last (NHWC)" if channels_last else "contiguous (NCHW)"
    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_model()

    torch.set_num_interop_threads(1)  # before any inter-op work, as the C++ side
    torch.set_num_threads(args.threads)
    models = [m.strip().lower() for m in args.models.split(",") if m.strip()]
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    for m in modes:
        if m not in ("forward", "train"):
            ap.error(f"--modes: unknown mode '{m}'; valid: forward, train")
    for m in models:
        if m not in segmentation_models.MODELS and not hasattr(torchvision.models, m):
            ap.error(f"--models: torchvision.models has no '{m}'")
    height, width = args.height or args.size, args.width or args.size
    if any(m not in segmentation_models.MODELS for m in models) and min(height, width) < 64:
        ap.error("--size: at least 64 (gpulab's ResNet uses a small-input stem below 64)")
    if min(height, width) < 16 or args.num_classes < 0:
        ap.error("--height and --width must be >= 16, --num-classes >= 1")
    size = height if height == width else None
    size_text = str(height) if height == width else f"{width}x{height}"
    if args.batch_size < 1 or args.threads < 1 or args.iters < 1 or args.warmup < 0:
        ap.error("--batch-size, --threads and --iters must be >= 1, --warmup >= 0")

    machine, cpu, commit = host_name(), cpu_model(), git_commit()
    results = []
    for arch, precision in [(a, p) for a in models for p in precisions]:
        bf16 = precision == "bf16"
        # A fresh model per precision: each starts from the same seeded weights.
        torch.manual_seed(args.seed)
        if arch in segmentation_models.MODELS:
            num_classes = args.num_classes or segmentation_models.MODELS[arch]
            model = segmentation_models.create(arch, num_classes, IN_CHANNELS)
        else:
            num_classes = args.num_classes or NUM_CLASSES
            model = getattr(torchvision.models, arch)(num_classes=num_classes)
        num_parameters = sum(p.numel() for p in model.parameters())
        model.to(device)
        if channels_last:
            model.to(memory_format=torch.channels_last)
        # Drawn on the CPU, so the batch is the same on every device.
        x = torch.randn(args.batch_size, IN_CHANNELS, height, width).to(device)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        labels = torch.randint(0, num_classes, (args.batch_size,), dtype=torch.int64).to(device)
        gflop_224 = FORWARD_GFLOP_224.get(arch)
        if gflop_224:
            gflop_forward = gflop_224 * height * width / 224 ** 2
        elif arch in FORWARD_GFLOP_PER_MEGAPIXEL:
            gflop_forward = FORWARD_GFLOP_PER_MEGAPIXEL[arch] * height * width / 1e6
        else:
            gflop_forward = None
        for mode in modes:
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            r = time_forward(model, x, num_classes, args, device, bf16) if mode == "forward" else \
                time_train(model, x, labels, args, bf16)
            mean_ms = sum(r["iter_ms"]) / len(r["iter_ms"])
            median_ms = statistics.median(r["iter_ms"])
            ips = 1e3 * args.batch_size / mean_ms
            line = (f"pytorch {arch:10s} {mode:7s} {precision:4s} {device} batch {args.batch_size} "
                    f"size {size_text} threads {torch.get_num_threads()}: {ips:8.2f} images/s, "
                    f"{mean_ms:9.2f} ms/iter (median {median_ms:.2f})")
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
                "size": size,
                "height": height,
                "width": width,
                "num_classes": num_classes,
                "parameters": num_parameters,
                "precision": precision,
                "dtype": "bfloat16 autocast (float32 weights)" if bf16 else "float32",
                "device": str(device),
                "device_name": device_name,
                "memory_format": memory_format,
                "machine": machine,
                "cpu_model": cpu,
                "torch_version": torch.__version__,
                "torchvision_version": torchvision.__version__,
                "git_commit": commit,
                "validation": r["validation"],
            }
            if "phase_ms_median" in r:
                entry["phase_ms_median"] = r["phase_ms_median"]
            if device.type == "cuda":
                entry["peak_memory_bytes"] = torch.cuda.max_memory_allocated(device)
                entry["cudnn_allow_tf32"] = torch.backends.cudnn.allow_tf32
                entry["cudnn_benchmark"] = torch.backends.cudnn.benchmark
                entry["matmul_allow_tf32"] = torch.backends.cuda.matmul.allow_tf32
                line += f", peak {entry['peak_memory_bytes'] / 2**30:.2f} GiB"
            if gflop_forward:
                per_image = (3 if mode == "train" else 1) * gflop_forward
                tflops = ips * per_image / 1e3
                entry.update({"gflop_per_image": per_image, "model_tflops": tflops,
                              "peak_tflops": args.peak_tflops, "mfu": tflops / args.peak_tflops})
                if device.type == "cuda":
                    line += f", MFU {100 * tflops / args.peak_tflops:.1f}%"
            print(line, flush=True)
            results.append(entry)

    if args.json:
        out = {
            "benchmark": "model_throughput",
            "implementation": "pytorch-eager",
            "statistic": "images_per_second = batch / mean iteration time over the timed "
                         "iterations; ms_per_iter is that mean, ms_per_iter_median the median",
            "batch_size": args.batch_size,
            "threads": torch.get_num_threads(),
            "size": size,
            "height": height,
            "width": width,
            "precisions": precisions,
            "device": str(device),
            "device_name": device_name,
            "memory_format": memory_format,
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
