"""The pairs within the cut of the absolute distance, for large libraries, and the tree.

Near in time: a band of BLAS blocks along the time order; far in time: a k-d tree's near-duplicate
search; then linkage inside each component (:func:`.components.combine`).
In depth: docs/engine.md, "The pairs within an absolute cut".
"""

from __future__ import annotations

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from . import bounds, components
from .absolute import TOP, Mix, clock, order_times
from .constraints import Constraints

SLACK = 1e-2  # relative, with ABSOLUTE_SLACK: float32 distances are within 1e-3 of the scale
ABSOLUTE_SLACK = 2e-3
DIRECTIONS = 32  # of the bounds: the radius of near-duplicates is small, so few directions rule out the rest
BAND_ROWS = 64  # rows of the band measured at a time: few beyond tau of each other
NEAR_DIMS = 6  # leading principal coordinates of the near-duplicate search (with the norm of the rest)
NEAR_SHARE = 0.02  # beyond this share of the pairs as its candidates, tiles cost less
NEAR_MOST = 1 << 26  # candidates held at once, at most (a gigabyte of pairs)
SETTLE = 1 << 20  # candidate pairs settled at a time


def screening(vectors: np.ndarray, timestamps: np.ndarray, timed: np.ndarray | None, metric: str):
    """The projection and exact distances, photos in capture-time order with the untimed last (kept by the
    plugin: it depends on neither alpha, tau nor sim)."""
    return components.screening(
        vectors, order_times(timestamps, timed), metric, bounds_from=components.MIN_PHOTOS, k=DIRECTIONS, maxima=False
    )


