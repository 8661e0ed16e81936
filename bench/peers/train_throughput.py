#!/usr/bin/env python3
# PyTorch eager peer of bench_train_throughput: the same basic_cnn, data
# placement, optimizer, loss and per-step .item() check, timed the same way.
"""Training throughput of basic_cnn on Fashion-MNIST in PyTorch eager mode.

Usage: /usr/bin/python3 bench/peers/train_throughput.py [--batch-size 128]
           [--threads 2] [--steps 300] [--warmup 10] [--json FILE]
"""
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
    ap.add_argument("--json", help="write the result as JSON to FILE")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    # The whole training set resident as uint8 [N, 1, 28, 28]; indexed and
    # normalised per batch, as gpulab::data::ResidentBatcher does.
    images = torch.from_numpy(
        read_idx(find_file(args.data, "train-images-idx3-ubyte")).copy()).unsqueeze(1)
    labels = torch.from_numpy(
        read_idx(find_file(args.data, "train-labels-idx1-ubyte")).astype(np.int64))
    x = images.to(torch.float64).div_(255.0)
    mean = x.mean().item()
    std = x.std(unbiased=False).item()
    del x
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
    result = {
        "benchmark": "train_throughput",
        "implementation": "pytorch-eager",
        "model": "basic_cnn",
        "nf": args.nf,
        "batch_size": args.batch_size,
        "threads": torch.get_num_threads(),
        "device": "cpu",
        "dtype": "float32",
        "case": "eager",
        "steps": args.steps,
        "images_per_second": args.batch_size * args.steps / total,
        "step_ms": 1000.0 * total / args.steps,
        "step_ms_median": 1000.0 * statistics.median(times),
        "loss_first": first,
        "loss_last": last,
        "machine": machine_description(),
        "git_commit": git_commit(),
        "torch_version": torch.__version__,
    }
    print(f"pytorch eager  basic_cnn batch {args.batch_size} threads {result['threads']}: "
          f"{result['images_per_second']:.0f} images/s, {result['step_ms']:.2f} ms/step "
          f"(loss {first:.3f} -> {last:.3f})")
    if args.json:
        write_json_atomic(args.json, result)


if __name__ == "__main__":
    main()
