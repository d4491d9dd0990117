"""Why a cluster holds together: the shares of content and capture time in what joined it, and its weakest link.

The weakest link makes chaining (a cluster held by one thin link) visible.

A cluster's links are the edges of its minimum spanning tree under the clustering's distance: the closest
pairs that connect it. The weakest is the longest of them, the closest pair between the two halves the cluster
falls into without it. Each link's distance is the sum of a content term and a time term
(:class:`.absolute.Mix`); their sums over the links are the cluster's shares.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.distance import squareform

from . import pairwise
from .absolute import Mix

LARGEST = 2000  # photos of a cluster measured; beyond, its earliest (a matrix of 4 M pairs)


@dataclass(frozen=True)
class Cohesion:
    """What holds one cluster together (positions in the arrays given)."""

    content_share: float  # of the links' distances, the share of the content term (0 to 1)
    weakest: tuple[int, int]  # the pair that joined the cluster last
    distance: float  # the weakest link's distance (the cut lies above it)
    content: float  # its content term
    seconds: float | None  # its photos' time apart (None: one has no capture time)


def cohesion(vectors: np.ndarray, times: np.ndarray, mix: Mix, metric: str) -> Cohesion | None:
    """The cohesion of a cluster of two photos or more on absolute distances; ``times``: NaN where a photo has
    no capture time. None for a single photo."""
    n = min(len(vectors), LARGEST)
    if n < 2:
        return None
    vectors, times = np.asarray(vectors[:n], dtype=np.float64), np.asarray(times[:n], dtype=np.float64)
    i, j = np.triu_indices(n, 1)
    dt = np.abs(times[i] - times[j])
    content, time = mix.terms(pairwise.pdist(vectors, metric), dt)
    total = content + time
    edges = _spanning_tree(squareform(total), n)
    weakest = int(edges[np.argmax(total[edges])])
    links = total[edges].sum()
    return Cohesion(
        content_share=float(content[edges].sum() / links) if links > 0 else 1.0,
        weakest=(int(i[weakest]), int(j[weakest])),
        distance=float(total[weakest]),
        content=float(content[weakest]),
        seconds=float(dt[weakest]) if np.isfinite(dt[weakest]) else None,
    )


def _spanning_tree(square: np.ndarray, n: int) -> np.ndarray:
    """The condensed indices of a minimum spanning tree's edges (Prim's, on the dense matrix: zero distances,
    between copies, are edges like any other, where a sparse graph would drop them)."""
    inside = np.zeros(n, dtype=bool)
    inside[0] = True
    best = square[0].copy()
    parent = np.zeros(n, dtype=np.int64)
    edges = []
    for _ in range(n - 1):
        candidates = np.where(inside, np.inf, best)
        k = int(np.argmin(candidates))
        a, b = sorted((int(parent[k]), k))
        edges.append(n * a - a * (a + 1) // 2 + (b - a - 1))  # (a, b)'s place in the condensed matrix
        inside[k] = True
        closer = square[k] < best
        best = np.where(closer, square[k], best)
        parent = np.where(closer, k, parent)
    return np.array(edges, dtype=np.int64)
