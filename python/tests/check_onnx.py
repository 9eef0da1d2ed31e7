#!/usr/bin/env python3
"""Checks a `cytocl export` ONNX file against `cytocl predict`.

usage: check_onnx.py MODEL.onnx PREDICTIONS.csv [TOLERANCE]

- onnx.checker.check_model(full_check=True) accepts the file (with shape inference);
- the file is canonical protobuf: onnx.load(...).SerializeToString() gives the same bytes;
- opset >= 13, input NCHW float32 with a symbolic batch dimension, class names in metadata;
- onnxruntime's probabilities for the CSV's images (decoded by cytocl_model.read_image)
  equal cytocl's to the tolerance (default 1e-5), for the whole batch and image by image.
Exits non-zero with a message on the first failure.
"""
import json
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import cytocl_model  # noqa: E402
import predictions_csv  # noqa: E402


def fail(message):
    print(f"check_onnx: FAIL: {message}", file=sys.stderr)
    sys.exit(1)


def main(onnx_path, csv_path, tolerance=1e-5):
    onnx.checker.check_model(onnx_path, full_check=True)
    with open(onnx_path, "rb") as f:
        raw = f.read()
    model = onnx.load_from_string(raw)
    if model.SerializeToString() != raw:
        fail("the file does not round-trip byte for byte through onnx.load / SerializeToString")
    opsets = {o.domain: o.version for o in model.opset_import}
    if opsets.get("", 0) < 13:
        fail(f"opset {opsets} < 13")
    meta = {p.key: p.value for p in model.metadata_props}
    classes, paths, expected = predictions_csv.read(csv_path)
    if json.loads(meta.get("cytocl.classes", "null")) != classes:
        fail(f"metadata cytocl.classes {meta.get('cytocl.classes')} != the CSV's classes {classes}")
    (inp,) = model.graph.input
    dims = inp.type.tensor_type.shape.dim
    if inp.type.tensor_type.elem_type != onnx.TensorProto.FLOAT or len(dims) != 4 or not dims[0].dim_param:
        fail(f"input {inp.name} is not float32 NCHW with a symbolic batch: {inp.type}")
    h, w = dims[2].dim_value, dims[3].dim_value

    session = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
    images = np.stack([cytocl_model.read_image(p) for p in paths])
    if images.shape[1:3] != (h, w):
        fail(f"images are {images.shape[1:3]}, the model takes {(h, w)}")
    x = np.ascontiguousarray(images.astype(np.float32).transpose(0, 3, 1, 2))
    (batch,) = session.run(None, {inp.name: x})
    single = np.concatenate([session.run(None, {inp.name: x[i:i + 1]})[0] for i in range(len(x))])
    expected = np.array(expected)
    for name, got in (("batch", batch), ("one by one", single)):
        if got.shape != expected.shape:
            fail(f"onnxruntime ({name}) gives shape {got.shape}, cytocl {expected.shape}")
        diff = float(np.abs(got - expected).max())
        if not diff <= tolerance:
            fail(f"onnxruntime ({name}) differs from cytocl predict by {diff:.3g} > {tolerance}")
    spread = float(expected.max() - expected.min())
    print(f"check_onnx: OK: {len(paths)} images, {len(classes)} classes, max |onnxruntime - cytocl| = "
          f"{float(np.abs(batch - expected).max()):.2g} (probabilities span {spread:.2f}); checker accepts; "
          f"opset {opsets['']}, onnx {onnx.__version__}, onnxruntime {ort.__version__}")


if __name__ == "__main__":
    if len(sys.argv) not in (3, 4):
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    main(sys.argv[1], sys.argv[2], float(sys.argv[3]) if len(sys.argv) == 4 else 1e-5)
