#!/usr/bin/env python3
"""Checks cytocl_model.read_image against cytocl's own decoder, pixel for pixel.

usage: check_decoding.py FOLDER

FOLDER holds images of every kind (PNG, TIFF, JPEG; grey, palette, alpha, 16-bit, ...)
and, beside each, NAME.rgb: the H x W x 3 bytes cytocl decoded (ImageCodec.decode),
with NAME.rgb.json giving [height, width]. Every image must decode to exactly those
bytes. Prints one line per mismatch and exits 1 if there is any.
"""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import numpy as np  # noqa: E402

import cytocl_model  # noqa: E402


def main(folder):
    bad, checked = [], 0
    for name in sorted(os.listdir(folder)):
        if name.endswith((".rgb", ".json")):
            continue
        path = os.path.join(folder, name)
        h, w = json.load(open(path + ".rgb.json"))
        expected = np.fromfile(path + ".rgb", np.uint8).reshape(h, w, 3)
        try:
            got = cytocl_model.read_image(path)
        except Exception as e:  # noqa: BLE001 - reported, not hidden
            bad.append(f"{name}: read_image raised {type(e).__name__}: {e}")
            continue
        checked += 1
        if got.shape != expected.shape or got.dtype != np.uint8:
            bad.append(f"{name}: shape {got.shape} {got.dtype}, cytocl {expected.shape}")
            continue
        diff = np.abs(got.astype(int) - expected.astype(int))
        if diff.max() != 0:
            y, x, c = np.unravel_index(int(diff.argmax()), diff.shape)
            from PIL import Image
            mode = Image.open(path).mode if not name.endswith(".png") else "png"
            bad.append(f"{name} (Pillow mode {mode}): {int((diff > 0).sum())} samples differ, max {int(diff.max())} "
                       f"(at y={y} x={x} c={c}: {int(got[y, x, c])} vs cytocl {int(expected[y, x, c])})")
    for line in bad:
        print("check_decoding: MISMATCH " + line, file=sys.stderr)
    if bad:
        sys.exit(1)
    print(f"check_decoding: OK: {checked} images decode exactly as cytocl decodes them")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    main(sys.argv[1])
