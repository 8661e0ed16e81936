#!/usr/bin/env python3
"""Makes an ImageNet-like image folder for the loader benchmark: COUNT JPEGs
of about 500x375 (quality 90) in CLASSES class folders, each a random crop
and scale of a photo from Debian's opencv-doc and python3-skimage.

    /usr/bin/python3 bench/make_imagenet_like.py --out /tmp/imagenet-like [--count 2000]

Deterministic for a given --seed; an existing folder with the right count is
kept as it is."""
import argparse
import glob
import os
import random
import sys

from PIL import Image

SOURCES = ["/usr/share/doc/opencv-doc/examples/data/*.jpg",
           "/usr/lib/python3/dist-packages/skimage/data/*.png",
           "/usr/lib/python3/dist-packages/skimage/data/*.jpg"]


def photos():
    """RGB photos at least 256 pixels on each side."""
    out = []
    for pattern in SOURCES:
        for path in sorted(glob.glob(pattern)):
            try:
                img = Image.open(path)
                img.load()
            except OSError:
                continue
            if min(img.size) >= 256:
                out.append(img.convert("RGB"))
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="/tmp/imagenet-like")
    p.add_argument("--count", type=int, default=2000)
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    existing = glob.glob(os.path.join(a.out, "*", "*.jpg"))
    if len(existing) == a.count:
        print(f"{a.out}: {len(existing)} images already there")
        return 0
    sources = photos()
    if not sources:
        print("no photos found: apt-get install -y opencv-doc python3-skimage", file=sys.stderr)
        return 1
    rng = random.Random(a.seed)
    for i in range(a.count):
        label = i % a.classes
        src = sources[rng.randrange(len(sources))]
        # A random region of 30-100% of the side, scaled to ~500x375 (either
        # orientation), as ImageNet's photos are.
        w, h = src.size
        frac = rng.uniform(0.3, 1.0)
        cw, ch = max(64, int(w * frac)), max(64, int(h * frac))
        x, y = rng.randrange(w - cw + 1), rng.randrange(h - ch + 1)
        out_w, out_h = (500, 375) if rng.random() < 0.75 else (375, 500)
        scale = rng.uniform(0.85, 1.15)
        out_w, out_h = int(out_w * scale), int(out_h * scale)
        img = src.crop((x, y, x + cw, y + ch)).resize((out_w, out_h), Image.BILINEAR)
        if rng.random() < 0.5:
            img = img.transpose(Image.FLIP_LEFT_RIGHT)
        folder = os.path.join(a.out, f"class{label:02d}")
        os.makedirs(folder, exist_ok=True)
        img.save(os.path.join(folder, f"img{i:06d}.jpg"), quality=90)
    print(f"{a.out}: wrote {a.count} JPEGs in {a.classes} classes from {len(sources)} photos")
    return 0


if __name__ == "__main__":
    sys.exit(main())
