#!/usr/bin/env python3
# PyTorch peer of `gpulab train --data FOLDER --model resnet18
# --random-resized-crop 224 --rand-x-reflection` through the streaming loader:
# end-to-end training images/s from JPEG files, timed as gpulab's summary.json.
"""End-to-end training throughput of torchvision's resnet18 from an image folder.

Usage: python3 bench/peers/train_folder.py --data DIR [--workers 8]
           [--batch-size 256] [--epochs 5] [--size 224] [--device cuda|cpu]
           [--precision bf16|fp32] [--channels-last] [--threads N] [--json FILE]

torchvision ImageFolder + DataLoader(num_workers=N, pin_memory=True, shuffled
every epoch, persistent workers) decoding with PIL, RandomResizedCrop(size),
RandomHorizontalFlip, ToTensor, Normalize; resnet18(num_classes = the folder's
classes), SGD momentum 0.9, lr 0.01, weight decay 1e-4 (gpulab's defaults);
bf16 autocast and channels-last with --precision bf16 --channels-last (gpulab's
GPU defaults). The losses are read on the host once per epoch, as gpulab logs
one row per epoch with --verbose-frequency above the epoch's steps.

images_per_second is gpulab's definition: every image trained on, over the
time from building the model to the end of the last step (the workers' start
and the first epoch's cuDNN set-up included). images_per_second_steady
leaves the first epoch out; data_wait_share is the share of that time spent
waiting for the next batch.
"""
import argparse
import contextlib
import os
import sys
import time

import torch
import torch.nn.functional as F
import torchvision

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peer_env  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="image folder, one sub-folder per class")
    ap.add_argument("--workers", type=int, default=8, help="DataLoader workers (default 8)")
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--size", type=int, default=224, help="RandomResizedCrop size")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--precision", default="bf16", choices=("bf16", "fp32"))
    ap.add_argument("--channels-last", action="store_true")
    ap.add_argument("--threads", type=int, default=0, help="intra-op threads (0: PyTorch's)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json")
    a = ap.parse_args()
    device = torch.device(a.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        ap.error(f"--device {a.device}: PyTorch sees no GPU")
    bf16 = a.precision == "bf16"
    if bf16 and device.type != "cuda":
        ap.error("--precision bf16 is for --device cuda (gpulab trains fp32 on a CPU)")
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)

    ds = torchvision.datasets.ImageFolder(a.data,
                                          transform=peer_env.imagenet_train_transform(a.size))
    loader = torch.utils.data.DataLoader(
        ds, batch_size=a.batch_size, shuffle=True, num_workers=a.workers,
        pin_memory=device.type == "cuda", persistent_workers=a.workers > 0)
    memory_format = torch.channels_last if a.channels_last else torch.contiguous_format

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    # gpulab's clock starts before the model is built and moved to the device.
    start = time.perf_counter()
    model = torchvision.models.resnet18(num_classes=len(ds.classes)).to(device)
    model = model.to(memory_format=memory_format)
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if bf16 else \
        contextlib.nullcontext
    images, steps, wait = 0, 0, 0.0
    epoch_ends = []  # (seconds since start, images so far, wait so far) after each epoch
    losses = []
    for epoch in range(a.epochs):
        pending = []
        it = iter(loader)
        while True:
            t0 = time.perf_counter()
            try:
                x, y = next(it)
            except StopIteration:
                break
            x = x.to(device, non_blocking=True).contiguous(memory_format=memory_format)
            y = y.to(device, non_blocking=True)
            wait += time.perf_counter() - t0
            opt.zero_grad(set_to_none=True)
            with autocast():
                loss = F.cross_entropy(model(x).float(), y)
            loss.backward()
            opt.step()
            pending.append(loss.detach())
            images += y.shape[0]
            steps += 1
        values = torch.stack(pending).float().cpu()  # one host sync per epoch
        if not torch.isfinite(values).all():
            sys.exit(f"error: the loss is not finite in epoch {epoch + 1}")
        losses.append(values[-1].item())
        sync()
        epoch_ends.append((time.perf_counter() - start, images, wait))
    seconds = epoch_ends[-1][0]
    steady = None
    if len(epoch_ends) > 1:
        t1, n1, w1 = epoch_ends[0]
        steady = {"images_per_second": (images - n1) / (seconds - t1),
                  "data_wait_share": (wait - w1) / (seconds - t1)}
    result = {
        "benchmark": "train_folder", "implementation": "pytorch-eager",
        "model": "resnet18", "data": a.data, "images": images, "classes": len(ds.classes),
        "steps": steps, "epochs": a.epochs, "batch_size": a.batch_size, "size": a.size,
        "workers": a.workers, "threads": torch.get_num_threads(), "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "dtype": "bfloat16 autocast" if bf16 else "float32",
        "memory_format": "channels_last" if a.channels_last else "contiguous",
        "seconds": seconds, "images_per_second": images / seconds,
        "data_wait_seconds": wait, "data_wait_share": wait / seconds,
        "images_per_second_steady": steady and steady["images_per_second"],
        "data_wait_share_steady": steady and steady["data_wait_share"],
        "epoch_ends": [{"seconds": t, "images": n} for t, n, _ in epoch_ends],
        "loss_per_epoch": losses,
        "peak_memory_bytes": torch.cuda.max_memory_allocated(device) if device.type == "cuda"
        else 0,
        "torch_version": torch.__version__, "torchvision_version": torchvision.__version__,
        "machine": peer_env.host_name(), "cpu": peer_env.cpu_model(),
        "git_commit": peer_env.git_commit()}
    steady_text = f", steady {steady['images_per_second']:.0f}" if steady else ""
    print(f"pytorch resnet18 from {a.data}: {result['images_per_second']:.0f} images/s"
          f"{steady_text} ({images} images, {steps} steps in {seconds:.1f} s, {a.workers} "
          f"workers, batch {a.batch_size}, data wait {result['data_wait_share']:.1%})")
    if a.json:
        peer_env.write_json_atomic(a.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
