"""Classify an image with an edgenas bundle, using only numpy and ONNX Runtime or OpenVINO.

Copied into every bundle as run.py. Usage, from inside the bundle folder or with --bundle:

    python3 run.py IMAGE [--model model.onnx] [--bundle DIR] [--top 5]
    python3 run.py IMAGE --runtime openvino [--device CPU] [--precision fp32]

IMAGE is a PNG (8-bit, non-interlaced), a binary PPM/PGM, or a .npy array (H, W, C) uint8.
No torch, no Pillow: it runs on a bare board with `pip install numpy onnxruntime` (or
`openvino`). OpenVINO runs at the precision asked for, f32 by default: left to itself it
runs bf16 on CPUs that have it.
"""

import argparse
import json
import os
import struct
import sys
import zlib

import numpy as np


def read_png(data):
    """Decode an 8-bit, non-interlaced PNG (gray, gray+alpha, RGB, RGBA) with zlib."""
    pos, chunks, header = 8, [], None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            chunks.append(body)
        pos += 12 + length
    width, height, depth, color, _, _, interlace = header
    if depth != 8 or interlace:
        raise ValueError("only 8-bit, non-interlaced PNGs are supported; convert it or pass .npy")
    channels = {0: 1, 2: 3, 4: 2, 6: 4}[color]
    raw = zlib.decompress(b"".join(chunks))
    stride = width * channels
    out = np.zeros((height, stride), dtype=np.uint8)
    prev = np.zeros(stride, dtype=np.int32)
    for y in range(height):
        kind = raw[y * (stride + 1)]
        line = np.frombuffer(raw, np.uint8, stride, y * (stride + 1) + 1).astype(np.int32)
        if kind == 1:
            for x in range(channels, stride):
                line[x] = (line[x] + line[x - channels]) & 255
        elif kind == 2:
            line = (line + prev) & 255
        elif kind == 3:
            for x in range(stride):
                left = line[x - channels] if x >= channels else 0
                line[x] = (line[x] + (left + prev[x]) // 2) & 255
        elif kind == 4:
            for x in range(stride):
                a = line[x - channels] if x >= channels else 0
                b, c = prev[x], prev[x - channels] if x >= channels else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        out[y] = line
        prev = line
    return out.reshape(height, width, channels)


def read_pnm(data):
    parts, pos = [], 2
    while len(parts) < 3:
        while data[pos:pos + 1].isspace():
            pos += 1
        if data[pos:pos + 1] == b"#":
            pos = data.index(b"\n", pos)
            continue
        end = pos
        while not data[end:end + 1].isspace():
            end += 1
        parts.append(int(data[pos:end]))
        pos = end
    width, height, _ = parts
    channels = 3 if data[:2] == b"P6" else 1
    return np.frombuffer(data, np.uint8, width * height * channels, pos + 1).reshape(height, width, channels)


def load_image(path):
    if path.endswith(".npy"):
        return np.load(path, allow_pickle=False)
    with open(path, "rb") as handle:
        data = handle.read()
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return read_png(data)
    if data[:2] in (b"P5", b"P6"):
        return read_pnm(data)
    raise ValueError(f"{path}: not a PNG, PPM/PGM or .npy file")


def preprocess(image, spec):
    """HWC uint8 -> NCHW float32: channels, size (bilinear), scale, mean/std."""
    image = np.asarray(image)
    if image.ndim == 2:
        image = image[:, :, None]
    channels = spec["channels"]
    if image.shape[2] == 1 and channels == 3:
        image = np.repeat(image, 3, axis=2)
    image = image[:, :, :channels].astype(np.float32) / 255.0
    size = spec["resolution"]
    h, w = image.shape[:2]
    ys = np.clip((np.arange(size) + 0.5) * h / size - 0.5, 0, h - 1)
    xs = np.clip((np.arange(size) + 0.5) * w / size - 0.5, 0, w - 1)
    y0, x0 = np.floor(ys).astype(int), np.floor(xs).astype(int)
    y1, x1 = np.minimum(y0 + 1, h - 1), np.minimum(x0 + 1, w - 1)
    wy, wx = (ys - y0)[:, None, None], (xs - x0)[None, :, None]
    top = image[y0][:, x0] * (1 - wx) + image[y0][:, x1] * wx
    bottom = image[y1][:, x0] * (1 - wx) + image[y1][:, x1] * wx
    image = top * (1 - wy) + bottom * wy
    image = (image - np.array(spec["mean"], np.float32)) / np.array(spec["std"], np.float32)
    return image.transpose(2, 0, 1)[None].astype(np.float32)


#: run.py's precision names -> OpenVINO's inference precision hint (int8 models carry their
#: own quantisation; what they leave in float runs in f32).
OPENVINO_PRECISION = {"fp32": "f32", "fp16": "f16", "bf16": "bf16", "int8": "f32"}


def logits_onnxruntime(path, inputs):
    import onnxruntime as ort

    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: inputs})[0]


def logits_openvino(path, inputs, device, precision):
    import openvino as ov

    compiled = ov.Core().compile_model(path, device, {
        "INFERENCE_PRECISION_HINT": OPENVINO_PRECISION[precision],
        "PERFORMANCE_HINT": "LATENCY"})
    return compiled([inputs])[compiled.output(0)]


def main(argv=None):
    parser = argparse.ArgumentParser(description="classify an image with an edgenas bundle")
    parser.add_argument("image")
    parser.add_argument("--bundle", default=os.path.dirname(os.path.abspath(__file__)))
    parser.add_argument("--model", default="model.onnx")
    parser.add_argument("--top", type=int, default=5)
    parser.add_argument("--runtime", default="onnxruntime", choices=["onnxruntime", "openvino"])
    parser.add_argument("--device", default="CPU", help="openvino: CPU, GPU or NPU")
    parser.add_argument("--precision", default="fp32", choices=sorted(OPENVINO_PRECISION),
                        help="openvino: the inference precision (default fp32)")
    args = parser.parse_args(argv)

    with open(os.path.join(args.bundle, "preprocess.json")) as handle:
        spec = json.load(handle)
    with open(os.path.join(args.bundle, "labels.txt")) as handle:
        labels = [line.rstrip("\n") for line in handle]
    inputs = preprocess(load_image(args.image), spec)
    path = os.path.join(args.bundle, args.model)
    if args.runtime == "openvino":
        logits = logits_openvino(path, inputs, args.device, args.precision)
    else:
        logits = logits_onnxruntime(path, inputs)
    logits = np.asarray(logits)[0].astype(np.float64)
    probs = np.exp(logits - logits.max())
    probs /= probs.sum()
    for index in np.argsort(-probs)[:args.top]:
        print(f"{probs[index]:.4f}  {labels[index]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
