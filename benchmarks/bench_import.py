"""Import throughput on camera-size JPEGs, against the model alone and imagecluster's pipeline shape.

* model only: VGG16 -> fc2 on batches of 32 preprocessed 224x224 arrays;
* imagecluster's shape: full decode, ``resize((224, 224), BICUBIC)``, one
  ``predict`` per image (its ``calc.fingerprints``);
* ``imagecluster import``: the whole command in a fresh process. Its rate is
  marginal — (N2 - N1) / (wall2 - wall1) over two sizes — so TensorFlow's
  start-up, paid once per run, is not counted against either side.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from common import camera_photos, python_measured, run_measured

MODEL_ONLY = r"""
import sys, time, numpy as np
from importer.models import load_fingerprinter, resolve_weights
from importer.plugins import fingerprinters
vgg16 = fingerprinters()["vgg16"]
f = load_fingerprinter(vgg16, "fc2", resolve_weights(vgg16, "none"))
batch = np.random.default_rng(0).integers(0, 255, (32, 224, 224, 3), dtype=np.uint8)
f(batch)  # warm-up
n, start = 0, time.perf_counter()
while time.perf_counter() - start < float(sys.argv[1]):
    f(batch); n += len(batch)
print(n / (time.perf_counter() - start))
"""

IMAGECLUSTER_SHAPE = r"""
import sys, time, glob, numpy as np, PIL.Image
from importer.models import load_fingerprinter, resolve_weights
from importer.plugins import fingerprinters
vgg16 = fingerprinters()["vgg16"]
f = load_fingerprinter(vgg16, "fc2", resolve_weights(vgg16, "none"))
files = sorted(glob.glob(sys.argv[1] + "/*.jpg"))[: int(sys.argv[2])]
def one(fn):
    arr = np.asarray(PIL.Image.open(fn).resize((224, 224), 3), dtype=np.float32)
    return f(arr[None])[0]
one(files[0])  # warm-up
start = time.perf_counter()
for fn in files:
    one(fn)
print(len(files) / (time.perf_counter() - start))
"""


def _import(folder: Path, count: int, *options: str, tree: bool = False) -> tuple[float, float]:
    subset = Path(tempfile.mkdtemp(prefix="bench-import-"))
    for path in sorted(folder.glob("*.jpg"))[:count]:
        (subset / path.name).symlink_to(path)
    db = subset / "photos.db"
    args = [sys.executable, "-m", "importer", "import", str(db), str(subset), "--weights", "none", "-s", *options]
    wall, peak, _ = run_measured(args, tree=tree)
    return wall, peak


def run(quick: bool) -> list[tuple[str, str]]:
    small, large = (24, 72) if quick else (48, 192)
    folder = camera_photos(large)
    rows = []
    model_rate = float(python_measured(MODEL_ONLY, "10" if quick else "30")[2])
    rows.append(("model only, batched (VGG16 fc2, batch 32)", f"{model_rate:.1f} photos/s"))
    shape_rate = float(python_measured(IMAGECLUSTER_SHAPE, str(folder), str(min(large, 48)))[2])
    rows.append(("imagecluster's pipeline shape (full decode, predict one by one)", f"{shape_rate:.1f} photos/s"))
    w1, _ = _import(folder, small)
    w2, peak = _import(folder, large)
    rate = (large - small) / (w2 - w1)
    rows.append(
        (
            f"imagecluster import, 12 Mpx JPEGs (marginal, {small} -> {large} photos)",
            f"{rate:.1f} photos/s = {rate / model_rate:.0%} of model only, "
            f"{rate / shape_rate:.1f}x imagecluster's shape",
        )
    )
    rows.append((f"imagecluster import of {large} photos, wall time and peak RSS", f"{w2:.1f} s, {peak:.0f} MiB"))
    return rows


def on_dask(quick: bool) -> list[tuple[str, str]]:
    """This machine alone against 1 and 2 local Dask workers, marginal rates as in :func:`run`.

    Marginal, so the cluster's start and each worker's model build (paid once
    per run) are left out, as TensorFlow's start-up is.
    """
    small, large = (24, 72) if quick else (48, 192)
    folder = camera_photos(large)
    rows, alone = [], None
    for label, options in (
        ("this machine alone (decoder processes)", ()),
        ("--dask local:1", ("--dask", "local:1")),
        ("--dask local:2", ("--dask", "local:2")),
    ):
        w1, _ = _import(folder, small, *options)
        w2, peak = _import(folder, large, *options)
        rate = (large - small) / (w2 - w1)
        alone = alone or rate
        rows.append(
            (
                f"import, {label} (marginal, {small} -> {large} photos)",
                f"{rate:.1f} photos/s = {rate / alone:.2f}x alone; {w2:.1f} s wall, peak RSS {peak:.0f} MiB",
            )
        )
    return rows


def memory(quick: bool) -> list[tuple[str, str]]:
    """Peak memory at two library sizes, of the importer's own process and of it with its decoder processes
    together, with the default model and with VGG16: it should not grow with the library."""
    counts = (100, 300) if quick else (100, 1000)
    folder = camera_photos(counts[1], size=(1600, 1200), name="mid")
    rows = []
    for model in ("efficientnet-lite0", "vgg16"):
        for count in counts:
            wall, own = _import(folder, count, "--model", model)
            _, tree = _import(folder, count, "--model", model, tree=True)
            rows.append(
                (
                    f"import of {count} photos (2 Mpx), {model}: peak RSS, own / with its decoders",
                    f"{own:.0f} / {tree:.0f} MiB ({wall:.0f} s)",
                )
            )
    return rows
