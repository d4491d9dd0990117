"""Exact clustering of large libraries, one connected component at a time.

For the reducible linkage methods (single, complete, average, weighted,
ward) the linkage distance between two clusters is never smaller than the
smallest distance between their members (by induction on Lance-Williams'
reducibility, d(A+B, C) >= min(d(A, C), d(B, C))). So two clusters merge at a
height <= t only if some pair of their photos is within t: every flat cluster
at cut height t lies inside one connected component of the graph joining the
pairs at distance <= t, and linkage run inside each component gives the
clusters imagecluster's full-matrix algorithm gives below t.

How the pieces are kept exact:

* all pair distances are first *screened* in float32 with BLAS, ~20x faster
  than pdist: held as one condensed float32 matrix (half of what pdist needs)
  when that fits, else recomputed block by block on each of the two passes, so
  memory is the fingerprints, one block and the pairs within reach of the cut;
* the normalising maxima are recomputed exactly (with pdist itself, whose
  value for a pair does not depend on the other rows) for every pair the
  screen puts within ``SLACK`` of the maximum;
* the graph keeps every pair the screen puts within ``SLACK`` of t: extra
  edges only merge components, which changes nothing below t;
* inside each component, distances are computed again by pdist exactly as
  the reference does, normalised and mixed with the same operations.

Above t the combined tree joins the components at the top (height max(d)),
so it can be cut at any sim at least the one it was built for.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np
from scipy.cluster import hierarchy
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import distance

REDUCIBLE_METHODS = frozenset({"single", "complete", "average", "weighted", "ward"})
SCREENED_METRICS = frozenset({"euclidean", "sqeuclidean", "cosine"})
MIN_PHOTOS = 3000  # below this the full matrix is fast enough
SLACK = 1e-2  # float32 screening errors are below 1e-3 relative; extra candidates are harmless
MEMORY_SHARE = 0.35
BLOCK = 1024
# Time distance uses the content metric, except where that is undefined on 1-d data
# (the same rule as clustering.mixed_distances).
TIME_METRIC = {"cosine": "cityblock", "correlation": "cityblock"}
MAX_EDGES_SHARE = 0.25  # beyond this the components are the whole library: use the full matrix


def applicable(n: int, method: str, metric: str) -> bool:
    return n >= MIN_PHOTOS and method in REDUCIBLE_METHODS and metric in SCREENED_METRICS


def fits_in_memory(n: int) -> bool:
    try:
        physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return True
    return n * (n - 1) // 2 * 4 <= physical * MEMORY_SHARE


class Screen:
    """Approximate float32 distances of each photo to every later one, row by row.

    Kept as one condensed matrix when that fits in memory (the BLAS work is done
    once); otherwise recomputed block by block on every pass, so memory stays
    at the fingerprints plus one block.
    """

    def __init__(self, vectors: np.ndarray, metric: str, keep: bool):
        x = np.ascontiguousarray(vectors, dtype=np.float32)
        if metric == "cosine":
            norms = np.linalg.norm(x.astype(np.float64), axis=1)
            norms[norms == 0] = 1.0  # pdist says NaN for these; build() refuses them first
            x = (x / norms[:, None].astype(np.float32)).astype(np.float32)
        self.x, self.metric, self.n = x, metric, len(x)
        self.sq = np.einsum("ij,ij->i", x, x, dtype=np.float64).astype(np.float32)
        self.kept = None
        if keep:
            n = self.n
            kept = np.empty(n * (n - 1) // 2, dtype=np.float32)
            for r, row in self.rows():
                start = n * r - r * (r + 1) // 2
                kept[start: start + n - r - 1] = row
            self.kept = kept

    def _block(self, i0: int, i1: int) -> np.ndarray:
        d = self.x[i0:i1] @ self.x[i0:].T
        d *= -2
        d += self.sq[i0:i1, None]
        d += self.sq[None, i0:]
        np.maximum(d, 0, out=d)
        if self.metric == "euclidean":
            np.sqrt(d, out=d)
        elif self.metric == "cosine":
            d *= 0.5
        return d

    def rows(self) -> Iterator[tuple[int, np.ndarray]]:
        """(r, distances from photo r to photos r+1..n-1), for r = 0..n-2."""
        n = self.n
        for i0 in range(0, n - 1, BLOCK):
            i1 = min(n, i0 + BLOCK)
            block = self._block(i0, i1) if self.kept is None else None
            for r in range(i0, min(i1, n - 1)):
                if block is None:
                    start = n * r - r * (r + 1) // 2
                    yield r, self.kept[start: start + n - r - 1]
                else:
                    yield r, block[r - i0, r - i0 + 1:]


class _NearMax:
    """Pairs within SLACK of the largest value seen so far: the candidates for the exact maximum."""

    def __init__(self):
        self.best = 0.0
        self.found: list[tuple[float, int, np.ndarray]] = []  # (row max, row, columns)

    def offer(self, r: int, values: np.ndarray) -> None:
        top = float(values.max()) if len(values) else 0.0
        if top < self.best * (1 - SLACK):
            return
        if top > self.best:
            self.best = top
            self.found = [f for f in self.found if f[0] >= top * (1 - SLACK)]
        cols = np.flatnonzero(values >= self.best * (1 - SLACK)) + r + 1
        self.found.append((top, r, cols))

    def pairs(self) -> tuple[np.ndarray, np.ndarray]:
        i = np.concatenate([np.full(len(c), r) for _, r, c in self.found])
        j = np.concatenate([c for _, _, c in self.found])
        return i, j


def _exact(vectors: np.ndarray, i: np.ndarray, j: np.ndarray, metric: str) -> np.ndarray:
    values = np.array([distance.pdist(vectors[[a, b]], metric)[0] for a, b in zip(i, j)])
    if not np.all(np.isfinite(values)):
        raise ValueError("undefined distance")
    return values


def _time(ti: np.ndarray, tj: np.ndarray, metric: str) -> np.ndarray:
    """pdist's time distance on 1-d timestamps, operation for operation."""
    if metric == "sqeuclidean":
        return (ti - tj) ** 2
    if metric == "cityblock":
        return np.abs(ti - tj)
    return np.sqrt((ti - tj) ** 2)


