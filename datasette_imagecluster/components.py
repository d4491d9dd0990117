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

* all pair distances are *screened* in float32 with BLAS, ~20x faster than
  pdist, block by block in one pass, so memory is the fingerprints, one
  block and the pairs within reach of the cut;
* the cut depends on the largest content distance, only known at the end of
  the pass. The pass uses an upper bound instead: the largest distance from
  the photos farthest from the centre to all others (the diameter's ends lie
  among them in practice), plus ``GUESS``. Dividing by a larger number only
  keeps more pairs; if the true maximum turns out larger than the bound, the
  pass runs again with the true maximum (the tests force this path);
* the normalising maxima are recomputed exactly (with pdist itself, whose
  value for a pair does not depend on the other rows) for the pairs the
  screen puts near the maximum;
* the graph keeps every pair the screen puts within ``SLACK`` of t: extra
  edges only merge components, which changes nothing below t;
* inside each component, distances are computed again by pdist exactly as
  the reference does, normalised and mixed with the same operations.

Above t the combined tree joins the components at the top (height max(d)),
so it can be cut at any sim at least the one it was built for.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from scipy.cluster import hierarchy
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import distance

from .constraints import Constraints, above, constrained_linkage

REDUCIBLE_METHODS = frozenset({"single", "complete", "average", "weighted", "ward"})
SCREENED_METRICS = frozenset({"euclidean", "sqeuclidean", "cosine"})
MIN_PHOTOS = 3000  # below this the full matrix is fast enough
SLACK = 1e-2  # float32 screening errors are below 1e-3 relative; extra candidates are harmless
GUESS = 1e-2  # margin of the upper bound on the largest content distance
EXTREMES = 256  # photos farthest from the centre whose distances give that bound
BLOCK = 1024
# Time distance uses the content metric, except where that is undefined on 1-d data
# (the same rule as clustering.mixed_distances).
TIME_METRIC = {"cosine": "cityblock", "correlation": "cityblock"}
MAX_EDGES_SHARE = 0.25  # beyond this the components are the whole library: use the full matrix


def applicable(n: int, method: str, metric: str) -> bool:
    return n >= MIN_PHOTOS and method in REDUCIBLE_METHODS and metric in SCREENED_METRICS


class Screen:
    """Approximate float32 distances of photos to each other, computed block by block with BLAS."""

    def __init__(self, vectors: np.ndarray, metric: str):
        x = np.ascontiguousarray(vectors, dtype=np.float32)
        if metric == "cosine":
            norms = np.linalg.norm(x.astype(np.float64), axis=1)
            norms[norms == 0] = 1.0  # pdist says NaN for these; build() refuses them first
            x = (x / norms[:, None].astype(np.float32)).astype(np.float32)
        self.x, self.metric, self.n = x, metric, len(x)
        self.sq = np.einsum("ij,ij->i", x, x, dtype=np.float64).astype(np.float32)

    def between(self, rows: np.ndarray | slice, cols: np.ndarray | slice) -> np.ndarray:
        d = self.x[rows] @ self.x[cols].T
        d *= -2
        d += self.sq[rows, None]
        d += self.sq[None, cols]
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
            block = self.between(slice(i0, i1), slice(i0, n))
            for r in range(i0, min(i1, n - 1)):
                yield r, block[r - i0, r - i0 + 1 :]

    def max_estimate(self) -> float:
        """Nearly always the largest distance: from the photos farthest from the centre to all."""
        centre = self.x.mean(axis=0, dtype=np.float64).astype(np.float32)
        if self.metric == "cosine":
            spread = -(self.x @ centre)
        else:
            spread = self.sq - 2 * (self.x @ centre)
        k = min(EXTREMES, self.n)
        extremes = np.argpartition(spread, self.n - k)[self.n - k :]
        return float(max(self.between(extremes[i : i + BLOCK], slice(None)).max() for i in range(0, k, BLOCK)))


