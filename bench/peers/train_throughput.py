#!/usr/bin/env python3
# PyTorch eager peer of bench_train_throughput: the same basic_cnn, data
# placement, optimizer, loss and per-step .item() check, timed the same way.
"""Training throughput of basic_cnn on Fashion-MNIST in PyTorch eager mode.

Usage: /usr/bin/python3 bench/peers/train_throughput.py [--batch-size 128]
           [--threads 2] [--steps 300] [--warmup 10] [--device cpu|cuda[:N]]
           [--precision fp32|bf16] [--channels-last] [--sync-every N] [--json FILE]

On a GPU (bench_train_throughput's gpu cases): the uint8 images stay on the
device, full batches of a per-epoch permutation, gradients set to None,
torch.autocast(bfloat16) around forward and loss with --precision bf16, the
losses read on the host every --sync-every steps (default 50), and images/s
from the wall time of all timed steps, synchronised at both ends.
"""
import contextlib
import argparse
import gzip
import os
import statistics
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from peer_env import cpu_model, git_commit, host_name, write_json_atomic

DEFAULT_DATA = "/usr/share/datasets/fashion-mnist"


class ConvUnit(nn.Module):
    """conv 3x3 (no bias) -> batch-norm -> ReLU, as gpulab::models::ConvUnit."""

    def __init__(self, cin, cout):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)), inplace=True)


