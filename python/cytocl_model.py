"""Load a CytoCL model file in Python: NumPy arrays and a NumPy forward pass, or a
``torch.nn.Sequential``, with CytoCL's preprocessing.

Needs only the standard library, NumPy and ``safetensors``; PyTorch is imported only by
``to_torch()`` and Pillow only by ``read_image`` for files the built-in PNG reader does
not handle. Copy this one file next to your notebook, or add CytoCL's ``python/``
folder to ``sys.path``::

    import cytocl_model
    model = cytocl_model.load("run/model.safetensors")
    image = cytocl_model.read_image("cell.png")       # H x W x 3 uint8, RGB
    probs = model.predict([image])                    # [1, classes], softmax
    print(dict(zip(model.classes, probs[0])))

``model.to_torch()`` gives the same network as a ``torch.nn.Sequential`` that takes
float32 NCHW pixel values 0..255 (the 1/255 scaling is its first module).

The model file is the contract described in CytoCL's README ("Model files"):
``convN.weight`` [out, in, 3, 3], ``convN.bias``, ``denseN.weight`` [out, in] with
dense1's columns in the (C, H, W) order of an NCHW activation, ``denseN.bias``, and
the metadata ``cytocl.classes`` (JSON list), ``cytocl.input`` (``HxWxC``) and
``cytocl.scale`` (``1/255``). The network is, per conv block, 3x3 valid convolution +
ReLU + 2x2 max-pool (stride 2, floor), then flatten, dense + ReLU for the hidden
layers, and dense + softmax.

Command line: ``python3 cytocl_model.py MODEL.safetensors IMAGE...`` prints the same
CSV as ``cytocl predict`` (for images of the model's input size).
"""

import json
import struct
import sys
import zlib

import numpy as np

__all__ = ["CytoCLModel", "load", "read_image", "read_png"]

#: CytoCL multiplies uint8 pixels by this float32 constant (not a float64 1/255).
SCALE = np.float32(1) / np.float32(255)