def build(
    vectors: np.ndarray,
    timestamps: np.ndarray,
    timed: np.ndarray | None,
    mix: Mix,
    method: str,
    metric: str,
    sim: float,
    constraints: Constraints | None = None,
    screened: components.Screening | None = None,
) -> np.ndarray:
    """A linkage matrix exact below the cut ``1 - sim``; its components join at :data:`.absolute.TOP`.

    Raises :class:`.components.TooConnected` where the pairs within the cut are too many for components
    to pay (the caller uses the full matrix).
    """
    n = len(vectors)
    screened = screened or screening(vectors, timestamps, timed, metric)
    times = clock(timestamps, timed)
    cut = 1.0 - sim
    i, j = edges(screened, times, mix, _allowed(cut, 1.0))  # d is in units of the scale
    if len(i) > components.MAX_EDGES_SHARE * n * (n - 1) / 2:
        raise components.TooConnected
    if constraints:
        links = np.array([(g[0], p) for g in constraints.same for p in g[1:]], dtype=np.int64).reshape(-1, 2)
        i, j = np.concatenate([i, links[:, 0]]), np.concatenate([j, links[:, 1]])
    graph = coo_matrix((np.ones(len(i), np.int8), (i, j)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    return components.combine(vectors, times, labels, method, metric, "cityblock", mix, TOP, constraints)


def edges(screened: components.Screening, times: np.ndarray, mix: Mix, limit: float) -> tuple[np.ndarray, np.ndarray]:
    """Photo pairs (i, j) whose distance may be within ``limit``: every one that is, and a few just beyond."""
    p = screened.projection
    ordered = times[p.order]  # capture times in the projection's order, NaN (untimed) last
    timed = int(np.count_nonzero(~np.isnan(ordered)))
    found = [_band(screened, ordered, timed, mix, limit)] if mix.alpha > 0 else []
    found.extend(_search(screened, timed, mix, limit))
    a = np.concatenate([f[0] for f in found]) if found else np.empty(0, np.int64)
    b = np.concatenate([f[1] for f in found]) if found else np.empty(0, np.int64)
    return p.order[a], p.order[b]


def _radii(mix: Mix, limit: float) -> tuple[float, float]:
    """Content radii (in the metric's units) of pairs far apart in time and of pairs with an untimed photo;
    -1 where no pair of that kind can be within the limit, inf where every one is."""
    untimed = limit * mix.scale
    if mix.alpha == 0:
        return untimed, untimed
    if mix.alpha == 1:
        return (np.inf if limit >= 1 else -1.0), untimed
    room = limit - mix.alpha
    return (room * mix.scale / (1 - mix.alpha) if room >= 0 else -1.0), untimed


def _band(screened, ordered: np.ndarray, timed: int, mix: Mix, limit: float) -> tuple[np.ndarray, np.ndarray]:
    """Pairs of timed photos less than ``tau`` apart within the limit: each block of rows in full against the
    photos up to ``tau`` after its last (time order positions a < b)."""
    p, exact = screened.projection, screened.exact
    found_a, found_b = [np.empty(0, np.int64)], [np.empty(0, np.int64)]
    t = ordered[:timed]
    for i0 in range(0, timed - 1, BAND_ROWS):
        i1 = min(timed, i0 + BAND_ROWS)
        j1 = int(np.searchsorted(t, t[i1 - 1] + mix.tau, side="left"))
        j1 = max(j1, i1)
        rows = p.order[i0:i1]
        dc = exact.between(rows, p.order[i0:j1]).astype(np.float64)
        d = mix(dc, np.abs(np.subtract.outer(t[i0:i1], t[i0:j1])))
        a, b = np.nonzero(d <= limit)
        a += i0
        b += i0
        keep = b > a
        found_a.append(a[keep])
        found_b.append(b[keep])
    return np.concatenate(found_a), np.concatenate(found_b)


def _search(screened, timed: int, mix: Mix, limit: float) -> list[tuple[np.ndarray, np.ndarray]]:
    """Pairs within the content radius of their kind: timed pairs far apart in time from a near-duplicate
    search over the leading principal coordinates where it leaves few candidates, else tile by tile; pairs
    with an untimed photo tile by tile, in the columns that hold them."""
    p = screened.projection
    far, untimed = _radii(mix, limit)
    if far == np.inf:
        raise components.TooConnected  # time alone joins every pair: the full matrix
    found = []
    near = _near_duplicates(p, timed, far, mix.scale, screened.exact.metric) if far >= 0 else None
    for i0, i1, j0, j1 in p.tiles():
        if near is None and far >= 0 and j0 < timed:  # timed pairs (and the rest of the tile) by tiles
            found.append(_tile(screened, (i0, i1, j0, j1), timed, far, untimed, mix.scale))
        elif untimed >= 0 and j1 > timed:  # only the columns of untimed photos
            found.append(_tile(screened, (i0, i1, max(j0, timed, i0), j1), timed, far, untimed, mix.scale))
    if near is not None:
        for a, b in near:
            radius = np.full(len(a), far)
            found.append(_settle(screened, a, b, p.lower_pairs(a, b), radius, mix.scale))
    return found


def _near_duplicates(p, timed: int, radius: float, scale: float, metric: str):
    """Candidate pairs (a < b < ``timed``, time order) within ``radius`` of content, ``SETTLE`` at a time, from a
    k-d tree over the ``NEAR_DIMS`` leading principal coordinates and the norm of the rest (the distance of
    those points is a lower bound of the photos', as the screen's bounds are, so no pair within the radius is
    missed); None where they would be more than ``NEAR_SHARE`` of the pairs (coordinates that spread too little
    for this radius: tiles cost less).
    """
    if timed < 2:
        return None
    z = p.left[:timed, : min(NEAR_DIMS, p.left.shape[1] - 3)].astype(np.float64)
    rest = np.sqrt(np.maximum(p.n[:timed] - np.einsum("ij,ij->i", z, z), 0.0))
    tree = cKDTree(np.column_stack([z, rest]))
    # The radius as a euclidean one, with twice the margin of the float32 rounding the bounds allow for.
    reach = float(np.sqrt(bounds.to_squared(_allowed(radius, scale), metric) + 4 * bounds.EPS * p.n[:timed].max()))
    sample = np.arange(0, timed, max(1, timed // 2000))
    around = tree.query_ball_point(tree.data[sample], reach, return_length=True)
    estimate = float((around - 1).sum()) * timed / len(sample) / 2
    if estimate > min(NEAR_SHARE * timed * (timed - 1) / 2, NEAR_MOST) + 10 * timed:
        return None
    found = tree.query_pairs(reach, output_type="ndarray").astype(np.int64)
    return ((found[s : s + SETTLE, 0], found[s : s + SETTLE, 1]) for s in range(0, len(found), SETTLE))


def _allowed(radius, scale: float):
    """A content radius with the slack that covers float32 distances' errors (extra candidates are harmless)."""
    return radius * (1 + SLACK) + ABSOLUTE_SLACK * scale


def _tile(screened, tile: tuple, timed: int, far: float, untimed: float, scale: float):
    """The pairs of one tile (i0, i1, j0, j1) within their kind's radius."""
    p, exact, metric = screened.projection, screened.exact, screened.exact.metric
    i0, i1, j0, j1 = tile
    if j1 <= j0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    radius = max(far if j0 < timed else -1.0, untimed if j1 > timed else -1.0)
    if radius < 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    reach = bounds.to_squared(radius, metric)
    if p.tight:
        lower = p.lower(i0, i1, j0, j1)
        a, b = np.nonzero(lower <= reach + p.margin(i0, i1, j0, j1))
        squared = lower[a, b].astype(np.float64)
    else:
        full = exact.between(p.order[i0:i1], p.order[j0:j1])
        a, b = np.nonzero(full <= _allowed(radius, scale))
        squared = None
        measured = full[a, b].astype(np.float64)
    a, b = a + i0, b + j0
    keep = b > a
    a, b = a[keep], b[keep]
    pair_radius = np.where((a >= timed) | (b >= timed), untimed, far)
    if squared is None:
        close = measured[keep] <= _allowed(pair_radius, scale)
        return a[close], b[close]
    return _settle(screened, a, b, squared[keep], pair_radius, scale)


def _settle(screened, a, b, squared: np.ndarray, radius: np.ndarray, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Candidate pairs with squared lower bounds: those whose bounds put them within their radius (less slack),
    and those the bounds leave in doubt whose float32 distance does."""
    p, metric = screened.projection, screened.exact.metric
    margin = bounds.EPS * (p.n[a] + p.n[b])
    near = bounds.from_squared(np.maximum(squared - margin, 0), metric)
    allowed = _allowed(radius, scale)
    keep = near <= allowed
    a, b, squared, margin, radius, allowed = a[keep], b[keep], squared[keep], margin[keep], radius[keep], allowed[keep]
    sure = bounds.from_squared(squared + p.upper_gap(a, b) + margin, metric) <= radius
    doubt = np.flatnonzero(~sure)
    if len(doubt):
        dc = screened.exact.pairs(p.order[a[doubt]], p.order[b[doubt]]).astype(np.float64)
        sure[doubt[dc <= allowed[doubt]]] = True
    return a[sure], b[sure]
