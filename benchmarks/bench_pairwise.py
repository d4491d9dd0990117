"""The full matrix's distances: float64 matrix products (``pairwise.gram``) against pdist's own values on every
core (``pairwise.pdist``), in the same run, on outings with the spectrum of real features.

    python benchmarks/bench_pairwise.py                 # 3,000 and 8,000 photos x 4096 values
    python benchmarks/bench_pairwise.py --sizes 20000   # the component of imagecluster's distance at its defaults

Prints each metric's median time of both, the ratio, and the largest difference from pdist over its largest value
(``pairwise.TOLERANCE`` is the bound the clustering is held to).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import machine  # noqa: E402
from spectrum import event_fingerprints  # noqa: E402

from datasette_imagecluster.engine import pairwise  # noqa: E402


def timed(fn, repeat: int) -> tuple[float, np.ndarray]:
    times, out = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[3000, 8000])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"Machine: {machine()}; BLAS threads: all cores, pdist: {pairwise.cores()} threads")
    for n in args.sizes:
        vectors, _, _ = event_fingerprints(n, 4096)
        for metric in pairwise.GRAM_METRICS:
            slow, want = timed(lambda: pairwise.pdist(vectors, metric), 1 if n > 10000 else args.repeat)
            fast, got = timed(lambda: pairwise.gram(vectors, metric), args.repeat)
            error = float(np.abs(got - want).max() / want.max())
            print(
                f"N = {n:,} x 4096, {metric}: pdist on every core {slow:.2f} s, matrix products {fast:.2f} s "
                f"({slow / fast:.1f}x); largest difference {error:.1e} of the largest distance",
                flush=True,
            )
            del want, got


if __name__ == "__main__":
    main()
