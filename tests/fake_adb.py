#!/usr/bin/env python3
"""A stand-in for `adb` with a phone behind it, for tests on machines without a phone.

It maps the phone's file system into $FAKE_ADB_ROOT, answers getprop, and plays
onnxruntime_perf_test by timing the model with the real ONNX Runtime on this machine and
printing the perf test's report format. It proves the adb plumbing, not phone timings.
"""

import os
import shlex
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "edgenas" / "device" / "agent"))
import timer  # noqa: E402  (the device-side agent, itself stand-alone)

ROOT = Path(os.environ["FAKE_ADB_ROOT"])


def on_phone(path: str) -> Path:
    return ROOT / path.lstrip("/")


def main(args: list[str]) -> int:
    if args[:1] == ["-s"]:
        args = args[2:]
    if args[0] == "push":
        target = on_phone(args[2])
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(args[1], target)
        return 0
    if args[0] == "pull":
        shutil.copy(on_phone(args[1]), args[2])
        return 0
    if args[0] != "shell":
        return 1
    command = shlex.split(args[1])
    if command[0] == "mkdir":
        on_phone(command[-1]).mkdir(parents=True, exist_ok=True)
    elif command[0] == "getprop":
        print({"ro.product.model": "Fake Phone", "ro.board.platform": "fake",
               "ro.build.version.release": "14", "ro.product.cpu.abi": "arm64-v8a"}[command[1]])
    elif command[0].endswith("onnxruntime_perf_test"):
        repeats = int(command[command.index("-r") + 1])
        threads = int(command[command.index("-x") + 1])
        run = timer.ort_runner(str(on_phone(command[-1])), threads, ["CPUExecutionProvider"])
        stats = timer.summarize(timer.measure(run, 2, repeats, 0.0))
        print(f"Total inference requests: {stats['n']}")
        print(f"Average inference time cost: {stats['mean_ms']:.6f} ms")
        print(f"P50 Latency: {stats['median_ms'] / 1e3:.9f} s")
        print(f"P90 Latency: {stats['p90_ms'] / 1e3:.9f} s")
    else:
        return 127
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
