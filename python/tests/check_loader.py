#!/usr/bin/env python3
"""Checks python/cytocl_model.py (NumPy only) against `cytocl predict`.

usage: check_loader.py MODEL.safetensors PREDICTIONS.csv [TOLERANCE]

PyTorch is blocked before the loader is imported, so this proves the NumPy path needs
nothing else. The images listed in the CSV are decoded with cytocl_model.read_image
(the built-in PNG reader: Pillow is blocked too), and the probabilities must equal
cytocl's to the tolerance (default 1e-5), with the same predicted class; the
command-line mode (`python3 cytocl_model.py MODEL IMAGE...`) must print the same CSV
header as `cytocl predict` and the same rows to the tolerance.
"""
import contextlib
import io
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
    # The command-line mode prints the same CSV header and, to the tolerance, the same rows.
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        status = cytocl_model.main(["cytocl_model.py", model_path] + paths)
    with open(csv_path) as f:
        header = f.readline()
    if status != 0 or not out.getvalue().startswith(header):
        fail(f"cytocl_model.py's CSV header differs from cytocl predict's: {out.getvalue().splitlines()[:1]} vs {header!r}")
    cli = os.path.join(os.path.dirname(csv_path), "cytocl_model.csv")
    with open(cli, "w") as f:
        f.write(out.getvalue())
    cli_classes, cli_paths, cli_probs = predictions_csv.read(cli)
    cli_diff = float(np.abs(np.array(cli_probs) - expected).max())
    if cli_paths != paths or not cli_diff <= tolerance:
        fail(f"cytocl_model.py's CSV rows differ from cytocl predict's by {cli_diff:.3g}")
    print(f"check_loader: OK: {len(paths)} images, max |numpy - cytocl| = {diff:.2g}, "
          f"numpy {np.__version__}, torch not imported")


if __name__ == "__main__":
    if len(sys.argv) not in (3, 4):
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    main(sys.argv[1], sys.argv[2], float(sys.argv[3]) if len(sys.argv) == 4 else 1e-5)