class BasicCnn(nn.Module):
    """gpulab's basic_cnn: nf, 2nf, 3nf filters, max-pool after units 1 and 2."""

    def __init__(self, nf=8, in_channels=1, num_classes=10, height=28, width=28):
        super().__init__()
        self.layer1 = ConvUnit(in_channels, nf)
        self.layer2 = ConvUnit(nf, 2 * nf)
        self.layer3 = ConvUnit(2 * nf, 3 * nf)
        self.fc = nn.Linear((height // 4) * (width // 4) * 3 * nf, num_classes)

    def forward(self, x):
        x = F.max_pool2d(self.layer1(x), 2, 2)
        x = F.max_pool2d(self.layer2(x), 2, 2)
        x = self.layer3(x)
        return self.fc(x.flatten(1))


def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    magic = int.from_bytes(data[0:4], "big")
    ndim = magic & 0xFF
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    arr = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    return arr.reshape(dims)


def find_file(folder, stem):
    for name in (stem, stem + ".gz"):
        p = os.path.join(folder, name)
        if os.path.exists(p):
            return p
    sys.exit(f"error: no '{stem}[.gz]' in '{folder}'")


def machine_description():
    cpu = cpu_model()
    return host_name() if cpu == "unknown" else f"{host_name()} ({cpu})"


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=DEFAULT_DATA, help="IDX folder (train-* files)")
    ap.add_argument("--batch-size", type=int, default=128, help="images per step (default 128)")
    ap.add_argument("--threads", type=int, default=2, help="intra-op threads (default 2)")
    ap.add_argument("--steps", type=int, default=300, help="timed steps (default 300, min 200)")
    ap.add_argument("--warmup", type=int, default=10, help="untimed steps first (default 10)")
    ap.add_argument("--nf", type=int, default=8, help="basic_cnn filters (default 8)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    ap.add_argument("--precision", default="fp32", choices=("fp32", "bf16"),
                    help="bf16: CUDA autocast around forward and loss (default fp32)")
    ap.add_argument("--channels-last", action="store_true",
                    help="model and input in channels_last")
    ap.add_argument("--sync-every", type=int, default=0,
                    help="read the losses every N steps (default 1 on a CPU, 50 on a GPU)")
    ap.add_argument("--json", help="write the result as JSON to FILE")
    args = ap.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            ap.error(f"--device {args.device}: PyTorch sees no GPU")
        return gpu_main(args, device)
    if args.precision != "fp32" or args.channels_last:
        ap.error("--precision bf16 and --channels-last are for --device cuda")

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    # The whole training set resident as uint8 [N, 1, 28, 28]; indexed and
    # normalised per batch, as gpulab::data::ResidentBatcher does.
    images, labels, mean, std = load_training_set(args.data)
    scale = torch.tensor([1.0 / (255.0 * std)], dtype=torch.float32).view(1, 1, 1, 1)
    shift = torch.tensor([-mean / std], dtype=torch.float32).view(1, 1, 1, 1)
    n = labels.shape[0]

    model = BasicCnn(nf=args.nf)
    model.train()
    # gpulab's default TrainOptions: sgdm, lr 0.01, momentum 0.9, L2 1e-4.
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    order = torch.randperm(n)

    def step(i):
        begin = (i * args.batch_size) % (n - args.batch_size + 1)
        idx = order[begin:begin + args.batch_size]
        xb = torch.addcmul(shift, images.index_select(0, idx).to(torch.float32), scale)
        yb = labels.index_select(0, idx)
        opt.zero_grad()  # PyTorch 1.13 default: set_to_none=False, as LibTorch
        loss = F.cross_entropy(model(xb), yb)
        loss.backward()
        opt.step()
        value = loss.item()
        if not np.isfinite(value):
            sys.exit(f"error: loss is {value} at step {i}")
        return value

    # Validate once: the loss must fall over the warm-up + a few steps.
    first = step(0)
    for i in range(1, args.warmup):
        step(i)
    times = []
    last = first
    for i in range(args.steps):
        t0 = time.perf_counter()
        last = step(args.warmup + i)
        times.append(time.perf_counter() - t0)
    if not last < first:
        sys.exit(f"error: loss did not decrease ({first:.4f} -> {last:.4f})")

    total = sum(times)
    result = result_record(args, total, first, last, device="cpu", dtype="float32", case="eager",
                           step_ms_median=1000.0 * statistics.median(times))
    print(f"pytorch eager  basic_cnn batch {args.batch_size} threads {result['threads']}: "
          f"{result['images_per_second']:.0f} images/s, {result['step_ms']:.2f} ms/step "
          f"(loss {first:.3f} -> {last:.3f})")
    if args.json:
        write_json_atomic(args.json, result)


def load_training_set(data):
    """Fashion-MNIST's training images [N, 1, 28, 28] uint8, labels [N] int64,
    and the pixel mean and std (in [0, 1]) the trainer normalises with."""
    images = torch.from_numpy(
        read_idx(find_file(data, "train-images-idx3-ubyte")).copy()).unsqueeze(1)
    labels = torch.from_numpy(
        read_idx(find_file(data, "train-labels-idx1-ubyte")).astype(np.int64))
    x = images.to(torch.float64).div_(255.0)
    return images, labels, x.mean().item(), x.std(unbiased=False).item()


def result_record(args, total, first, last, **fields):
    """The JSON both steps write: what ran, `total` seconds over args.steps
    timed steps, the loss before and after, and `fields` (device, dtype, ...)."""
    result = {"benchmark": "train_throughput", "implementation": "pytorch-eager",
              "model": "basic_cnn", "nf": args.nf, "batch_size": args.batch_size,
              "threads": torch.get_num_threads()}
    result.update(fields)
    result.update({"steps": args.steps,
                   "images_per_second": args.batch_size * args.steps / total,
                   "step_ms": 1000.0 * total / args.steps,
                   "loss_first": first, "loss_last": last,
                   "machine": machine_description(), "git_commit": git_commit(),
                   "torch_version": torch.__version__})
    return result


def gpu_main(args, device):
    """The GPU step, as bench_train_throughput's gpu and gpu_fp32 cases."""
    torch.manual_seed(args.seed)
    images, labels, mean, std = load_training_set(args.data)
    n = labels.shape[0]
    images, labels = images.to(device), labels.to(device)
    if args.channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    scale = torch.tensor([1.0 / (255.0 * std)], device=device).view(1, 1, 1, 1)
    shift = torch.tensor([-mean / std], device=device).view(1, 1, 1, 1)
    model = BasicCnn(nf=args.nf).to(device)
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last)
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    bf16 = args.precision == "bf16"
    sync_every = args.sync_every or 50
    per_epoch = n // args.batch_size
    gen = torch.Generator().manual_seed(args.seed)
    order = torch.randperm(n, generator=gen)
    pending, seen = [], []

    def check(i):
        if not pending:
            return
        values = torch.stack(pending).to("cpu", torch.float64)
        pending.clear()
        if not torch.isfinite(values).all():
            sys.exit(f"error: the loss is not finite by step {i}")
        seen.append(values[0].item() if not seen else values[-1].item())

    def step(i):
        nonlocal order
        b = i % per_epoch
        if b == 0 and i > 0:
            order = torch.randperm(n, generator=gen)
        idx = order[b * args.batch_size:(b + 1) * args.batch_size].to(device, non_blocking=True)
        xb = torch.addcmul(shift, images.index_select(0, idx).to(torch.float32), scale)
        if args.channels_last:
            xb = xb.contiguous(memory_format=torch.channels_last)
        yb = labels.index_select(0, idx)
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext():
            loss = F.cross_entropy(model(xb).float(), yb)
        loss.backward()
        opt.step()
        pending.append(loss.detach())
        if i == 0 or (i + 1) % sync_every == 0 or i + 1 == args.warmup + args.steps:
            check(i)

    torch.cuda.reset_peak_memory_stats(device)
    for i in range(args.warmup):
        step(i)
    check(args.warmup)
    torch.cuda.synchronize(device)
    t0 = time.perf_counter()
    for i in range(args.warmup, args.warmup + args.steps):
        step(i)
    torch.cuda.synchronize(device)
    total = time.perf_counter() - t0
    first, last = seen[0], seen[-1]
    if not last < first:
        sys.exit(f"error: loss did not decrease ({first:.4f} -> {last:.4f})")
    result = result_record(args, total, first, last, device=str(device),
                           device_name=torch.cuda.get_device_name(device),
                           dtype="bfloat16 autocast" if bf16 else "float32",
                           memory_format="channels_last" if args.channels_last else "contiguous",
                           case="eager-" + args.precision, sync_every=sync_every,
                           peak_memory_bytes=torch.cuda.max_memory_allocated(device))
    print(f"pytorch eager {args.precision} basic_cnn batch {args.batch_size} {device}: "
          f"{result['images_per_second']:.0f} images/s, {result['step_ms']:.3f} ms/step "
          f"(loss {first:.3f} -> {last:.3f})")
    if args.json:
        write_json_atomic(args.json, result)


if __name__ == "__main__":
    main()
