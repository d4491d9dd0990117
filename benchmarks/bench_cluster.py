"""Clustering: imagecluster's algorithm as it runs there, against ``imagecluster cluster``.

The baseline is imagecluster's ``calc.cluster`` with time mixing, written
plainly (pdist, normalise, mix, linkage, fcluster) and run in a fresh process
on the same structured fingerprints the database holds. ``imagecluster
cluster`` runs as a whole process, cold; the plugin's re-cut of a cached tree
at a new sim is timed in-process.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import sqlite_utils
from common import DATA, python_measured, run_measured, structured_fingerprints
from spectrum import event_fingerprints, fitted_fingerprints

from datasette_imagecluster.engine.clustering import Params, build_tree, cut_tree, group
from datasette_imagecluster.library import scales
from datasette_imagecluster.library.fingerprints import fingerprint_sets
from datasette_imagecluster.library.schema import ensure_schema
from datasette_imagecluster.library.vectors import encode

BASELINE = r"""
import sys, time, numpy as np
from scipy.spatial import distance
from scipy.cluster import hierarchy
data = np.load(sys.argv[1])
fps, tss = data["vectors"], data["timestamps"]
start = time.perf_counter()
dfps = distance.pdist(fps, "euclidean")
dtss = distance.pdist(tss[:, None], "euclidean")
dfps /= dfps.max(); dtss /= dtss.max()
d = dfps * 0.7 + dtss * 0.3
Z = hierarchy.linkage(d, method="average")
cut = hierarchy.fcluster(Z, t=d.max() * 0.5, criterion="distance")
print(time.perf_counter() - start)
"""


# imagecluster's algorithm as the baseline runs it: its distance, average linkage, sim 0.5, alpha 0.3.
IMAGECLUSTER_ARGS = ["--distance", "imagecluster", "--method", "average", "--sim", "0.5", "--alpha", "0.3"]


def database(
    n: int, fitted: bool = False, arrays: bool = True, events: bool = False, dims: int = 4096
) -> tuple[Path, Path]:
    """A library of n generated fingerprints (4096 values unless ``dims``): random bursts, bursts fitted to
    real fingerprints' spectrum (``spectrum.fitted_fingerprints``), or outings shaped like a real library's
    with that spectrum (``events``, ``spectrum.event_fingerprints``); made once and kept in DATA, with the
    same arrays in an ``.npz`` unless ``arrays`` is false (a million photos' would be another 16 GB, and a
    cold process needs only the database). Written under a temporary name, so an interrupted run leaves no
    half library.
    """
    kind = "events" if events else "fitted" if fitted else None
    name = "-".join(str(p) for p in ("cluster", kind, n, None if dims == 4096 else dims) if p is not None)
    db, saved = DATA / f"{name}.db", DATA / f"{name}.npz"
    if db.exists() and (saved.exists() or not arrays):
        return db, saved
    if events:
        vectors, timestamps, ids = event_fingerprints(n, dims)
    else:
        vectors, timestamps, ids = fitted_fingerprints(n, dims) if fitted else structured_fingerprints(n, dims)
    if arrays:
        np.savez(saved, vectors=vectors, timestamps=timestamps)
    if db.exists():
        return db, saved
    partial = db.with_suffix(".partial")
    partial.unlink(missing_ok=True)
    d = sqlite_utils.Database(partial)
    ensure_schema(d)
    d["images"].insert_all(
        (
            {
                "id": int(i),
                "path": f"/photos/{i}.jpg",
                "size": 1,
                "mtime": 0.0,
                "sha256": str(i),
                "timestamp": float(t),
                "source": "folder",
            }
            for i, t in zip(ids, timestamps)
        ),
        batch_size=1000,
    )
    d["fingerprints"].insert_all(
        (
            {
                "image_id": int(i),
                "model": "vgg16",
                "layer": "fc2",
                "weights": "random-seed-0",
                "dims": vectors.shape[1],
                "vector": encode(v),
            }
            for i, v in zip(ids, vectors)
        ),
        batch_size=500,
    )
    with d.conn:  # the content scale, as every import stores it
        for found in fingerprint_sets(d.conn):
            scales.refresh(d.conn, found)
    d.conn.close()
    partial.rename(db)
    return db, saved


def ours_only(n: int) -> list[tuple[str, str]]:
    """Sizes imagecluster's algorithm cannot run (N = 100,000 needs ~40 GB for its matrix)."""
    db, _ = database(n)
    wall, peak, out = run_measured([sys.executable, "-m", "importer", "cluster", str(db), *IMAGECLUSTER_ARGS])
    return [
        (
            f"N = {n:,} x 4096: imagecluster cluster (whole process, cold)",
            f"{wall:.1f} s, peak {peak:.0f} MiB; {out.strip().splitlines()[0] if out.strip() else ''}",
        )
    ]


def run(sizes: list[int], show) -> None:
    """Measure each size and hand its rows to ``show`` as soon as they are known."""
    for n in sizes:
        rows = []
        db, arrays = database(n)
        base_wall, base_peak, out = python_measured(BASELINE, str(arrays))
        ours_wall, ours_peak, _ = run_measured(
            [sys.executable, "-m", "importer", "cluster", str(db), *IMAGECLUSTER_ARGS]
        )
        rows.append(
            (
                f"N = {n:,} x 4096: imagecluster's algorithm (process, of which clustering)",
                f"{base_wall:.1f} s ({float(out):.1f} s), peak {base_peak:.0f} MiB",
            )
        )
        rows.append(
            (
                f"N = {n:,} x 4096: imagecluster cluster (whole process, cold)",
                f"{ours_wall:.1f} s, peak {ours_peak:.0f} MiB = {base_wall / ours_wall:.2f}x",
            )
        )
        data = np.load(arrays)
        tree = build_tree(data["vectors"], data["timestamps"], alpha=0.3, sim=0.5)
        start = time.perf_counter()
        group(cut_tree(tree, 0.7), np.arange(n), data["timestamps"], Params(sim=0.7))
        rows.append(
            (
                f"N = {n:,}: re-cut of the cached tree at sim 0.7 (plugin)",
                f"{(time.perf_counter() - start) * 1000:.0f} ms",
            )
        )
        show(rows)
