"""Load a CytoCL model file in Python: NumPy arrays and a NumPy forward pass, or a
``torch.nn.Sequential``, with CytoCL's preprocessing.

Needs only the standard library and NumPy (the safetensors file is read and checked
here, with the same checks ``cytocl`` makes); PyTorch is imported only by
``to_torch()`` and Pillow only by ``read_image`` for TIFF and JPEG files and the PNGs
the built-in reader does not handle. Copy this one file next to your notebook, or add CytoCL's ``python/``
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
CSV as ``cytocl predict`` (for images of the model's input size); a bad file is one
line ``Error: <file>: <what is wrong>`` on stderr and exit status 1.

Errors: a model file ``cytocl`` would refuse raises ``ModelFileError``, an image it
cannot decode ``ImageError`` (both ``ValueError`` subclasses, the message naming the file).
"""

import json
import math
import re
import struct
import sys
import unicodedata
import zlib

import numpy as np

__all__ = ["CytoCLModel", "ModelFileError", "ImageError", "load", "read_image", "read_png"]


class ModelFileError(ValueError):
    """A model file that ``cytocl`` refuses too; the message is ``<file>: <what is wrong>``."""


class ImageError(ValueError):
    """An image file that cannot be decoded as ``cytocl`` decodes it; ``<file>: <what>``."""


#: The safetensors dtypes cytocl's reader knows (it then requires F32 for every weight).
_DTYPE_SIZES = {"F32": 4, "F64": 8, "U8": 1, "I32": 4, "I64": 8, "F16": 2, "BF16": 2}
#: The largest safetensors header cytocl accepts.
_MAX_HEADER = 100_000_000


def _same_name(name):
    """Swift compares strings by canonical equivalence: "é" precomposed equals "e" +
    a combining accent. NFC makes Python compare them the same way."""
    return unicodedata.normalize("NFC", name)


def _first_duplicate(names):
    seen = set()
    for n in names:
        key = _same_name(n)
        if key in seen:
            return n
        seen.add(key)
    return None

