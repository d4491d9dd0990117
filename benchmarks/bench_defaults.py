"""What users get: ``imagecluster cluster`` at the shipped defaults, on libraries shaped like real ones.

    python benchmarks/bench_defaults.py                    # 20,000 and 100,000 photos, 4096 and 1280 values
    python benchmarks/bench_defaults.py --sizes 20000 --imagecluster   # and imagecluster's mode at its defaults
    python benchmarks/bench_defaults.py --dask 200000      # N photos on two local Dask worker threads

The libraries are ``spectrum.event_fingerprints``: outings of 20-200 photos over hours, days apart, over
years, with the spectrum of real EfficientNet-Lite0 features. Each run is a fresh process, cold (its
start, reading the database, the content scale, the tree, the cut): wall time, peak memory and the CPU
time the host took from it (steal). Beside them, how these libraries compare with real photos at the
defaults: the share of pairs within the cut and the largest component, here and on INRIA Holidays.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_cluster import database  # noqa: E402
from common import cold_cluster, machine  # noqa: E402
from spectrum import real_features, variance_shares  # noqa: E402

from datasette_imagecluster.engine import absolute, nearby  # noqa: E402
from datasette_imagecluster.engine.parameters import DEFAULTS, SHIPPED, describe  # noqa: E402


def graph(vectors, timestamps, timed=None) -> tuple[float, int]:
    """At the shipped defaults: the share of pairs within the cut, and the largest connected component."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n = len(vectors)
    scale = absolute.content_scale(vectors[absolute.sample_rows(np.arange(1, n + 1))], "euclidean")
    mix = absolute.Mix(SHIPPED.alpha, scale, SHIPPED.tau)
    screened = nearby.screening(vectors, timestamps, timed, "euclidean")
    times = absolute.clock(timestamps, timed)
    i, j = nearby.edges(screened, times, mix, 1 - SHIPPED.sim)
    d = mix(screened.exact.pairs(i, j).astype(np.float64), np.abs(times[i] - times[j]))
    i, j = i[d <= 1 - SHIPPED.sim], j[d <= 1 - SHIPPED.sim]
    _, labels = connected_components(coo_matrix((np.ones(len(i)), (i, j)), shape=(n, n)), directed=False)
    return len(i) / (n * (n - 1) / 2), int(np.bincount(labels).max())


def holidays() -> str:
    """The same figures on the 69 INRIA Holidays photos (EfficientNet-Lite0), if the quality benchmark's
    import of them is at hand."""
    import sqlite3

    from common import DATA

    db = DATA / "quality" / "Holidays-efficientnet-lite0-imagenet.db"
    if not db.exists():
        return "run benchmarks/quality.py first"
    conn = sqlite3.connect(db)
    rows = conn.execute(
        "select i.timestamp, i.timestamp_source, f.vector from images i join fingerprints f on f.image_id = i.id"
    ).fetchall()
    vectors = np.stack([np.frombuffer(r[2], "<f4") for r in rows])
    share, largest = graph(vectors, np.array([r[0] for r in rows]), np.array([r[1] != "mtime" for r in rows]))
    return f"{share:.2%} of pairs within the cut, largest component {largest} of {len(rows)} photos"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="*", default=[20000, 100000])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--imagecluster", action="store_true", help="also imagecluster's mode at its defaults")
    parser.add_argument("--dask", type=int, metavar="N", help="N photos on two local Dask worker threads")
    parser.add_argument("--dims", type=int, default=4096, help="values a fingerprint of the --dask library")
    args = parser.parse_args()
    print(f"Machine: {machine()}")
    print(f"Shipped defaults: {describe(SHIPPED.as_dict())}\n")
    print(f"INRIA Holidays at the defaults: {holidays()}")
    for n in args.sizes:
        for dims in (4096, 1280):
            db, arrays = database(n, events=True, dims=dims)
            data = np.load(arrays)
            if n <= 20000 and dims == 4096:
                share, largest = graph(data["vectors"], data["timestamps"])
                print(f"N = {n:,} events: {share:.2%} of pairs within the cut, largest component {largest} photos")
                fitted = variance_shares(data["vectors"][:2000])
                real = variance_shares(real_features())
                print(
                    "Variance in the leading k directions, real features / these: "
                    + ", ".join(f"k {k}: {real[k]:.2f} / {fitted[k]:.2f}" for k in real)
                )
            walls, peak, stolen, out = cold_cluster(db, [], args.repeat if n <= 20000 else max(1, args.repeat // 2))
            print(
                f"N = {n:,} x {dims}, shipped defaults (whole process, cold): median {statistics.median(walls):.2f} s "
                f"({', '.join(f'{w:.2f}' for w in sorted(walls))}), peak {peak:.0f} MiB, host took "
                f"{statistics.median(stolen):.2f} s; {out.splitlines()[-1] if out else ''}",
                flush=True,
            )
    if args.imagecluster:
        old = DEFAULTS["imagecluster"]
        db, _ = database(args.sizes[0], events=True)
        walls, peak, stolen, _ = cold_cluster(db, ["--distance", "imagecluster"], 1)
        print(
            f"N = {args.sizes[0]:,} x 4096, imagecluster's distance at its defaults ({describe(old.as_dict())}): "
            f"{walls[0]:.1f} s, peak {peak:.0f} MiB, host took {stolen[0]:.2f} s"
        )
    if args.dask:
        db, _ = database(args.dask, events=True, arrays=False, dims=args.dims)
        walls, peak, stolen, out = cold_cluster(db, ["--dask", "local:2"], 1)
        print(
            f"N = {args.dask:,} x {args.dims} on two local Dask worker threads, shipped defaults (whole process, "
            f"cold): {walls[0]:.1f} s, peak {peak:.0f} MiB, host took {stolen[0]:.2f} s; "
            f"{out.splitlines()[-1] if out else ''}"
        )


if __name__ == "__main__":
    main()
