"""A re-run over an unchanged library of 10,000 files: no decoding, no hashing.

The library's rows are written with the importer's own Store (fingerprinting
10,000 photos for real would take most of an hour on this machine); the
re-run is the real ``imagecluster import`` command in a fresh process.
imagecluster has no incremental mode: its re-run recomputes every
fingerprint, estimated here from its measured pipeline rate.
"""

from __future__ import annotations

import io
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
from common import DATA, run_measured
from PIL import Image

from datasette_imagecluster.library.fingerprints import FingerprintKey
from importer.decode import Decoded
from importer.exif import CaptureInfo
from importer.folders import file_sha256
from importer.store import Store


def library(count: int) -> tuple[Path, Path]:
    folder = DATA / f"rescan-{count}"
    db = DATA / f"rescan-{count}.db"
    if db.exists():
        return folder, db
    rng = np.random.default_rng(0)
    thumb = io.BytesIO()
    Image.new("RGB", (32, 24)).save(thumb, "JPEG")
    key = FingerprintKey("vgg16", "fc2", "random-seed-0")
    store = Store(str(db))
    with store.transaction():
        for i in range(count):
            path = folder / f"{i // 500:03d}" / f"IMG_{i:05d}.jpg"
            path.parent.mkdir(parents=True, exist_ok=True)
            out = io.BytesIO()
            Image.fromarray(rng.integers(0, 255, (24, 32, 3), dtype=np.uint8)).save(out, "JPEG")
            path.write_bytes(out.getvalue())
            st = os.stat(path)
            item = Decoded(
                str(path),
                st.st_size,
                st.st_mtime,
                file_sha256(str(path)),
                "JPEG",
                32,
                24,
                CaptureInfo("2024-01-01T00:00:00", 1.7e9 + i, "exif:DateTimeOriginal"),
                thumb.getvalue(),
                32,
                24,
                np.zeros((1, 1, 3), np.uint8),
            )
            store.write_decoded(item, key, rng.random(4096, dtype=np.float32).tobytes())
    store.close()
    return folder, db


def run(quick: bool, shape_rate: float | None = None) -> list[tuple[str, str]]:
    count = 10_000
    folder, db = library(count)
    work = Path(tempfile.mkdtemp(prefix="bench-rescan-")) / "photos.db"
    work.write_bytes(db.read_bytes())
    args = [sys.executable, "-m", "importer", "import", str(work), str(folder), "--weights", "none", "-s"]
    walls = sorted(run_measured(args)[0] for _ in range(3))
    out = run_measured(args)[2]
    assert f"unchanged {count}" in out, out
    rows = [(f"re-run over an unchanged library of {count:,} files (median of 3, whole process)", f"{walls[1]:.2f} s")]
    if shape_rate:
        rows.append(
            (
                "imagecluster's re-run of the same library (recomputes all; estimated)",
                f"{count / shape_rate / 60:.0f} min = {count / shape_rate / walls[1]:.0f}x slower",
            )
        )
    return rows
