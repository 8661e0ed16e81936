#!/usr/bin/env python3
"""The PyTorch peer of `gpulab stream` on the CPU: the loop a PyTorch user
writes to stylise a video with pytorch/examples' TransformerNet, doing what
the pool does per frame: OpenCV read, resize to the network's size (area),
BGR->RGB, tensor, forward, clamp and round to uint8, resize back to the
source's size (bilinear), RGB->BGR, write an MJPG .avi.

Prints one JSON line: frames, seconds (first read to last write, the model
loaded before), fps. `--write-weights FILE` saves the seeded network's state
dict first (the weights both sides load).

Needs Debian's python3-torch and python3-opencv.
"""
import argparse
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from style_transfer import TransformerNet  # noqa: E402 (pytorch/examples' network)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--input", help="video file")
    ap.add_argument("--out", help="output video (.avi, MJPG)")
    ap.add_argument("--weights", help="TransformerNet state dict (torch.save) to load")
    ap.add_argument("--write-weights", metavar="FILE",
                    help="save the seeded network's state dict to FILE and exit")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--frames", type=int, default=0, help="frames to stylise (0 = all)")
    ap.add_argument("--height", type=int, required=False, default=0,
                    help="network input height (0 = the source's)")
    ap.add_argument("--width", type=int, required=False, default=0)
    ap.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    args = ap.parse_args()

    torch.manual_seed(args.seed)
    model = TransformerNet()
    if args.write_weights:
        torch.save(model.state_dict(), args.write_weights)
        return
    if not args.input or not args.out:
        ap.error("--input and --out are needed (or --write-weights FILE)")
    if args.weights:
        model.load_state_dict(torch.load(args.weights))
    import cv2  # only for the loop: writing the weights needs no OpenCV

    model.eval()
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(1)

    capture = cv2.VideoCapture(args.input)
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    writer = None
    frames = 0
    start = time.perf_counter()
    with torch.inference_mode():
        while args.frames == 0 or frames < args.frames:
            ok, bgr = capture.read()
            if not ok:
                break
            h, w = bgr.shape[:2]
            small = bgr
            if args.height and args.width and (args.height, args.width) != (h, w):
                small = cv2.resize(bgr, (args.width, args.height), interpolation=cv2.INTER_AREA)
            rgb = cv2.cvtColor(small, cv2.COLOR_BGR2RGB)
            x = torch.from_numpy(rgb).permute(2, 0, 1).unsqueeze(0).float()
            y = model(x)[0].clamp(0, 255).round().to(torch.uint8).permute(1, 2, 0).contiguous()
            out = cv2.cvtColor(y.numpy(), cv2.COLOR_RGB2BGR)
            if out.shape[:2] != (h, w):
                out = cv2.resize(out, (w, h), interpolation=cv2.INTER_LINEAR)
            if writer is None:
                writer = cv2.VideoWriter(args.out, cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
            writer.write(out)
            frames += 1
    if writer is not None:
        writer.release()
    seconds = time.perf_counter() - start
    print(json.dumps({"frames": frames, "seconds": seconds, "fps": frames / seconds,
                      "threads": args.threads}))


if __name__ == "__main__":
    main()
