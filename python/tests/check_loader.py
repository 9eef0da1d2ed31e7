#!/usr/bin/env python3
"""Checks python/cytocl_model.py (NumPy only) against `cytocl predict`.

usage: check_loader.py MODEL.safetensors PREDICTIONS.csv [TOLERANCE]

PyTorch is blocked before the loader is imported, so this proves the NumPy path needs
nothing else. The images listed in the CSV are decoded with cytocl_model.read_image
(the built-in PNG reader: Pillow is blocked too), and the probabilities must equal
cytocl's to the tolerance (default 1e-5), with the same predicted class.
"""
import os
import sys

sys.modules["torch"] = None  # import torch now raises ImportError
sys.modules["PIL"] = None
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import numpy as np  # noqa: E402

import cytocl_model  # noqa: E402
import predictions_csv  # noqa: E402


def fail(message):
    print(f"check_loader: FAIL: {message}", file=sys.stderr)
    sys.exit(1)


def main(model_path, csv_path, tolerance=1e-5):
    model = cytocl_model.load(model_path)
    classes, paths, expected = predictions_csv.read(csv_path)
    if model.classes != classes:
        fail(f"model classes {model.classes} != the CSV's {classes}")
    got = model.predict([cytocl_model.read_image(p) for p in paths])
    expected = np.array(expected)
    diff = float(np.abs(got - expected).max())
    if not diff <= tolerance:
        fail(f"cytocl_model differs from cytocl predict by {diff:.3g} > {tolerance}")
    if list(got.argmax(axis=1)) != list(expected.argmax(axis=1)):
        fail("predicted classes differ")
    print(f"check_loader: OK: {len(paths)} images, max |numpy - cytocl| = {diff:.2g}, "
          f"numpy {np.__version__}, torch not imported")


if __name__ == "__main__":
    if len(sys.argv) not in (3, 4):
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    main(sys.argv[1], sys.argv[2], float(sys.argv[3]) if len(sys.argv) == 4 else 1e-5)
