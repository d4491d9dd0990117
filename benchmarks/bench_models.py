"""Inference rate of each fingerprint model, batched as the import runs it."""

from __future__ import annotations

from common import python_measured

RATE = r"""
import sys, time, numpy as np
from importer.models import load_fingerprinter, resolve_weights
from importer.plugins import fingerprinters
architecture = fingerprinters()[sys.argv[1]]
f = load_fingerprinter(architecture, architecture.default_layer, resolve_weights(architecture, "none"))
batch = np.random.default_rng(0).integers(0, 255, (32, 224, 224, 3), dtype=np.uint8)
f(batch)
n, start = 0, time.perf_counter()
while time.perf_counter() - start < float(sys.argv[2]):
    f(batch); n += len(batch)
print(n / (time.perf_counter() - start), f.dims)
"""


def run(quick: bool) -> list[tuple[str, str]]:
    from importer.plugins import fingerprinters

    rows, vgg = [], None
    for name in fingerprinters():
        rate, dims = python_measured(RATE, name, "8" if quick else "20")[2].split()
        rate = float(rate)
        vgg = vgg or rate
        rows.append((f"{name} ({dims} values)", f"{rate:.1f} photos/s = {rate / vgg:.1f}x vgg16"))
    return rows