class _NearMax:
    """Pairs within ``slack`` of the largest value seen so far: the candidates for the exact maximum."""

    def __init__(self, slack: float = SLACK):
        self.best = 0.0
        self.slack = slack
        self.found: list[tuple[float, int, np.ndarray]] = []  # (row max, row, columns)

    def offer(self, r: int, values: np.ndarray) -> None:
        top = float(values.max()) if len(values) else 0.0
        if top < self.best * (1 - self.slack):
            return
        if top > self.best:
            self.best = top
            self.found = [f for f in self.found if f[0] >= top * (1 - self.slack)]
        cols = np.flatnonzero(values >= self.best * (1 - self.slack)) + r + 1
        self.found.append((top, r, cols))

    def pairs(self) -> tuple[np.ndarray, np.ndarray]:
        i = np.concatenate([np.full(len(c), r) for _, r, c in self.found])
        j = np.concatenate([c for _, _, c in self.found])
        return i, j


def _exact(vectors: np.ndarray, i: np.ndarray, j: np.ndarray, metric: str) -> np.ndarray:
    """pdist's own value for each pair (i, j)."""
    values = np.array([distance.pdist(vectors[[a, b]], metric)[0] for a, b in zip(i, j)])
    if not np.all(np.isfinite(values)):
        raise ValueError("undefined distance")
    return values


def _float64(vectors: np.ndarray, i: np.ndarray, j: np.ndarray, metric: str) -> np.ndarray:
    """Each pair's distance in float64, vectorised: within 1e-12 of pdist, far cheaper per pair."""
    out = np.empty(len(i))
    for k in range(0, len(i), 512):
        a = vectors[i[k : k + 512]].astype(np.float64)
        b = vectors[j[k : k + 512]].astype(np.float64)
        if metric == "cosine":
            out[k : k + 512] = 1 - np.einsum("ij,ij->i", a, b) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
        else:
            sq = np.einsum("ij,ij->i", a - b, a - b)
            out[k : k + 512] = sq if metric == "sqeuclidean" else np.sqrt(sq)
    return out


def _exact_max(vectors: np.ndarray, i: np.ndarray, j: np.ndarray, metric: str, score=None) -> float:
    """max over the candidate pairs of score(content distance, i, j), in pdist's arithmetic.

    float64 picks the few pairs that can be the maximum; pdist settles it.
    """
    score = score or (lambda dc, i, j: dc)
    approx = score(_float64(vectors, i, j, metric), i, j)
    top = approx >= approx.max() - 1e-9 * max(abs(approx.max()), 1e-300)
    i, j = i[top], j[top]
    return float(score(_exact(vectors, i, j, metric), i, j).max())


def _time(ti: np.ndarray, tj: np.ndarray, metric: str) -> np.ndarray:
    """pdist's time distance on 1-d timestamps, operation for operation."""
    if metric == "sqeuclidean":
        return (ti - tj) ** 2
    if metric == "cityblock":
        return np.abs(ti - tj)
    return np.sqrt((ti - tj) ** 2)