def build(vectors: np.ndarray, timestamps: np.ndarray, alpha: float, method: str, metric: str,
          sim: float) -> tuple[np.ndarray, float]:
    """A linkage matrix exact below the cut for ``sim``, and max(d) of the mixed distances."""
    n = len(vectors)
    t64 = np.asarray(timestamps, dtype=np.float64)
    if metric == "cosine" and not np.all(np.any(vectors != 0, axis=1)):
        raise ValueError("cosine distance of an all-zero fingerprint is undefined")
    screened = Screen(vectors, metric, keep=fits_in_memory(n))

    # Pass 1: the exact content maximum, from every pair the screen puts near it.
    near = _NearMax()
    for r, row in screened.rows():
        near.offer(r, row)
    i, j = near.pairs()
    dc_max = float(_exact(vectors, i, j, metric).max())

    time_metric = TIME_METRIC.get(metric, metric)
    first, last = int(np.argmin(t64)), int(np.argmax(t64))
    dt_max = float(_time(t64[first], t64[last], time_metric))
    time_on = alpha > 0 and dt_max > 0

    def mixed(r: int, row: np.ndarray) -> np.ndarray:
        m = row.astype(np.float64) / dc_max
        if alpha == 0:
            return m
        m *= 1 - alpha
        if time_on:
            m += _time(t64[r], t64[r + 1:], time_metric) / dt_max * alpha
        return m

    # Pass 2: the mixed maximum (exactly 1, or 1 - alpha, when time plays no part) and
    # the pairs within reach of the cut. With time on, the cut is only known after the
    # pass, so pairs within the largest possible cut, 1 - sim, are kept and sorted out after.
    if time_on:
        d_max = None
        limit = (1.0 - sim) * (1 + SLACK) + 1e-12
    else:
        d_max = 1.0 if alpha == 0 else float(1.0 * (1 - alpha))
        limit = d_max * (1.0 - sim) * (1 + SLACK) + 1e-12
    near = _NearMax()
    edges_i, edges_j, edges_d, count = [], [], [], 0
    budget = MAX_EDGES_SHARE * n * (n - 1) / 2
    for r, row in screened.rows():
        m = mixed(r, row)
        if time_on:
            near.offer(r, m)
        cols = np.flatnonzero(m <= limit)
        if len(cols):
            edges_i.append(np.full(len(cols), r, dtype=np.int32))
            edges_j.append((cols + r + 1).astype(np.int32))
            edges_d.append(m[cols].astype(np.float32))
            count += len(cols)
            if count > budget:
                raise TooConnected
    del screened
    graph_i = np.concatenate(edges_i) if edges_i else np.empty(0, np.int32)
    graph_j = np.concatenate(edges_j) if edges_j else np.empty(0, np.int32)
    graph_d = np.concatenate(edges_d) if edges_d else np.empty(0, np.float32)
    if time_on:
        ci, cj = near.pairs()
        dc = _exact(vectors, ci, cj, metric)
        d_max = float(((dc / dc_max) * (1 - alpha) + (_time(t64[ci], t64[cj], time_metric) / dt_max) * alpha).max())
        keep = graph_d <= d_max * (1.0 - sim) * (1 + SLACK) + 1e-12
        graph_i, graph_j = graph_i[keep], graph_j[keep]
    graph = coo_matrix((np.ones(len(graph_i), np.int8), (graph_i, graph_j)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    return _combine(vectors, t64, labels, alpha, method, metric, time_metric, dc_max, dt_max, time_on,
                    d_max), d_max


class TooConnected(Exception):
    """At this sim nearly every photo is within reach of every other: use the full matrix."""


def _combine(vectors, t64, labels, alpha, method, metric, time_metric, dc_max, dt_max, time_on,
             d_max) -> np.ndarray:
    """Exact linkage inside each component, joined into one tree at height d_max."""
    n = len(vectors)
    order = np.argsort(labels, kind="stable")
    bounds = np.flatnonzero(np.diff(labels[order])) + 1
    rows: list[list[float]] = []
    roots: list[tuple[int, int]] = []  # (cluster id, size)
    next_id = n
    for members in np.split(order, bounds):
        members = np.sort(members)
        if len(members) == 1:
            roots.append((int(members[0]), 1))
            continue
        dc = distance.pdist(vectors[members], metric)
        d = dc / dc_max
        if alpha != 0:
            dt = distance.pdist(t64[members][:, None], time_metric)
            dt = dt / dt_max if time_on else np.zeros_like(dt)
            d = d * (1 - alpha) + dt * alpha
        z = hierarchy.linkage(d, method=method)
        m = len(members)
        ids = np.concatenate([members, np.arange(next_id, next_id + m - 1)])
        for a, b, height, size in z:
            rows.append([ids[int(a)], ids[int(b)], height, size])
        next_id += m - 1
        roots.append((next_id - 1, m))
    # Join the components above every merge that matters.
    current, current_size = roots[0]
    for root, size in roots[1:]:
        current_size += size
        rows.append([current, root, d_max, current_size])
        current = next_id
        next_id += 1
    return np.array(rows, dtype=np.float64).reshape(-1, 4)
