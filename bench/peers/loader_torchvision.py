#!/usr/bin/env python3
"""Loader peer: torchvision ImageFolder + DataLoader (num_workers N) with
RandomResizedCrop(224), RandomHorizontalFlip, ToTensor, Normalize at batch B:
images/s of read + decode + augment + collate, as `gpulab bench loader`.

    /usr/bin/python3 bench/peers/loader_torchvision.py --data DIR --workers 2 \
        --batch-size 64 [--batches K] [--json FILE]"""
import argparse
import os
import sys
import time

import torch
import torchvision

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peer_env  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--batches", type=int, default=0, help="0 = one pass (at most 100)")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json")
    a = p.parse_args()
    torch.manual_seed(a.seed)
    torch.set_num_threads(1)
    ds = torchvision.datasets.ImageFolder(a.data,
                                          transform=peer_env.imagenet_train_transform(a.size))
    batches = a.batches or max(1, min(100, len(ds) // a.batch_size))
    # Samples with replacement so any K batches can be drawn from a small set.
    sampler = torch.utils.data.RandomSampler(ds, replacement=True,
                                             num_samples=(a.warmup + batches) * a.batch_size)
    # workers=0 would decode in this process; N >= 1 matches gpulab's N threads.
    loader = torch.utils.data.DataLoader(ds, batch_size=a.batch_size, sampler=sampler,
                                         num_workers=a.workers, persistent_workers=False)
    it = iter(loader)
    for _ in range(a.warmup):
        x, _ = next(it)
        assert x.shape[1:] == (3, a.size, a.size) and torch.isfinite(x).all()
    start = time.perf_counter()
    images = 0
    for _ in range(batches):
        x, y = next(it)
        images += x.shape[0]
    seconds = time.perf_counter() - start
    out = {"benchmark": "loader", "implementation": "torchvision",
           "torchvision_version": torchvision.__version__, "torch_version": torch.__version__,
           "data": a.data, "images_per_second": images / seconds, "images": images,
           "seconds": seconds, "batches": batches, "batch_size": a.batch_size,
           "threads": a.workers, "output": [3, a.size, a.size],
           "machine": peer_env.host_name(), "cpu": peer_env.cpu_model(),
           "commit": peer_env.git_commit()}
    print(f"torchvision loader: {out['images_per_second']:.1f} images/s "
          f"({images} images in {seconds:.2f} s, {a.workers} workers, batch {a.batch_size})")
    if a.json:
        peer_env.write_json_atomic(a.json, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
