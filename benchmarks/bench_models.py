"""Inference rate of each fingerprint model, batched as the import runs it, each in a process of its own.

PyTorch's models run on ONNX Runtime where it is installed (importer/runtimes.py); their PyTorch eager rate
is measured too (``IMAGECLUSTER_RUNTIME=pytorch``), in another process: PyTorch's idle threads slow a
runtime in the same process. So is ``--precision mixed`` (OpenVINO in bfloat16 where it is installed and the
CPU has bfloat16 instructions, else PyTorch's autocast).
"""

from __future__ import annotations

from common import python_measured

RATE = r"""
import os, sys, time, numpy as np
if sys.argv[3] != "default":
    os.environ["IMAGECLUSTER_RUNTIME"] = sys.argv[3]
from importer.models import load_fingerprinter, resolve_weights
from importer.plugins import fingerprinters
architecture = fingerprinters()[sys.argv[1]]
precision = sys.argv[4] if len(sys.argv) > 4 else "float32"
weights = resolve_weights(architecture, "none")
f = load_fingerprinter(architecture, architecture.default_layer, weights, precision=precision)
batch = np.random.default_rng(0).integers(0, 255, (32, 224, 224, 3), dtype=np.uint8)
f(batch)
n, start = 0, time.perf_counter()
while time.perf_counter() - start < float(sys.argv[2]):
    f(batch); n += len(batch)
print(n / (time.perf_counter() - start), f.dims, (f.runtime or "own").replace(" ", "_"))
"""


def run(quick: bool) -> list[tuple[str, str]]:
    from importer.plugins import fingerprinters

    rows, vgg = [], None
    for name, architecture in fingerprinters().items():
        torch = architecture.__class__.__name__ == "TorchArchitecture"
        runs = (
            [("default", "float32"), ("pytorch", "float32"), ("default", "mixed")]
            if torch
            else [("default", "float32")]
        )
        for runtime, precision in runs:
            rate, dims, used = python_measured(RATE, name, "8" if quick else "20", runtime, precision)[2].split()
            rate = float(rate)
            vgg = vgg or rate
            on = "" if used == "own" else f", on {used.replace('_', ' ')}"
            on += ", --precision mixed" if precision == "mixed" else ""
            rows.append((f"{name} ({dims} values{on})", f"{rate:.1f} photos/s = {rate / vgg:.1f}x vgg16"))
    return rows
