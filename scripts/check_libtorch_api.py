#!/usr/bin/env python3
"""Syntax-checks translation units against another LibTorch's headers.

    scripts/check_libtorch_api.py ROOT COMPILE_COMMANDS [--std c++17] [NAME ...]

ROOT holds the other LibTorch's headers under usr/include (and CUDA's, NCCL's,
Gloo's): they are searched before the system's LibTorch. Every unit is
compiled with -fsyntax-only as a CUDA build with CUDA graphs and NCCL would
be; NAMEs keep only the files whose path contains one of them. Prints one line
per file and the first errors of each failure; exits 1 when any failed."""
import argparse
import concurrent.futures
import json
import os
import shlex
import subprocess
import sys

CUDA_BUILD = ["-DGPULAB_WITH_CUDA=1", "-DGPULAB_WITH_CUDA_GRAPHS=1", "-DUSE_CUDA=1",
              "-DUSE_C10D_NCCL=1", "-DGPULAB_WITH_NCCL=1"]


def command_for(entry, root, std):
    args = shlex.split(entry["command"])
    out = []
    skip = False
    for i, arg in enumerate(args):
        if skip:
            skip = False
            continue
        if arg == "-o":
            skip = True
            continue
        if arg == "-c":
            continue
        if arg == "/usr/include/torch/csrc/api/include" and args[i - 1] == "-isystem":
            out[-1:] = ["-isystem", f"{root}/usr/include",
                        "-isystem", f"{root}/usr/include/torch/csrc/api/include"]
            continue
        out.append(arg)
    return out[:1] + CUDA_BUILD + out[1:] + [f"-std={std}", "-fsyntax-only", "-w"]


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("root")
    p.add_argument("compile_commands")
    p.add_argument("names", nargs="*")
    p.add_argument("--std", default="c++17")
    p.add_argument("--jobs", type=int, default=os.cpu_count())
    a = p.parse_intermixed_args()
    entries = [e for e in json.load(open(a.compile_commands))
               if not a.names or any(n in e["file"] for n in a.names)]

    def run(entry):
        r = subprocess.run(command_for(entry, a.root, a.std), cwd=entry["directory"],
                           capture_output=True, text=True)
        return entry["file"], r.returncode, r.stderr

    failed = 0
    with concurrent.futures.ThreadPoolExecutor(a.jobs) as pool:
        for path, rc, err in pool.map(run, entries):
            print(("ok   " if rc == 0 else "FAIL ") + path, flush=True)
            if rc:
                failed += 1
                print("\n".join([l for l in err.splitlines() if "error" in l][:15]), flush=True)
    print(f"{len(entries) - failed} ok, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
