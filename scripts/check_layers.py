#!/usr/bin/env python3
"""Fails when a file of one layer includes a header of a layer it may not use.

The layer table is DESIGN.md's ("Which layer may use which"); the code must
follow it, so CI runs this on every change (ctest: LayeringTest). A file
under gpulab/<layer>/ may include "gpulab/<other>/..." only when <other> is
<layer> itself or one the table allows. apps/, tests/, bench/ and examples/
may use every layer.

    scripts/check_layers.py [--root DIR]     # exit 0: clean; 1: violations listed
"""
import argparse
import pathlib
import re
import sys

# layer -> the layers it may use (besides itself). Keep in step with
# docs/architecture.md.
ALLOWED = {
    "core": set(),
    "data": {"core"},
    "models": {"core"},
    "distributed": {"core"},
    "tasks": {"models", "data", "core"},
    "train": {"tasks", "data", "models", "distributed", "core"},
    "infer": {"models", "data", "core"},
    # Labs fetch inputs with the data layer's HTTP and S3 clients rather than a
    # second copy of them (a deviation from DESIGN.md, see docs/architecture.md).
    "lab": {"data", "core"},
    "serve": {"infer", "lab", "data", "core"},
}

INCLUDE = re.compile(r'^\s*#\s*include\s+"gpulab/([a-z_]+)/([^"]+)"', re.M)


def violations(root: pathlib.Path):
    for path in sorted((root / "gpulab").rglob("*")):
        if path.suffix not in (".h", ".cpp", ".hpp", ".cc"):
            continue
        layer = path.relative_to(root / "gpulab").parts[0]
        if layer not in ALLOWED:
            yield f"{path.relative_to(root)}: layer '{layer}' is not in the layer table"
            continue
        text = path.read_text(errors="replace")
        for match in INCLUDE.finditer(text):
            used = match.group(1)
            if used == layer or used in ALLOWED[layer]:
                continue
            line = text.count("\n", 0, match.start()) + 1
            allowed = ", ".join(sorted(ALLOWED[layer])) or "no other layer"
            yield (f"{path.relative_to(root)}:{line}: layer '{layer}' includes "
                   f"'gpulab/{used}/{match.group(2)}', but '{layer}' may use only: {allowed}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=pathlib.Path(__file__).resolve().parent.parent,
                        type=pathlib.Path, help="repository root (default: this checkout)")
    args = parser.parse_args()
    found = list(violations(args.root))
    for v in found:
        print(v)
    if found:
        print(f"check_layers: {len(found)} include(s) break the layer table", file=sys.stderr)
        return 1
    print("check_layers: every include follows the layer table")
    return 0


if __name__ == "__main__":
    sys.exit(main())
