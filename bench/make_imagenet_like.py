#!/usr/bin/env python3
"""Makes an ImageNet-like image folder for the loader benchmark: COUNT JPEGs
of about 500x375 (quality 90) in CLASSES class folders, each a random crop
and scale of a photo from Debian's opencv-doc and python3-skimage, or, where
those are missing (the GPU machine's pip environment), from the sample photos
of the installed scikit-image (skimage.data_dir) and matplotlib; with no photo
at all, of synthetic ones (smooth colour fields with fine noise, a warning
says so).

    /usr/bin/python3 bench/make_imagenet_like.py --out /tmp/imagenet-like [--count 2000]

Deterministic for a given --seed and set of photos, whatever --jobs; an
existing folder with the right count is kept as it is."""
import argparse
import glob
import importlib.util
import multiprocessing
import os
import random
import sys

from PIL import Image

SOURCES = ["/usr/share/doc/opencv-doc/examples/data/*.jpg",
           "/usr/lib/python3/dist-packages/skimage/data/*.png",
           "/usr/lib/python3/dist-packages/skimage/data/*.jpg"]


def package_folder(name, *parts):
    """`parts` under an installed package's folder (not imported), or None."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return os.path.join(list(spec.submodule_search_locations)[0], *parts)


def installed_sources():
    """Photos of pip packages: skimage.data_dir, matplotlib's sample data."""
    out = []
    for folder in (package_folder("skimage", "data"),
                   package_folder("matplotlib", "mpl-data", "sample_data")):
        if folder and os.path.isdir(folder):
            out += [os.path.join(folder, "*.png"), os.path.join(folder, "*.jpg")]
    return out


def load_photos(patterns):
    """RGB photos at least 256 pixels on each side."""
    out = []
    for pattern in patterns:
        for path in sorted(glob.glob(pattern)):
            try:
                img = Image.open(path)
                img.load()
            except OSError:
                continue
            if min(img.size) >= 256:
                out.append(img.convert("RGB"))
    return out


def synthetic_photos(count, seed):
    """`count` 640x480 stand-ins for photos: per channel, coarse and fine
    random fields upsampled and blended (blobs, edges and texture for the
    JPEG coder), deterministic for `seed`."""
    rng = random.Random(seed)
    size = (640, 480)

    def field(step):
        w, h = size[0] // step, size[1] // step
        grey = Image.frombytes("L", (w, h), bytes(rng.getrandbits(8) for _ in range(w * h)))
        return grey.resize(size, Image.BICUBIC)

    out = []
    for _ in range(count):
        bands = [Image.blend(field(32), field(4), rng.uniform(0.1, 0.3)) for _ in range(3)]
        out.append(Image.merge("RGB", bands))
    return out


def photos(seed):
    """Debian's photos, else those of the installed Python packages, else
    synthetic ones."""
    found = load_photos(SOURCES) or load_photos(installed_sources())
    if not found:
        print("warning: no photos found (apt-get install -y opencv-doc python3-skimage, or pip "
              "install scikit-image): the images are synthetic", file=sys.stderr)
        found = synthetic_photos(12, seed)
    return found


SOURCE_PHOTOS = []  # set before the worker processes fork


def render(job):
    """Writes one image: (path, source index, crop box, output size, flip)."""
    path, src, box, size, flip = job
    img = SOURCE_PHOTOS[src].crop(box).resize(size, Image.BILINEAR)
    if flip:
        img = img.transpose(Image.FLIP_LEFT_RIGHT)
    img.save(path, quality=90)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="/tmp/imagenet-like")
    p.add_argument("--count", type=int, default=2000)
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                   help="processes writing images (default: one per core)")
    a = p.parse_args()
    existing = glob.glob(os.path.join(a.out, "*", "*.jpg"))
    if len(existing) == a.count:
        print(f"{a.out}: {len(existing)} images already there")
        return 0
    SOURCE_PHOTOS[:] = photos(a.seed)
    # The draws stay in this process, in the serial order: the same folder
    # whatever --jobs.
    rng = random.Random(a.seed)
    jobs = []
    for i in range(a.count):
        label = i % a.classes
        src = rng.randrange(len(SOURCE_PHOTOS))
        # A random region of 30-100% of the side, scaled to ~500x375 (either
        # orientation), as ImageNet's photos are.
        w, h = SOURCE_PHOTOS[src].size
        frac = rng.uniform(0.3, 1.0)
        cw, ch = max(64, int(w * frac)), max(64, int(h * frac))
        x, y = rng.randrange(w - cw + 1), rng.randrange(h - ch + 1)
        out_w, out_h = (500, 375) if rng.random() < 0.75 else (375, 500)
        scale = rng.uniform(0.85, 1.15)
        out_w, out_h = int(out_w * scale), int(out_h * scale)
        flip = rng.random() < 0.5
        folder = os.path.join(a.out, f"class{label:02d}")
        os.makedirs(folder, exist_ok=True)
        jobs.append((os.path.join(folder, f"img{i:06d}.jpg"), src, (x, y, x + cw, y + ch),
                     (out_w, out_h), flip))
    if a.jobs > 1 and len(jobs) > 1:
        with multiprocessing.get_context("fork").Pool(a.jobs) as pool:
            pool.map(render, jobs, chunksize=max(1, len(jobs) // (4 * a.jobs)))
    else:
        for job in jobs:
            render(job)
    print(f"{a.out}: wrote {a.count} JPEGs in {a.classes} classes from {len(SOURCE_PHOTOS)} "
          f"photos ({a.jobs} processes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