class CytoCLModel:
    """A CytoCL network as NumPy arrays.

    Attributes:
        classes: class names, in output order.
        input_shape: (height, width, channels) the network takes.
        conv: [(weight [out, in, 3, 3], bias [out]), ...] as float32 arrays.
        dense: [(weight [out, in], bias [out]), ...], the output layer last.
        metadata: the file's metadata (provenance and all).
    """

    def __init__(self, tensors, metadata, path="<model>"):
        def fail(reason):
            return ValueError(f"{path}: {reason}")

        self.metadata = dict(metadata)
        try:
            self.classes = json.loads(self.metadata["cytocl.classes"])
            h, w, c = (int(v) for v in self.metadata["cytocl.input"].split("x"))
        except (KeyError, ValueError) as e:
            raise fail(f"not a CytoCL model file (metadata cytocl.classes / cytocl.input missing or malformed: {e})")
        if self.metadata.get("cytocl.scale", "").replace(" ", "") != "1/255":
            raise fail(f"cytocl.scale is {self.metadata.get('cytocl.scale')!r}; only 1/255 is supported")
        self.input_shape = (h, w, c)
        self.conv, self.dense = [], []
        k, channels = 1, c
        while f"conv{k}.weight" in tensors:
            wt, b = tensors[f"conv{k}.weight"], tensors[f"conv{k}.bias"]
            if wt.ndim != 4 or wt.shape[1:] != (channels, 3, 3) or b.shape != (wt.shape[0],):
                raise fail(f"conv{k}.weight {wt.shape} / bias {b.shape} do not fit a 3x3 conv on {channels} channels")
            if h < 4 or w < 4:
                raise fail(f"input too small for conv{k}")
            self.conv.append((wt.astype(np.float32), b.astype(np.float32)))
            channels, h, w, k = wt.shape[0], (h - 2) // 2, (w - 2) // 2, k + 1
        features, j = channels * h * w, 1
        while f"dense{j}.weight" in tensors:
            wt, b = tensors[f"dense{j}.weight"], tensors[f"dense{j}.bias"]
            if wt.ndim != 2 or wt.shape[1] != features or b.shape != (wt.shape[0],):
                raise fail(f"dense{j}.weight {wt.shape} does not take the {features} features before it")
            self.dense.append((wt.astype(np.float32), b.astype(np.float32)))
            features, j = wt.shape[0], j + 1
        if not self.conv or not self.dense:
            raise fail("no conv1.weight / dense1.weight: not a CytoCL model")
        if features != len(self.classes):
            raise fail(f"the output layer has {features} units but cytocl.classes names {len(self.classes)}")
        used = {f"conv{i}.{p}" for i in range(1, k) for p in ("weight", "bias")}
        used |= {f"dense{i}.{p}" for i in range(1, j) for p in ("weight", "bias")}
        extra = sorted(set(tensors) - used)
        if extra:
            raise fail(f"unexpected tensor {extra[0]}")
        for name, t in tensors.items():
            if not np.all(np.isfinite(t)):
                raise fail(f"{name} holds non-finite values")

    # -- preprocessing and forward pass ---------------------------------------

    def preprocess(self, images):
        """RGB images (H x W x 3 arrays of 0..255, or one N x H x W x 3 array) ->
        float32 NCHW scaled by 1/255, exactly as CytoCL does. Images must already have
        the model's input size (``cytocl predict --fit`` pads, crops or resizes; here
        that is up to you)."""
        batch = np.stack([np.asarray(i) for i in images]) if isinstance(images, (list, tuple)) else np.asarray(images)
        if batch.ndim == 3:
            batch = batch[None]
        h, w, c = self.input_shape
        if batch.ndim != 4 or batch.shape[1:] != (h, w, c):
            raise ValueError(f"images of shape {batch.shape[1:]} given; the model takes {h}x{w}x{c} (H x W x C)")
        return np.ascontiguousarray(batch.astype(np.float32).transpose(0, 3, 1, 2)) * SCALE

    def logits(self, x):
        """Pre-softmax outputs for float32 NCHW input already scaled to 0..1.
        Computed in float64, so it is a reference for CytoCL's float32 result."""
        x = np.asarray(x, dtype=np.float64)
        for weight, bias in self.conv:
            windows = np.lib.stride_tricks.sliding_window_view(x, (3, 3), axis=(2, 3))  # N C H' W' 3 3
            x = np.tensordot(windows, weight.astype(np.float64), axes=([1, 4, 5], [1, 2, 3]))  # N H' W' O
            x = np.maximum(x + bias, 0).transpose(0, 3, 1, 2)
            n, c, h, w = x.shape
            x = x[:, :, : h // 2 * 2, : w // 2 * 2].reshape(n, c, h // 2, 2, w // 2, 2).max(axis=(3, 5))
        x = x.reshape(x.shape[0], -1)  # (C, H, W) order, as CytoCL's dense1 expects
        for i, (weight, bias) in enumerate(self.dense):
            x = x @ weight.astype(np.float64).T + bias
            if i < len(self.dense) - 1:
                x = np.maximum(x, 0)
        return x

    def forward(self, x):
        """Softmax probabilities [N, classes] for float32 NCHW input scaled to 0..1."""
        z = self.logits(x)
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    def predict(self, images):
        """Class probabilities [N, classes] for RGB uint8 images (see ``preprocess``)."""
        return self.forward(self.preprocess(images))

    # -- PyTorch ---------------------------------------------------------------

    def to_torch(self):
        """The network as a ``torch.nn.Sequential`` taking float32 NCHW pixel values
        0..255 and returning softmax probabilities (call ``net[:-1]`` for logits)."""
        import torch
        from torch import nn

        class Scale(nn.Module):
            """Multiplies by CytoCL's float32 1/255."""

            def forward(self, x):
                return x * float(SCALE)

        layers = [Scale()]
        for weight, bias in self.conv:
            conv = nn.Conv2d(weight.shape[1], weight.shape[0], 3)
            with torch.no_grad():
                conv.weight.copy_(torch.from_numpy(weight))
                conv.bias.copy_(torch.from_numpy(bias))
            layers += [conv, nn.ReLU(), nn.MaxPool2d(2)]
        layers.append(nn.Flatten())
        for i, (weight, bias) in enumerate(self.dense):
            linear = nn.Linear(weight.shape[1], weight.shape[0])
            with torch.no_grad():
                linear.weight.copy_(torch.from_numpy(weight))
                linear.bias.copy_(torch.from_numpy(bias))
            layers.append(linear)
            layers.append(nn.ReLU() if i < len(self.dense) - 1 else nn.Softmax(dim=1))
        return nn.Sequential(*layers).eval()


def load(path):
    """Reads a CytoCL ``.safetensors`` model file."""
    from safetensors import safe_open

    tensors = {}
    with safe_open(str(path), framework="np") as f:
        metadata = f.metadata() or {}
        for name in f.keys():
            tensors[name] = f.get_tensor(name)
    return CytoCLModel(tensors, metadata, path=str(path))


# -- images ---------------------------------------------------------------------

def read_image(path):
    """An RGB uint8 H x W x 3 array, decoded as CytoCL does (grey replicated, alpha
    dropped, 16-bit reduced to the high byte, no gamma). PNGs are read with the
    standard library; other formats, and interlaced PNGs, need Pillow."""
    with open(path, "rb") as f:
        head = f.read(8)
    if head == b"\x89PNG\r\n\x1a\n":
        try:
            return read_png(path)
        except NotImplementedError:
            pass
    from PIL import Image  # noqa: the fallback for TIFF, JPEG and exotic PNGs

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def read_png(path):
    """A minimal PNG decoder (zlib + the five row filters) for non-interlaced 1..16-bit
    grey, RGB, palette, grey+alpha and RGBA images -> RGB uint8 H x W x 3."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError(f"{path}: not a PNG file")
    pos, idat, palette, header = 8, [], None, None
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if len(body) != length:
            raise ValueError(f"{path}: truncated PNG chunk {kind!r}")
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"PLTE":
            palette = np.frombuffer(body, np.uint8).reshape(-1, 3)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
        pos += 12 + length
    if header is None:
        raise ValueError(f"{path}: PNG without IHDR")
    width, height, depth, ctype, _, _, interlace = header
    if interlace:
        raise NotImplementedError("interlaced PNG")
    samples = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[ctype]
    bits = depth * samples
    stride = (width * bits + 7) // 8
    bpp = max(1, bits // 8)
    raw = zlib.decompress(b"".join(idat))
    if len(raw) != height * (stride + 1):
        raise ValueError(f"{path}: PNG data has {len(raw)} bytes, expected {height * (stride + 1)}")
    rows = np.zeros((height, stride), np.uint8)
    prior = np.zeros(stride, np.int32)
    for y in range(height):
        kind = raw[y * (stride + 1)]
        line = np.frombuffer(raw, np.uint8, stride, y * (stride + 1) + 1).astype(np.int32)
        if kind == 0:
            cur = line
        elif kind == 2:
            cur = (line + prior) & 0xFF
        elif kind in (1, 3, 4):
            cur = _unfilter_sequential(kind, line, prior, bpp)
        else:
            raise ValueError(f"{path}: unknown PNG filter {kind} in row {y}")
        rows[y] = cur
        prior = cur
    if depth == 16:
        values = rows.reshape(height, width * samples, 2)[:, :, 0]  # high byte
    elif depth == 8:
        values = rows
    else:
        bitsarr = np.unpackbits(rows, axis=1)[:, : width * samples * depth].reshape(height, width * samples, depth)
        values = (bitsarr * (1 << np.arange(depth - 1, -1, -1))).sum(axis=2)
        if ctype in (0, 4):
            values = values * (255 // ((1 << depth) - 1))
    values = values.reshape(height, width, samples).astype(np.uint8)
    if ctype == 3:
        if palette is None:
            raise ValueError(f"{path}: palette PNG without PLTE")
        return palette[values[:, :, 0]]
    if ctype in (0, 4):
        return np.repeat(values[:, :, :1], 3, axis=2)
    return np.ascontiguousarray(values[:, :, :3])


def _unfilter_sequential(kind, line, prior, bpp):
    """Sub (1), Average (3) and Paeth (4) depend on the byte `bpp` to the left."""
    if kind == 1:  # Sub: a running sum per byte position modulo bpp
        n = len(line)
        padded = np.zeros((n + bpp - 1) // bpp * bpp, np.int64)
        padded[:n] = line
        return (np.cumsum(padded.reshape(-1, bpp), axis=0).reshape(-1)[:n] & 0xFF).astype(np.int32)
    out = [0] * len(line)
    ln, pr = line.tolist(), prior.tolist()
    for i in range(len(ln)):
        a = out[i - bpp] if i >= bpp else 0
        b = pr[i]
        if kind == 3:
            out[i] = (ln[i] + ((a + b) >> 1)) & 0xFF
        else:
            c = pr[i - bpp] if i >= bpp else 0
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
            out[i] = (ln[i] + pred) & 0xFF
    return np.array(out, np.int32)


def _csv_field(s):
    return '"' + s.replace('"', '""') + '"' if any(ch in s for ch in ',"\n') else s


def main(argv):
    if len(argv) < 3:
        print(__doc__.split("\n\n")[0], file=sys.stderr)
        print("usage: cytocl_model.py MODEL.safetensors IMAGE...", file=sys.stderr)
        return 2
    model = load(argv[1])
    print("path,predicted," + ",".join(_csv_field("prob_" + c) for c in model.classes))
    for path in argv[2:]:
        p = model.predict([read_image(path)])[0]
        print(",".join([_csv_field(path), _csv_field(model.classes[int(np.argmax(p))])] + [f"{v:.9g}" for v in p]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