#: The softmax temperatures a model file may hold (ModelFile.temperatureRange).
TEMPERATURE_RANGE = (0.05, 20.0)

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

    def __init__(self, tensors, metadata, path="<model>", dtypes=None):
        """``tensors``: name -> array; ``dtypes``: name -> safetensors dtype (``F32``,
        ``I32``, ...), taken from the arrays when not given. The checks are
        ``cytocl``'s (Sources/CytoCore/ModelFile.swift), in its order."""
        def fail(reason):
            return ModelFileError(f"{path}: {reason}")

        self.metadata = dict(metadata)
        if dtypes is None:
            names = {np.dtype(np.float32): "F32", np.dtype(np.float64): "F64", np.dtype(np.int32): "I32",
                     np.dtype(np.int64): "I64", np.dtype(np.uint8): "U8", np.dtype(np.float16): "F16"}
            dtypes = {k: names.get(np.asarray(v).dtype, str(np.asarray(v).dtype)) for k, v in tensors.items()}
        classes_text = self.metadata.get("cytocl.classes")
        if classes_text is None:
            raise fail("metadata key cytocl.classes is missing")
        try:
            classes = json.loads(classes_text)
        except ValueError:
            classes = None
        if not isinstance(classes, list) or not classes or not all(isinstance(c, str) for c in classes):
            raise fail(f"cytocl.classes must be a JSON array of class names, found {classes_text}")
        if "" in classes:
            raise fail(f"cytocl.classes: class {classes.index('')} has an empty name")
        dup = _first_duplicate(classes)
        if dup is not None:
            raise fail(f"cytocl.classes names class '{dup}' twice: {classes_text}")
        self.classes = classes
        input_text = self.metadata.get("cytocl.input")
        if input_text is None:
            raise fail("metadata key cytocl.input is missing")
        parts = input_text.split("x")
        dims = [int(p) for p in parts if p.lstrip("+-").isdigit() and p.isascii()]
        if len(parts) != 3 or len(dims) != 3 or not all(d > 0 for d in dims):
            raise fail(f"cytocl.input must look like 257x257x3, found {input_text}")
        h, w, c = dims
        scale = self.metadata.get("cytocl.scale")
        if scale is None:
            raise fail("metadata key cytocl.scale is missing")
        if scale.replace(" ", "") != "1/255":
            raise fail(f"cytocl.scale is {scale}; only 1/255 is supported")
        for name in sorted(tensors):
            if (name.startswith("conv") or name.startswith("dense")) and dtypes.get(name) != "F32":
                raise fail(f"{name} is {dtypes.get(name)}, expected F32")
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
        for name in sorted(tensors):
            t = np.asarray(tensors[name], dtype=np.float32)
            bad = np.flatnonzero(~np.isfinite(t))
            if bad.size:
                raise fail(f"tensor {name} has {bad.size} non-finite values (NaN or Inf), the first at index {bad[0]}; "
                           "the model is unusable")
        # cytocl.temperature (``train --calibrate``): probabilities are softmax(logits / T).
        # Checked as strictly as cytocl does: a plain decimal number within TEMPERATURE_RANGE.
        self.temperature = 1.0
        t_text = self.metadata.get("cytocl.temperature")
        if t_text is not None:
            lo, hi = TEMPERATURE_RANGE
            t = float(t_text) if re.fullmatch(r"[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?", t_text, re.ASCII) else None
            if t is None or not math.isfinite(t) or not lo <= t <= hi:
                raise fail(f"cytocl.temperature must be a number between {lo:g} and {hi:g}, found '{t_text}'")
            self.temperature = t
        overflow = self._arithmetic_overflow()
        if overflow:
            raise fail(overflow)

    def _arithmetic_overflow(self):
        """cytocl's float32 range check (ModelFile.arithmeticOverflow): a bound on every
        conv and dense output for inputs 0..255 (|bias| + sum |w| x the input's bound;
        ReLU and max-pool keep it) must stay within half of float32's largest value."""
        limit = float(np.finfo(np.float32).max) / 2
        bound = np.ones(self.input_shape[2])
        for k, (weight, bias) in enumerate(self.conv):
            out = np.abs(bias.astype(np.float64)) + np.abs(weight.astype(np.float64)).sum(axis=(2, 3)) @ bound
            if not np.all(out <= limit):
                return (f"conv{k + 1} can reach {float(out.max()):.3g} for an input in 0..255, beyond float32's range: "
                        "the weights overflow float32 arithmetic (the predictions would be NaN)")
            bound = out
        for k, (weight, bias) in enumerate(self.dense):
            per = np.repeat(bound, weight.shape[1] // bound.size) if k == 0 else bound
            out = np.abs(bias.astype(np.float64)) + np.abs(weight.astype(np.float64)) @ per
            if not np.all(out <= limit):
                return (f"dense{k + 1} can reach {float(out.max()):.3g} for an input in 0..255, beyond float32's range: "
                        "the weights overflow float32 arithmetic (the predictions would be NaN)")
            bound = out
        return None

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
        """Softmax probabilities [N, classes] for float32 NCHW input scaled to 0..1:
        softmax(logits / T) with the file's temperature (1 unless calibrated)."""
        z = self.logits(x) / self.temperature
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    def predict(self, images):
        """Class probabilities [N, classes] for RGB uint8 images (see ``preprocess``)."""
        return self.forward(self.preprocess(images))

    # -- PyTorch ---------------------------------------------------------------

    def to_torch(self):
        """The network as a ``torch.nn.Sequential`` taking float32 NCHW pixel values
        0..255 and returning softmax probabilities (call ``net[:-1]`` for logits; for a
        calibrated model, logits divided by its temperature)."""
        import torch
        from torch import nn

        class Scale(nn.Module):
            """Multiplies by CytoCL's float32 1/255."""

            def forward(self, x):
                return x * float(SCALE)

        temperature = self.temperature

        class Temperature(nn.Module):
            """Divides the logits by the model's temperature (``train --calibrate``)."""

            def forward(self, x):
                return x / temperature

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
            if i == len(self.dense) - 1 and self.temperature != 1:
                layers.append(Temperature())
            layers.append(nn.ReLU() if i < len(self.dense) - 1 else nn.Softmax(dim=1))
        return nn.Sequential(*layers).eval()


def load(path):
    """Reads a CytoCL ``.safetensors`` model file, with every check ``cytocl`` makes
    (Sources/CytoCore/SafeTensors.swift and ModelFile.swift): raises ``ModelFileError``
    for a file ``cytocl predict`` would refuse, ``OSError`` when it cannot be read."""
    path = str(path)
    with open(path, "rb") as f:
        data = f.read()
    tensors, dtypes, metadata = _parse_safetensors(data, path)
    return CytoCLModel(tensors, metadata, path=path, dtypes=dtypes)


def _parse_safetensors(data, path):
    """The header checked before any tensor data is touched, as cytocl does: the header
    length against the file, strict JSON without duplicate names, each dtype, shape
    (non-negative integers) and data_offsets pair (byte length = shape x dtype size),
    and tensors that neither overlap nor leave gaps and cover the data to its end."""
    def fail(reason):
        return ModelFileError(f"{path}: {reason}")

    if len(data) < 8:
        raise fail(f"not a safetensors file: {len(data)} bytes, shorter than the 8-byte header length")
    (n,) = struct.unpack("<Q", data[:8])
    if n == 0 or n > len(data) - 8:
        raise fail(f"not a safetensors file or truncated: the header length field says {n} bytes, "
                   f"but only {len(data) - 8} bytes follow it")
    if n > _MAX_HEADER:
        raise fail(f"header length {n} exceeds the limit of {_MAX_HEADER} bytes")

    def unique(pairs):
        seen = set()
        for key, _ in pairs:
            if _same_name(key) in seen:
                raise ValueError(f'duplicate key "{key}"')
            seen.add(_same_name(key))
        return dict(pairs)

    def no_constant(name):
        raise ValueError(f"{name} is not JSON")

    try:
        header = json.loads(data[8:8 + n].decode("utf-8"), object_pairs_hook=unique, parse_constant=no_constant)
    except (ValueError, UnicodeDecodeError) as e:
        raise fail(f"the safetensors header is not valid JSON: {e}")
    if not isinstance(header, dict):
        raise fail("the safetensors header is not a JSON object")

    def integer(v):
        return isinstance(v, int) and not isinstance(v, bool)

    payload = len(data) - 8 - n
    metadata, spans, dtypes = {}, [], {}
    for name, entry in header.items():
        if name == "__metadata__":
            if not isinstance(entry, dict):
                raise fail("__metadata__ is not an object of strings")
            for k, v in entry.items():
                if not isinstance(v, str):
                    raise fail(f"__metadata__ value of {k} is {json.dumps(v)}, not a string")
                metadata[k] = v
            continue
        if not name:
            raise fail("a tensor has an empty name")
        if not isinstance(entry, dict):
            raise fail(f"tensor {name}: header entry is {json.dumps(entry)}, not an object")
        if not all(k in entry for k in ("dtype", "shape", "data_offsets")):
            raise fail(f"tensor {name}: header entry needs dtype, shape and data_offsets")
        dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
        if not isinstance(dtype, str):
            raise fail(f"tensor {name}: dtype is {json.dumps(dtype)}, not a string")
        if dtype not in _DTYPE_SIZES:
            raise fail(f"tensor {name}: unsupported dtype {dtype}")
        if not isinstance(shape, list):
            raise fail(f"tensor {name}: shape is {json.dumps(shape)}, not an array")
        if not all(integer(d) and d >= 0 for d in shape):
            raise fail(f"tensor {name}: shape {json.dumps(shape)} has a value that is not a non-negative integer")
        if not isinstance(offsets, list) or len(offsets) != 2:
            raise fail(f"tensor {name}: data_offsets is {json.dumps(offsets)}, not a pair [begin, end]")
        begin, end = offsets
        if not (integer(begin) and integer(end) and begin >= 0 and end >= 0):
            raise fail(f"tensor {name}: data_offsets {json.dumps(offsets)} are not non-negative integers")
        if begin > end:
            raise fail(f"tensor {name}: data_offsets {json.dumps(offsets)} end before they begin")
        count = 1
        for d in shape:
            count *= d
        expected = count * _DTYPE_SIZES[dtype]
        if expected >= 2**63:
            raise fail(f"tensor {name}: shape {json.dumps(shape)} of {dtype} is too large (its byte size overflows)")
        if end - begin != expected:
            raise fail(f"tensor {name}: data_offsets {begin}..{end} hold {end - begin} bytes, but {dtype} {shape} needs {expected}")
        if end > payload:
            raise fail(f"truncated: tensor {name} ends at byte {end} of the data section, which has only {payload} bytes")
        spans.append((begin, end, name, shape, dtype))
    position = 0
    for begin, end, name, _, _ in sorted(spans):
        if begin < position:
            raise fail(f"tensor {name}: data_offsets {begin}..{end} overlap another tensor")
        if begin > position:
            raise fail(f"tensor {name}: data_offsets begin at {begin}, leaving bytes {position}..{begin} of the data section unused")
        position = end
    if position != payload:
        raise fail(f"the data section has {payload} bytes but the tensors cover only {position} "
                   f"({payload - position} bytes after the last tensor)")
    numpy_types = {"F32": "<f4", "F64": "<f8", "U8": "u1", "I32": "<i4", "I64": "<i8", "F16": "<f2"}
    tensors = {}
    for begin, end, name, shape, dtype in spans:
        raw = data[8 + n + begin:8 + n + end]
        if dtype == "BF16":  # the high half of a float32
            values = (np.frombuffer(raw, "<u2").astype(np.uint32) << 16).view(np.float32)
        else:
            values = np.frombuffer(raw, numpy_types[dtype])
        tensors[name] = values.reshape(shape)
        dtypes[name] = dtype
    return tensors, dtypes, metadata


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
    try:
        from PIL import Image  # noqa: the fallback for TIFF, JPEG and exotic PNGs
    except ImportError:
        raise ImageError(f"{path}: reading this kind of image needs Pillow (pip install pillow)") from None

    try:
        with Image.open(path) as im:
            if im.format == "TIFF":
                _tiff_raw_samples(im)
            return _pillow_as_cytocl(im, path)
    except (OSError, SyntaxError, ValueError) as e:  # Pillow's errors for damaged files
        if isinstance(e, ImageError):
            raise
        raise ImageError(f"{path}: cannot decode the image ({e})") from None


def _tiff_raw_samples(im):
    """Makes Pillow load a TIFF's samples as stored where its own conversion differs
    from libtiff's RGBA interface (cytocl's decoder):

    - associated alpha: Pillow un-premultiplies the colours; libtiff (told the extra
      sample is unspecified, as cytocl does) returns them as stored;
    - 16-bit RGB: Pillow keeps the high byte; libtiff scales by (v + 128) // 257. The
      samples are loaded as one 16-bit grey row of 3 x width values (mode ``I;16R``,
      set up here) and scaled in ``_pillow_as_cytocl``.
    """
    width, height = im.size
    tiles = []
    for t in im.tile:
        rawmode = t.args[0] if t.args else ""
        if rawmode.startswith("RGBa"):
            tiles.append(t._replace(args=("RGBA" + rawmode[4:],) + tuple(t.args[1:])))
        elif im.mode == "RGB" and t.codec_name != "raw" and rawmode.startswith("RGB;16"):
            im.cytocl_rgb16_compressed = True
            tiles.append(t)
        elif im.mode == "RGB" and rawmode in ("RGB;16L", "RGB;16B", "RGB;16N"):
            x0, y0, x1, y1 = t.extents
            grey = "I;16B" if rawmode.endswith("B") else "I;16"
            tiles.append(t._replace(extents=(3 * x0, y0, 3 * x1, y1), args=(grey,) + tuple(t.args[1:])))
        else:
            tiles.append(t)
    if any(t.extents[2] > width for t in tiles):
        if not all(t.extents[2] > width or t.extents[2] == t.extents[0] for t in tiles):
            raise ImageError(f"{im.filename}: a 16-bit RGB TIFF with mixed sample layouts")
        im._mode, im._size = "I;16", (3 * width, height)
        im.cytocl_rgb16 = (height, width)
    im.tile = tiles


def _rgb16_tiff(im, path):
    """The samples of a compressed 16-bit RGB TIFF (strips or tiles; none, LZW, Deflate
    or PackBits; with or without the horizontal predictor) as an H x W x 3 uint16
    array: Pillow's libtiff path gives only their high bytes."""
    tags = im.tag_v2
    width, height = im.size
    big = getattr(tags, "prefix", b"II") == b"MM"
    compression, predictor = tags.get(259, 1), tags.get(317, 1)
    if tags.get(284, 1) != 1:
        raise ImageError(f"{path}: planar 16-bit RGB TIFF is not supported by this loader")
    if 322 in tags:
        tw, th = tags[322], tags[323]
        offsets, counts = tags[324], tags[325]
        boxes = [(x, y, tw, th) for y in range(0, height, th) for x in range(0, width, tw)]
    else:
        rows = min(tags.get(278, height), height)
        offsets, counts = tags[273], tags[279]
        boxes = [(0, y, width, rows) for y in range(0, height, rows)]
    if len(boxes) != len(offsets) or len(offsets) != len(counts):
        raise ImageError(f"{path}: the TIFF's strip or tile tables do not match its size")
    out = np.zeros((height, width, 3), np.uint16)
    fp = im.fp
    for (x, y, bw, bh), offset, count in zip(boxes, offsets, counts):
        fp.seek(offset)
        data = fp.read(count)
        if len(data) != count:
            raise ImageError(f"{path}: the file ends before the image data does")
        if compression == 1:
            raw = data
        elif compression in (8, 32946):
            raw = zlib.decompress(data)
        elif compression == 5:
            raw = _lzw_decode(data, path)
        elif compression == 32773:
            raw = _packbits_decode(data)
        else:
            raise ImageError(f"{path}: 16-bit RGB TIFF with compression {compression} is not supported by this loader")
        need = bw * bh * 6
        if len(raw) < need:
            raise ImageError(f"{path}: a strip or tile holds {len(raw)} bytes, {need} expected")
        block = np.frombuffer(raw[:need], ">u2" if big else "<u2").reshape(bh, bw, 3).astype(np.uint32)
        if predictor == 2:
            block = np.cumsum(block, axis=1) & 0xFFFF
        h, w = min(bh, height - y), min(bw, width - x)
        out[y:y + h, x:x + w] = block[:h, :w]
    return out


def _lzw_decode(data, path):
    """TIFF LZW (MSB-first codes, 9 to 12 bits, early change)."""
    out = bytearray()
    table = [bytes([i]) for i in range(256)] + [b"", b""]
    bits, nbits, pos, prev = 0, 0, 0, None
    width = 9
    while True:
        while nbits < width and pos < len(data):
            bits = (bits << 8) | data[pos]
            pos += 1
            nbits += 8
        if nbits < width:
            break
        code = (bits >> (nbits - width)) & ((1 << width) - 1)
        nbits -= width
        if code == 257:
            break
        if code == 256:
            table = table[:258]
            width, prev = 9, None
            continue
        if code < len(table):
            entry = table[code]
            if prev is not None:
                table.append(prev + entry[:1])
        elif prev is not None and code == len(table):
            entry = prev + prev[:1]
            table.append(entry)
        else:
            raise ImageError(f"{path}: corrupt LZW data")
        out += entry
        prev = entry
        if len(table) + 1 >= (1 << width) and width < 12:
            width += 1
    return bytes(out)


def _packbits_decode(data):
    out, i = bytearray(), 0
    while i < len(data):
        n = data[i]
        i += 1
        if n < 128:
            out += data[i:i + n + 1]
            i += n + 1
        elif n > 128:
            out += data[i:i + 1] * (257 - n)
            i += 1
    return bytes(out)


def _pillow_as_cytocl(im, path):
    """Pillow's decoded image -> the RGB uint8 pixels cytocl's decoders give.

    cytocl reads TIFF through libtiff's RGBA interface: grey is replicated, 16-bit grey
    keeps the high byte, 16-bit colour is scaled by (v + 128) // 257, alpha (associated
    or not) is dropped with the colours left as stored, palettes are expanded with the
    colour map's high bytes. Pillow's ``convert("RGB")`` instead clips 16-bit grey to
    255 and un-premultiplies associated alpha, so those are handled here.
    """
    mode = im.mode
    if getattr(im, "cytocl_rgb16_compressed", False):
        return ((_rgb16_tiff(im, path).astype(np.uint32) + 128) // 257).astype(np.uint8)
    if getattr(im, "cytocl_rgb16", None):
        height, width = im.cytocl_rgb16
        values = np.asarray(im).astype(np.uint32).reshape(height, width, 3)
        return ((values + 128) // 257).astype(np.uint8)
    if mode.startswith("I;16") or mode == "I":
        values = np.asarray(im)
        if mode == "I" and (values.min() < 0 or values.max() > 65535):
            raise ImageError(f"{path}: {values.dtype} grey samples outside 0..65535 are not an image cytocl reads")
        grey = (values.astype(np.uint32) >> 8).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if mode in ("RGBa", "RGBA", "RGBX", "LA", "La", "PA"):
        # The stored colour samples, alpha dropped (not composited, not un-premultiplied).
        raw = np.asarray(im)
        if mode in ("LA", "La"):
            return np.repeat(raw[:, :, :1], 3, axis=2)
        if mode == "PA":
            return np.asarray(im.convert("RGBA"))[:, :, :3]
        return np.ascontiguousarray(raw[:, :, :3])
    if mode == "F":
        raise ImageError(f"{path}: floating-point samples are not an image cytocl reads")
    if mode == "CMYK" and getattr(im, "format", "") == "JPEG":
        raise ImageError(f"{path}: CMYK/YCCK JPEG is not supported (as in cytocl)")
    return np.asarray(im.convert("RGB"))


def read_png(path):
    """A minimal PNG decoder (zlib + the five row filters) for non-interlaced 1..16-bit
    grey, RGB, palette, grey+alpha and RGBA images -> RGB uint8 H x W x 3."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ImageError(f"{path}: not a PNG file")
    pos, idat, palette, header = 8, [], None, None
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if len(body) != length:
            raise ImageError(f"{path}: truncated PNG chunk {kind!r}")
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
        raise ImageError(f"{path}: PNG without IHDR")
    width, height, depth, ctype, _, _, interlace = header
    if interlace:
        raise NotImplementedError("interlaced PNG")
    samples = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[ctype]
    bits = depth * samples
    stride = (width * bits + 7) // 8
    bpp = max(1, bits // 8)
    raw = zlib.decompress(b"".join(idat))
    if len(raw) != height * (stride + 1):
        raise ImageError(f"{path}: PNG data has {len(raw)} bytes, expected {height * (stride + 1)}")
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
            raise ImageError(f"{path}: unknown PNG filter {kind} in row {y}")
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
            raise ImageError(f"{path}: palette PNG without PLTE")
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
    """RFC 4180 quoting, as cytocl's CSV writer does: a field with a comma, a quote, LF
    or CR is quoted (a bare CR would end the row for many CSV readers)."""
    return '"' + s.replace('"', '""') + '"' if any(ch in s for ch in ',"\n\r') else s


def main(argv):
    if len(argv) < 3:
        print(__doc__.split("\n\n")[0], file=sys.stderr)
        print("usage: cytocl_model.py MODEL.safetensors IMAGE...", file=sys.stderr)
        return 2
    try:
        model = load(argv[1])
        rows = []
        for path in argv[2:]:
            p = model.predict([read_image(path)])[0]
            if not np.all(np.isfinite(p)):
                raise ModelFileError(f"{argv[1]}: the model's output for {path} is not finite (NaN or Inf)")
            rows.append(",".join([_csv_field(path), _csv_field(model.classes[int(np.argmax(p))])] + [f"{v:.9g}" for v in p]))
    except (ModelFileError, ImageError) as e:
        print(f"Error: {e}", file=sys.stderr)
        return 1
    except ValueError as e:  # an image of another size than the model's input
        print(f"Error: {path}: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"Error: {e.filename or argv[1]}: {e.strerror or e}", file=sys.stderr)
        return 1
    # Nothing is printed until every image is read: no partial CSV before an error.
    print("path,predicted," + ",".join(_csv_field("prob_" + c) for c in model.classes))
    for row in rows:
        print(row)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
