#!/usr/bin/env python3
# PyTorch DDP peer of bench_dist_step: the same torchvision model, per-rank
# batch, SGD step and timing, over Gloo between CPU ranks or NCCL between GPUs.
"""Step time of DistributedDataParallel on CPU ranks (Gloo) or GPU ranks (NCCL).

Usage: /usr/bin/python3 bench/peers/ddp_step.py --nproc 2 [--model resnet18] [--batch-size 16]
           [--size 64] [--iters 10] [--warmup 3] [--threads 1] [--bucket-cap-mb 25]
           [--device cpu|cuda] [--allreduce-mib M] [--allreduce-iters 20] [--json FILE]

With --device cuda each rank uses GPU rank % GPUs and the backend is NCCL; the
step is timed between torch.cuda.synchronize() calls. --allreduce-mib also
times all-reduces of one M MiB float32 bucket per rank (algbw = bytes / time,
busbw = algbw * 2 (n - 1) / n), as bench_dist_step does.

Each rank times, interleaved like bench_dist_step:
  compute  forward + backward + SGD step under ddp.no_sync() (no communication)
  overlap  the same through DDP (bucketed all-reduce from autograd hooks)
ms_per_step is the median; hidden_share needs the sync baseline, which DDP
does not expose, so the peer reports the exposed all-reduce time O - C.
"""
import argparse
import os
import statistics
import sys
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
import torchvision

from peer_env import cpu_model, git_commit, host_name, write_json_atomic


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_allreduce(args, device):
    """Median ms of one all-reduce of an --allreduce-mib MiB float32 bucket."""
    bucket = torch.ones(int(args.allreduce_mib * 1024 * 1024 / 4), device=device)
    ms = []
    for i in range(args.allreduce_iters + 3):
        dist.barrier()
        sync(device)
        t = time.perf_counter()
        dist.all_reduce(bucket)
        sync(device)
        if i >= 3:
            ms.append(1e3 * (time.perf_counter() - t))
    expected = float(args.nproc) ** (args.allreduce_iters + 3)
    got = bucket[-1].item()
    if abs(got - expected) > 1e-3 * expected:
        raise RuntimeError(f"all-reduce: expected {expected}, found {got}")
    return statistics.median(ms)


def rank_main(rank, args, port):
    torch.set_num_threads(args.threads)
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    if args.device == "cuda":
        device = torch.device("cuda", rank % torch.cuda.device_count())
        torch.cuda.set_device(device)
        dist.init_process_group("nccl", rank=rank, world_size=args.nproc, device_id=device)
    else:
        device = torch.device("cpu")
        dist.init_process_group("gloo", rank=rank, world_size=args.nproc)
    torch.manual_seed(0)
    model = getattr(torchvision.models, args.model)(num_classes=10).to(device)
    model.train()
    ddp = torch.nn.parallel.DistributedDataParallel(model, bucket_cap_mb=args.bucket_cap_mb)
    opt = torch.optim.SGD(ddp.parameters(), lr=0.01, momentum=0.9)
    torch.manual_seed(1 + rank)
    x = torch.randn(args.batch_size, 3, args.size, args.size).to(device)
    y = torch.randint(0, 10, (args.batch_size,)).to(device)
    ms = {"compute": [], "overlap": []}

    def step(mode):
        opt.zero_grad(set_to_none=True)
        if mode == "compute":
            with ddp.no_sync():
                F.cross_entropy(ddp(x), y).backward()
        else:
            F.cross_entropy(ddp(x), y).backward()
        opt.step()

    for i in range(args.warmup + args.iters):
        for mode in ("compute", "overlap"):
            dist.barrier()
            sync(device)
            t = time.perf_counter()
            step(mode)
            sync(device)
            if i >= args.warmup:
                ms[mode].append(1e3 * (time.perf_counter() - t))
    allreduce_ms = time_allreduce(args, device) if args.allreduce_mib > 0 else None
    if rank == 0:
        c = statistics.median(ms["compute"])
        o = statistics.median(ms["overlap"])
        grad_mb = sum(p.numel() * 4 for p in model.parameters()) / 1e6
        result = {
            "benchmark": "dist_step",
            "framework": f"pytorch {torch.__version__} DDP",
            "machine": {"host": host_name(), "cpu": cpu_model()},
            "commit": git_commit(),
            "model": args.model,
            "input": [3, args.size, args.size],
            "world_size": args.nproc,
            "backend": dist.get_backend(),
            "device": str(device),
            "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
            "threads_per_rank": args.threads,
            "batch_per_rank": args.batch_size,
            "gradient_megabytes": grad_mb,
            "iters": args.iters,
            "ms_per_step": {"compute": c, "overlap": o},
            "allreduce_ms_exposed_overlap": o - c,
        }
        if allreduce_ms is not None:
            algbw = args.allreduce_mib * 1024 * 1024 / (allreduce_ms / 1e3) / 1e9
            result["allreduce"] = {
                "bucket_mib": args.allreduce_mib, "iters": args.allreduce_iters,
                "ms_median": allreduce_ms, "algbw_gb_per_s": algbw,
                "busbw_gb_per_s": algbw * 2 * (args.nproc - 1) / args.nproc}
        print(result)
        if args.json:
            write_json_atomic(args.json, result)
    dist.barrier()
    # Tearing the Gloo group down can hang at exit (seen with PyTorch 1.13 on
    # 2 CPU ranks, after the results were written): leave at once instead.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--nproc", type=int, default=2)
    p.add_argument("--model", default="resnet18")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--iters", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--bucket-cap-mb", type=float, default=25)
    p.add_argument("--port", type=int, default=29731)
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    p.add_argument("--allreduce-mib", type=float, default=0)
    p.add_argument("--allreduce-iters", type=int, default=20)
    p.add_argument("--json")
    args = p.parse_args()
    mp.spawn(rank_main, args=(args, args.port), nprocs=args.nproc, join=True)


if __name__ == "__main__":
    main()