def build(
    vectors: np.ndarray,
    timestamps: np.ndarray,
    alpha: float,
    method: str,
    metric: str,
    sim: float,
    constraints: Constraints | None = None,
) -> tuple[np.ndarray, float]:
    """A linkage matrix exact below the cut for ``sim``, and max(d) of the mixed distances.

    Must-link verdicts are edges too (their photos merge first, whatever their distance), and a
    component holding a verdict is clustered with :func:`.constraints.constrained_linkage`.
    """
    n = len(vectors)
    t64 = np.asarray(timestamps, dtype=np.float64)
    if metric == "cosine" and not np.all(np.any(vectors != 0, axis=1)):
        raise ValueError("cosine distance of an all-zero fingerprint is undefined")
    screen = Screen(vectors, metric)
    time_metric = TIME_METRIC.get(metric, metric)
    first, last = int(np.argmin(t64)), int(np.argmax(t64))
    dt_max = float(_time(t64[first], t64[last], time_metric))
    time_on = alpha > 0 and dt_max > 0

    bound, slack = screen.max_estimate() * (1 + GUESS), SLACK + GUESS
    while True:
        scan = _Scan(screen, t64, alpha, sim, bound, slack, time_metric, dt_max, time_on)
        dc_max = _exact_max(vectors, *scan.content.pairs(), metric)
        if dc_max <= bound:
            break
        bound, slack = dc_max, SLACK  # the estimate fell short: once more with the true maximum

    def mix(dc: np.ndarray, dt: np.ndarray) -> np.ndarray:
        """d from content and time distances, as clustering.mixed_distances computes it, operation for operation."""
        d = dc / dc_max
        if alpha == 0:
            return d
        dt = dt / dt_max if time_on else np.zeros_like(d)
        return d * (1 - alpha) + dt * alpha

    def mixed(dc: np.ndarray, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        return mix(dc, _time(t64[i], t64[j], time_metric))

    if time_on:
        d_max = _exact_max(vectors, *scan.mixed.pairs(), metric, mixed)
    else:
        d_max = 1.0 if alpha == 0 else float(1.0 * (1 - alpha))
    keep = mixed(scan.dc.astype(np.float64), scan.i, scan.j) <= d_max * (1.0 - sim) * (1 + SLACK) + 1e-12
    i, j = scan.i[keep], scan.j[keep]
    if constraints:
        links = np.array([(g[0], p) for g in constraints.same for p in g[1:]], dtype=np.int32).reshape(-1, 2)
        i, j = np.concatenate([i, links[:, 0]]), np.concatenate([j, links[:, 1]])
    graph = coo_matrix((np.ones(len(i), np.int8), (i, j)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    return _combine(vectors, t64, labels, method, metric, time_metric, mix, d_max, constraints), d_max


class _Scan:
    """One pass of the screen: the candidates for both maxima, and every pair that may be an edge.

    Distances are divided by ``bound`` >= the largest content distance, which
    only makes them smaller: the pairs kept are a superset of the edges, and
    the mixed maximum's candidates are kept within ``slack``, which covers how
    far ``bound`` may lie above the maximum. With time on, max(d) <= 1 stands
    in for the cut's max(d) until it is known.
    """

    def __init__(
        self,
        screen: Screen,
        t64: np.ndarray,
        alpha: float,
        sim: float,
        bound: float,
        slack: float,
        time_metric: str,
        dt_max: float,
        time_on: bool,
    ):
        n = screen.n
        d_max = 1.0 if time_on or alpha == 0 else 1.0 - alpha
        limit = d_max * (1.0 - sim) * (1 + SLACK) + 1e-12
        self.content = _NearMax()
        self.mixed = _NearMax(slack)
        edges_i, edges_j, edges_d, count = [], [], [], 0
        budget = MAX_EDGES_SHARE * n * (n - 1) / 2
        for r, row in screen.rows():
            self.content.offer(r, row)
            m = row.astype(np.float64) / bound
            if alpha != 0:
                m *= 1 - alpha
                if time_on:
                    m += _time(t64[r], t64[r + 1 :], time_metric) / dt_max * alpha
                    self.mixed.offer(r, m)
            cols = np.flatnonzero(m <= limit)
            if len(cols):
                edges_i.append(np.full(len(cols), r, dtype=np.int32))
                edges_j.append((cols + r + 1).astype(np.int32))
                edges_d.append(row[cols])
                count += len(cols)
                if count > budget:
                    raise TooConnected
        self.i = np.concatenate(edges_i) if edges_i else np.empty(0, np.int32)
        self.j = np.concatenate(edges_j) if edges_j else np.empty(0, np.int32)
        self.dc = np.concatenate(edges_d) if edges_d else np.empty(0, np.float32)  # screened content


class TooConnected(Exception):
    """At this sim nearly every photo is within reach of every other: use the full matrix."""


def _combine(vectors, t64, labels, method, metric, time_metric, mix, d_max, constraints=None) -> np.ndarray:
    """Exact linkage inside each component, joined into one tree at height d_max.

    Inside a component, clusters that verdicts keep apart join above every cut; the
    components then join at d_max, which only a cut at sim 0 reaches (never this tree's).
    """
    constrained = constraints.by_component(labels) if constraints else {}
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
        d = mix(distance.pdist(vectors[members], metric), distance.pdist(t64[members][:, None], time_metric))
        label = int(labels[members[0]])
        inside = constrained[label].within(members) if label in constrained else None
        z = constrained_linkage(d, method, inside, above(d_max)) if inside else hierarchy.linkage(d, method=method)
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
