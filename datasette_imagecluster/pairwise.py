"""Every pair's distance as ``scipy.spatial.distance.pdist`` gives it, value for value, on all the cores.

Inside a component (and for a library too small to screen) the clustering
takes pdist's own distances, so that its partitions are the reference's. But
pdist runs on one core, and at 4096 values a photo it is most of the time of
a large component: 14 s of 24 at 20,000 photos and sim 0.65, 12-14 s for a
library of 2,999. scipy's cdist uses the same kernels, so a block of rows
against the photos after them gives pdist's values for those rows (the tests
compare them bit for bit, for every metric), and scipy lets go of Python's
lock while it computes: threads that each fill blocks of rows share the work.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from scipy.spatial import distance

MIN_PAIRS = 200_000  # below, one call costs less than starting threads
BLOCKS_PER_THREAD = 8  # blocks of about equal pairs, taken in turn: no thread waits long for another
BLOCK_BYTES = 32 * 2**20  # one block's distances to the photos after it, at most (unless one row is more)


def cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def pdist(x: np.ndarray, metric: str, threads: int | None = None) -> np.ndarray:
    """``distance.pdist(x, metric)``, bit for bit, on ``threads`` threads (default: one per core)."""
    m = len(x)
    pairs = m * (m - 1) // 2
    threads = cores() if threads is None else threads
    if threads < 2 or pairs < MIN_PAIRS:
        return distance.pdist(x, metric)
    x = np.asarray(x, dtype=np.float64)  # what pdist computes in (the tests check float32's values too)
    out = np.empty(pairs)
    before = np.arange(m + 1) * m - np.arange(m + 1) * np.arange(1, m + 2) // 2  # pairs of rows before row i
    ends = np.searchsorted(before, np.linspace(0, pairs, threads * BLOCKS_PER_THREAD + 1)[1:-1])
    bounds = np.unique(np.concatenate([[0], ends, [m - 1]]))
    starts: list[int] = []
    for a, b in zip(bounds[:-1], bounds[1:]):  # no block of more than BLOCK_BYTES of distances
        step = max(1, BLOCK_BYTES // (8 * (m - int(a))))
        starts.extend(range(int(a), int(b), step))
    blocks = list(zip(starts, [*starts[1:], m - 1]))

    def fill(block: tuple[int, int]) -> None:
        a, b = block
        rect = distance.cdist(x[a:b], x[a:], metric)
        for i in range(a, b):
            out[before[i] : before[i + 1]] = rect[i - a, i - a + 1 :]

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(fill, blocks))
    return out
