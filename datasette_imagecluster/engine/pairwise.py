"""Every pair's distance, in pdist's order: pdist's own values on all the cores, or BLAS's for thousands.

Up to ``BLAS_FROM`` pairs the values are pdist's bit for bit; above, a Gram matrix in float64 within
``TOLERANCE`` of the largest distance, near-duplicates measured directly.
In depth: docs/engine.md, "Pairwise distances on BLAS".
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from scipy.spatial import distance

MIN_PAIRS = 200_000  # below, one call costs less than starting threads
BLOCKS_PER_THREAD = 8  # blocks of about equal pairs, taken in turn: no thread waits long for another
BLOCK_BYTES = 32 * 2**20  # one block's distances to the photos after it, at most (unless one row is more)
BLAS_FROM = 2_000_000  # pairs (2,000 photos): below, pdist's own values
GRAM_METRICS = ("euclidean", "sqeuclidean", "cosine", "correlation")  # the metrics a Gram matrix gives
TOLERANCE = 1e-9  # of the largest distance: how far the distances from BLAS may lie from pdist's
REFINE = 1e-6  # squared distances under this share of the pair's squared norms (near-duplicates): measured directly
GRAM_BYTES = 128 * 2**20  # one block's products, at most


def cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def distances(x: np.ndarray, metric: str, threads: int | None = None) -> np.ndarray:
    """The condensed distance matrix the clustering uses: :func:`pdist` below ``BLAS_FROM`` pairs and for metrics
    other than ``GRAM_METRICS``, else :func:`gram`."""
    m = len(x)
    if m * (m - 1) // 2 < BLAS_FROM or metric not in GRAM_METRICS:
        return pdist(x, metric, threads)
    return gram(x, metric)


def gram(x: np.ndarray, metric: str) -> np.ndarray:
    """Every pair's distance in pdist's order from float64 matrix products (on BLAS's threads), within
    ``TOLERANCE`` of the largest: the photos centred (cosine, correlation: scaled to unit length) so that the
    products' rounding is small against the distances, near-duplicates (``REFINE``) measured directly."""
    x = np.array(x, dtype=np.float64)
    m = len(x)
    if metric in ("cosine", "correlation"):
        if metric == "correlation":
            x -= x.mean(axis=1, keepdims=True)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
    else:
        x -= x.mean(axis=0)
    squares = np.einsum("ij,ij->i", x, x)
    near_below = REFINE * 2 * float(squares.max(initial=0.0))  # covers each pair's REFINE * (|a|^2 + |b|^2)
    out = np.empty(m * (m - 1) // 2)
    buffer = np.empty(max(m, GRAM_BYTES // 8))
    at = start = 0
    while start < m - 1:
        stop = min(m - 1, start + max(1, len(buffer) // (m - start)))
        block = buffer[: (stop - start) * (m - start)].reshape(stop - start, m - start)
        np.matmul(x[start:stop], x[start:].T, out=block)  # rows against themselves and every photo after them
        if metric in ("cosine", "correlation"):
            np.subtract(1.0, block, out=block)
        else:
            block *= -2.0
            block += squares[start:stop, None]
            block += squares[None, start:]
            np.maximum(block, 0.0, out=block)
            near = np.nonzero(block < near_below)
            if len(near[0]):
                differences = x[near[0] + start] - x[near[1] + start]
                block[near] = np.einsum("ij,ij->i", differences, differences)
            if metric == "euclidean":
                np.sqrt(block, out=block)
        for row in range(start, stop):
            out[at : at + m - row - 1] = block[row - start, row - start + 1 :]
            at += m - row - 1
        start = stop
    return out


def mixed_by_rows(mix, content: np.ndarray, times: np.ndarray, time) -> np.ndarray:
    """``mix(content, time distances)`` over a condensed matrix, in ``content``'s memory, one photo's row at a
    time: ``mix(dc, dt)`` computes in ``dc`` (a row's slice of the matrix) and ``time(t, later)`` gives a row's
    time distances, so the values are those of the whole matrices without a second one (gigabytes)."""
    m = len(times)
    at = 0
    for row in range(m - 1):
        width = m - row - 1
        mix(content[at : at + width], time(times[row], times[row + 1 :]))
        at += width
    return content


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
