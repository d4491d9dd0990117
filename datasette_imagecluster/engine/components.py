"""Exact clustering of large libraries, one connected component at a time.

A pass over all pairs (bounded by :mod:`.bounds`, on Dask's workers if asked) finds the pairs within the
cut; linkage runs inside each component, exactly as the full matrix would below the cut.
In depth: docs/engine.md, "One component at a time".
"""

from __future__ import annotations

import contextvars
import copy
import functools
import itertools
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

import numpy as np
from scipy.cluster import hierarchy
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import distance

from . import bounds, pairwise
from .constraints import Constraints, above, constrained_linkage
from .memory import matrices

REDUCIBLE_METHODS = frozenset({"single", "complete", "average", "weighted", "ward"})
SCREENED_METRICS = frozenset({"euclidean", "sqeuclidean", "cosine"})
MIN_PHOTOS = 1000  # below this the full matrix costs less than the screen
SLACK = 1e-2  # float32 errors are below 1e-3 relative; extra candidates are harmless
GUESS = 1e-2  # margin of the upper guess of the largest content distance
MIXED_GUESS = 3e-2  # margin of the guess of max(d) above its floor, for the cut of the pass's first step
# Time distance uses the content metric, except where that is undefined on 1-d data
# (the same rule as clustering.mixed_distances).
TIME_METRIC = {"cosine": "cityblock", "correlation": "cityblock"}
HOPELESS = 0.2  # beyond this share, tighter bounds would not settle enough to pay for themselves
# Projecting N photos on the FINE directions costs as much as measuring N * FINE pairs in full: below
# FINER_FROM times that, the tiles set aside for the true cut are measured in full.
FINER_FROM = 1.0
DENSE = 0.01  # a tile where the bounds leave more candidates than this share is measured in full
MAX_EDGES_SHARE = 0.25  # beyond this the components are the whole library: use the full matrix
BATCHED, BATCH = 64, 256  # components of 3 to BATCHED photos are clustered together, BATCH photos a call
FAR = 1e100  # their distances across components: ward's squares them, still finite
ON_WORKERS = 1000  # inside on_dask, components this large are clustered on the workers
CELL = 256  # columns of a tile bounded together in the search for the maxima's candidates (class _TileMaxima)
FLOOR_PAIRS = 16  # far pairs measured in float64 for the floor of max(d)
SETTLE = 1 << 20  # edge candidates settled at the true cut a chunk at a time
SPAN = 0.1  # a pass keeps the edge candidates of every alpha within this of its own: the plugin's alpha change


def applicable(n: int, method: str, metric: str) -> bool:
    return n >= MIN_PHOTOS and method in REDUCIBLE_METHODS and metric in SCREENED_METRICS


_DASK: contextvars.ContextVar = contextvars.ContextVar("imagecluster_dask_client", default=None)


@contextmanager
def on_dask(client) -> Iterator[None]:
    """Share the screen of every clustering built inside among the workers of a Dask ``client``."""
    token = _DASK.set(client)
    try:
        yield
    finally:
        _DASK.reset(token)


class TooConnected(Exception):
    """At this sim nearly every photo is within reach of every other: use the full matrix."""


@dataclass
class Screening:
    """What the screen needs that depends on neither alpha nor sim: kept, an alpha change skips it."""

    projection: bounds.Projection
    exact: bounds.Exact
    estimate: tuple[float, int, int]  # a large content distance and its pair (a lower bound of the largest)
    far: tuple[np.ndarray, np.ndarray, np.ndarray]  # pairs far apart in content and time, their float32 distances
    dc_max: float | None = None  # the largest content distance, once a pass has settled it
    stats: dict[str, int] = field(default_factory=dict)  # how the last pass pruned (docs/benchmarks.md)
    kept: _KeptCandidates | None = None  # the last pass's edge candidates, for another alpha in its span


@dataclass
class _KeptCandidates:
    """A pass's edge candidates, good for any alpha in ``span`` at this sim, and each tile's ceiling."""

    sim: float
    span: tuple[float, float]
    scan: _Scan  # its ceilings: tile -> (squared content upper bound, measured in full)

    def serves(self, sim: float, alpha: float) -> bool:
        return sim == self.sim and self.span[0] <= alpha <= self.span[1]


def screening(
    vectors: np.ndarray,
    timestamps: np.ndarray,
    metric: str,
    bounds_from: int | None = None,
    k: int | None = None,
    maxima: bool = True,
) -> Screening:
    """Project the fingerprints; ValueError where the metric is undefined for them.

    ``bounds_from`` and ``k``: the fewest photos whose bounds are used, and the directions
    (:func:`.bounds.project`); without ``maxima`` (absolute distances, which need none), no
    pairs far apart are sought.
    """
    if metric == "cosine" and not np.all(np.any(vectors != 0, axis=1)):
        raise ValueError("cosine distance of an all-zero fingerprint is undefined")
    exact = bounds.Exact(vectors, metric)
    projection = bounds.project(exact.x, timestamps, exact.norms, k=k, bounds_from=bounds_from)
    if not maxima:
        none = np.empty(0, np.int64)
        return Screening(projection, exact, (0.0, 0, 0), (none, none, np.empty(0, np.float32)))
    far = bounds.far_pairs(projection, exact)
    top = int(np.argmax(far[2]))
    return Screening(projection, exact, (float(far[2][top]), far[0][top], far[1][top]), far)


def _exact(vectors: np.ndarray, i: np.ndarray, j: np.ndarray, metric: str) -> np.ndarray:
    """pdist's own value for each pair (i, j)."""
    values = np.array([distance.pdist(vectors[[a, b]], metric)[0] for a, b in zip(i, j)])
    if not np.all(np.isfinite(values)):
        raise ValueError("undefined distance")
    return values


def _float64(vectors: np.ndarray, i: np.ndarray, j: np.ndarray, metric: str) -> np.ndarray:
    """Each pair's distance in float64, vectorised: within 1e-12 of pdist, far cheaper per pair."""
    out = np.empty(len(i))
    for k in range(0, len(i), 256):
        a = np.take(vectors, i[k : k + 256], axis=0).astype(np.float64)
        b = np.take(vectors, j[k : k + 256], axis=0).astype(np.float64)
        if metric == "cosine":
            out[k : k + 256] = 1 - np.einsum("ij,ij->i", a, b) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
        else:
            a -= b
            sq = np.einsum("ij,ij->i", a, a)
            out[k : k + 256] = sq if metric == "sqeuclidean" else np.sqrt(sq)
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


def _time_pdist(times: np.ndarray, metric: str) -> np.ndarray:
    """``pdist(times[:, None], metric)`` of a small component (at most ``BATCHED`` photos), value for value: its
    one-term sums are :func:`_time`'s operations (the tests compare them bit for bit), without pdist's checks,
    which cost more than a small component."""
    i, j = _upper(len(times))
    return _time(times[i], times[j], metric)


def _mixed(mix, content: np.ndarray, times: np.ndarray, time_metric: str) -> np.ndarray:
    """A component's mixed distances from its content distances (consumed): ``mix(content, time distances)``,
    a large component row by row (:func:`.pairwise.mixed_by_rows`)."""
    if len(times) <= BATCHED:
        return mix(content, _time_pdist(times, time_metric))
    return pairwise.mixed_by_rows(mix, content, times, lambda t, later: _time(t, later, time_metric))


@functools.lru_cache(maxsize=BATCHED)
def _upper(m: int) -> tuple[np.ndarray, np.ndarray]:
    """``np.triu_indices(m, 1)`` for a small m (at most ``BATCHED``, the most asked): pdist's order of the pairs."""
    i, j = np.triu_indices(m, 1)
    i.flags.writeable = j.flags.writeable = False
    return i, j


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
    screened: Screening | None = None,
) -> tuple[np.ndarray, float]:
    """A linkage matrix exact below the cut for ``sim``, and max(d) of the mixed distances.

    Inside :func:`on_dask`, the screen's row blocks are shared among a Dask
    cluster's workers. ``screened`` (from :func:`screening` for these vectors, timestamps and
    metric) is reused and completed rather than computed again; a caller that keeps it
    gets the pass's edge candidates for alpha ± ``SPAN`` kept in it too (a dearer pass),
    so that a later build at an alpha there skips the pass. Must-link
    verdicts are edges too (their photos merge first, whatever their distance),
    and a component holding a verdict is clustered with
    :func:`.constraints.constrained_linkage`.
    """
    n = len(vectors)
    t64 = np.asarray(timestamps, dtype=np.float64)
    keeps = screened is not None  # the caller keeps the screening (the plugin): worth a span of alphas
    screened = screened or screening(vectors, timestamps, metric)
    time_metric = TIME_METRIC.get(metric, metric)
    first, last = int(np.argmin(t64)), int(np.argmax(t64))
    dt_max = float(_time(t64[first], t64[last], time_metric))
    time_on = alpha > 0 and dt_max > 0

    kept = screened.kept
    if kept is not None and time_on and kept.serves(sim, alpha):
        # The edge candidates of this alpha are kept: only the largest mixed distance is sought again.
        dc_max = screened.dc_max
        floor = _mixed_floor(screened, t64, alpha, metric, time_metric, dt_max, dc_max, kept.scan.mixed_pairs())
        settings = _Settings(alpha, sim, metric, time_metric, dt_max, time_on, dc_max, dc_max, floor)
        scan = kept.scan = kept.scan.at(settings, _scan_maxima(screened, settings, kept.scan.ceilings))
        mix = _Mix(alpha, dc_max, dt_max, time_on, time_metric)
        d_max = _d_max(vectors, t64, scan, mix, metric)
    else:
        screened.kept = None  # not sent to Dask's workers, and replaced below
        wide = keeps and time_on and screened.projection.tight
        span = (max(0.0, alpha - SPAN), min(1.0, alpha + SPAN)) if wide else None
        try:
            scan, mix, d_max = _pass(screened, vectors, t64, metric, alpha, sim, time_metric, dt_max, time_on, span)
        except TooConnected:
            if span is None:
                raise
            span = None  # the span's wider alphas reach too many pairs: this alpha's own
            scan, mix, d_max = _pass(screened, vectors, t64, metric, alpha, sim, time_metric, dt_max, time_on, None)
        if span is not None:
            screened.kept = _KeptCandidates(sim, span, scan)
    i, j = scan.edges(lambda dc, i, j: mix.of_pairs(dc, t64, i, j), d_max * (1.0 - sim) * (1 + SLACK) + 1e-12)
    if constraints:
        links = np.array([(g[0], q) for g in constraints.same for q in g[1:]], dtype=np.int64).reshape(-1, 2)
        i, j = np.concatenate([i, links[:, 0]]), np.concatenate([j, links[:, 1]])
    graph = coo_matrix((np.ones(len(i), np.int8), (i, j)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    return combine(vectors, t64, labels, method, metric, time_metric, mix, d_max, constraints), d_max


@dataclass(frozen=True)
class _Mix:
    """d from content and time distances, as clustering.mixed_distances computes it, operation for operation."""

    alpha: float
    dc_max: float
    dt_max: float
    time_on: bool
    time_metric: str

    def __call__(self, dc: np.ndarray, dt: np.ndarray) -> np.ndarray:
        """``dc / dc_max * (1 - alpha) + dt / dt_max * alpha`` (time 0 without ``time_on``), computed in ``dc``'s
        memory: both float64 and consumed (a large component's matrices are gigabytes)."""
        d = dc
        d /= self.dc_max
        if self.alpha == 0:
            return d
        d *= 1 - self.alpha
        if self.time_on:
            dt /= self.dt_max
            dt *= self.alpha
            d += dt
        return d

    def of_pairs(self, dc: np.ndarray, t64: np.ndarray, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        """The mixed distances of photo pairs (i, j) whose content distances are ``dc``."""
        return self(dc, _time(t64[i], t64[j], self.time_metric))


def _d_max(vectors: np.ndarray, t64: np.ndarray, scan: _Scan, mix: _Mix, metric: str) -> float:
    """max(d), in pdist's arithmetic: from the scan's candidates, or from alpha alone without time."""
    if mix.time_on:
        return _exact_max(vectors, *scan.mixed_pairs(), metric, lambda dc, i, j: mix.of_pairs(dc, t64, i, j))
    return 1.0 if mix.alpha == 0 else float(1.0 * (1 - mix.alpha))


def _pass(
    screened: Screening, vectors, t64, metric, alpha, sim, time_metric, dt_max, time_on, span
) -> tuple[_Scan, _Mix, float]:
    """The screen's pass over all pairs (on Dask's workers inside :func:`on_dask`): its scan, the mix and max(d).

    It runs in two steps. The first bounds every tile, settles max(d_c) and
    max(d), and sets aside the tiles where the bounds leave too many pairs
    within the cut. Without the plugin's span, that cut is max(d)'s floor plus
    ``MIXED_GUESS`` (the floor's far pairs nearly always hold max(d) itself),
    and the pass runs again at the true cut if max(d) turns out larger; with
    it, max(d) <= 1 stands in (each alpha of the span has its own max(d)).
    The second step takes the tiles set aside at the true cut, where many need
    no more, and projects on the FINE directions only when measuring them all
    in full would cost more.
    """
    if screened.dc_max is not None:
        low = high = screened.dc_max
    else:
        low = screened.estimate[0] * (1 - SLACK)
        high = screened.estimate[0] * (1 + GUESS)
    client = _DASK.get()
    with _shared(client, screened) as shared:  # once per build
        guess = None  # of max(d), for the cut of the first step
        while True:
            floor = _mixed_floor(screened, t64, alpha, metric, time_metric, dt_max, high) if time_on else 0.0
            if time_on and span is None and guess is None:
                guess = min(1.0, floor * (1 + MIXED_GUESS))
            settings = _Settings(alpha, sim, metric, time_metric, dt_max, time_on, low, high, floor, span, guess)
            scan = _Scan(screened, settings, _scan_parts(screened, shared, settings, client))
            dc_max = screened.dc_max
            if dc_max is None:
                dc_max = _exact_max(vectors, *scan.content_pairs(), metric)
            if dc_max > high:
                low = high = dc_max  # the guess of max(d_c) fell short: once more with the true one
                guess = None
                continue
            mix = _Mix(alpha, dc_max, dt_max, time_on, time_metric)
            d_max = _d_max(vectors, t64, scan, mix, metric)
            if guess is None or d_max <= guess:
                break
            low, high, guess = dc_max, dc_max, d_max  # the guess of max(d) fell short: once more at the true cut
        screened.dc_max = dc_max
        if scan.deferred:
            projection = screened.projection
            aside = sum(_pair_count(*t) for t in scan.deferred)
            finer = projection.fine_projected is not None or aside >= FINER_FROM * projection.size * projection.wide
            at = None if span else d_max  # a span's other alphas have other maxima: max(d) <= 1 stays
            final = replace(settings, low=dc_max, high=dc_max, d_max=at, maxima=False, finer=finer)
            scan.add(_scan_parts(screened, shared, final, client, scan.deferred))
        return scan, mix, d_max


def _mixed_floor(screened, t64, alpha, metric, time_metric, dt_max, high, known=None) -> float:
    """A lower bound of max(d): the largest mixed distance of known pairs, with ``high`` for max(d_c).

    The pairs found far apart before the pass (the best few at this alpha, by
    their float32 distance), the first and last photos, and ``known`` pairs
    (the candidates for max(d) at the kept pass's alpha, often the same).
    """
    far_i, far_j, far_d = screened.far
    guess = (1 - alpha) * far_d / high + alpha * _time(t64[far_i], t64[far_j], time_metric) / dt_max
    best = np.argsort(guess)[-FLOOR_PAIRS:]
    first, last = int(np.argmin(t64)), int(np.argmax(t64))
    i, j = np.append(far_i[best], first), np.append(far_j[best], last)
    if known is not None:
        i, j = np.concatenate([i, known[0]]), np.concatenate([j, known[1]])
    dc = _float64(screened.exact.x, i, j, metric)
    d = (1 - alpha) * dc / high + alpha * _time(t64[i], t64[j], time_metric) / dt_max
    return float(d.max())


@dataclass
class _Settings:
    """What one pass needs besides the screening: the same on the client and on every Dask worker."""

    alpha: float
    sim: float
    metric: str
    time_metric: str
    dt_max: float
    time_on: bool
    low: float  # <= the largest content distance <= high (checked after the pass)
    high: float
    mixed_floor: float  # a lower bound of max(d) known before the pass
    span: tuple[float, float] | None = None  # keep the edge candidates of every alpha in here, not alpha's only
    d_max: float | None = None  # max(d), known or guessed (checked after the pass)
    maxima: bool = True  # seek both maxima's candidates (the first step); else only edges, in set-aside tiles
    finer: bool = False  # tiles may be bounded again on the FINE directions

    @property
    def alphas(self) -> tuple[float, ...]:
        """Where to test a pair's lower bound: (1 - a) d_c + a d_t is linear in a, so it lies within
        the cut for some alpha of the span exactly when it does at one of the span's ends."""
        return (self.alpha,) if self.span is None else self.span

    @property
    def limit(self) -> float:
        """The cut at ``d_max`` (max(d), or its guess), or with max(d) <= 1 standing in for it."""
        d_max = 1.0 if self.time_on or self.alpha == 0 else 1.0 - self.alpha
        if self.d_max is not None:
            d_max = self.d_max
        return d_max * (1.0 - self.sim) * (1 + SLACK) + 1e-12

    def time_term(self, dt: float, alpha: float | None = None) -> float:
        if not self.time_on:
            return 0.0
        return (self.alpha if alpha is None else alpha) * float(_time(0.0, dt, self.time_metric)) / self.dt_max

    def time_between(self, times: np.ndarray, a, b, outer: bool, alpha: float | None = None) -> np.ndarray | float:
        """alpha * d_t / max(d_t) in float32 for pairs (a[p], b[p]), or for every a against every b.

        From times since the first: errors ~1e-7 of the cut, inside SLACK.
        """
        alpha = self.alpha if alpha is None else alpha
        if not self.time_on or alpha == 0:
            return 0.0
        squared = self.time_metric == "sqeuclidean"
        scale = np.sqrt(self.dt_max) if squared else self.dt_max
        ta = ((times[a] - times[0]) / scale).astype(np.float32)
        tb = ((times[b] - times[0]) / scale).astype(np.float32)
        d = np.subtract.outer(ta, tb) if outer else ta - tb
        if squared:
            d *= d
        else:
            np.abs(d, out=d)
        d *= np.float32(alpha)
        return d


@dataclass
class _Step:
    """What one step of the pass found in its tiles (what a Dask worker sends back), merged by :class:`_Scan`."""

    near: _EdgeCandidates  # edge candidates near the cut, settled as far as this step's cut allows
    content_floor: float  # lower bounds of the two maxima, raised as the step finds larger pairs: a pair
    mixed_floor: float  # whose upper bound stays below one (less SLACK) is not that maximum
    content: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=list)  # (a, b, squared upper)
    mixed: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=list)  # (a, b, upper bound)
    ceilings: dict[tuple[int, int], tuple[float, bool]] = field(default_factory=dict)  # tile -> (ceiling, measured)
    deferred: list[tuple[int, int, int, int]] = field(default_factory=list)  # tiles set aside for the true cut
    count: int = 0  # edge candidates
    dense: int = 0  # pairs in tiles measured in full
    finer: int = 0  # pairs in tiles bounded again on the FINE directions
    bounded: int = 0  # edge candidates from bounds
    measured: int = 0  # of those, measured in full because the bounds left them in doubt


def _scan_tiles(screened: Screening, settings: _Settings, tiles: list[tuple] | None = None) -> _Step:
    """One step of the screen's pass over tiles (all by default): candidate edges and candidates for both maxima.

    Normalising by ``high`` only makes distances smaller, so the pairs kept
    as edges are a superset. Tiles are pruned whole where their largest
    bound or their time range rules them out. In the first step, a tile
    where the bounds leave too many pairs within the cut is set aside for
    the second (``deferred``).
    """
    scanner = _TileScanner(screened, settings)
    for rect in screened.projection.tiles() if tiles is None else tiles:
        scanner.scan(rect)
    return scanner.finish()


class _TileScanner:
    """:func:`_scan_tiles`' state over one step's tiles: each is bounded, or measured in full where the
    bounds settle too little, and its edges and maxima's candidates are added to the step."""

    def __init__(self, screened: Screening, settings: _Settings):
        self.screened, self.settings, self.projection = screened, settings, screened.projection
        self.settled = screened.dc_max is not None
        n = self.projection.size
        self.budget = MAX_EDGES_SHARE * n * (n - 1) / 2
        self.near: list[_EdgeCandidates] = []
        self.step = _Step(
            _EdgeCandidates.joined([]), bounds.to_squared(settings.low, settings.metric), settings.mixed_floor
        )

    def finish(self) -> _Step:
        self.step.near = _EdgeCandidates.joined(self.near)
        return self.step

    def _over_budget(self) -> None:
        if self.step.count > self.budget:
            raise TooConnected

    def scan(self, rect: tuple[int, int, int, int]) -> None:
        if not self.projection.tight:
            self._measure(rect)
            self._over_budget()
        else:
            self._bound(rect)

    def _measure(self, rect: tuple[int, int, int, int]) -> None:
        """A tile the bounds settle too little: its float32 distances in all D dimensions (within 1e-3)."""
        settings, step, projection = self.settings, self.step, self.projection
        i0, i1, j0, j1 = rect
        tile = (j1 - j0, i0, j0, j0 < i1)
        step.dense += _pair_count(*rect)
        full = self.screened.exact.between(projection.order[i0:i1], projection.order[j0:j1])
        alpha, high, limit, times, metric = (
            settings.alpha,
            settings.high,
            settings.limit,
            projection.times,
            settings.metric,
        )
        m = full * np.float32((1 - alpha) / high)  # the mixed distance, at most
        m += settings.time_between(times, slice(i0, i1), slice(j0, j1), True)
        close = m <= limit
        for other in settings.alphas:
            if other != alpha:
                close |= (
                    full * np.float32((1 - other) / high)
                    + settings.time_between(times, slice(i0, i1), slice(j0, j1), True, other)
                    <= limit
                )
        a, b, found = _pairs(np.flatnonzero(close), *tile)
        dc = full.ravel()[found]
        self.near.append(_EdgeCandidates(a.astype(np.int32), b.astype(np.int32), dc, dc))
        step.count += len(a)
        top = float(full.max())  # the tile's lower triangle holds real pairs too (or a photo and itself)
        step.ceilings[i0, j0] = (bounds.to_squared(top, metric) * (1 + 4e-3), True)
        if settings.maxima and not self.settled:
            step.content_floor = max(step.content_floor, bounds.to_squared(top, metric) * (1 - 2e-3))
            at = bounds.from_squared(step.content_floor * (1 - 2 * SLACK), metric)
            a, b, found = _pairs(np.flatnonzero(full >= at), *tile)
            step.content.append((a, b, bounds.to_squared(full.ravel()[found].astype(np.float64), metric)))
        if settings.maxima and settings.time_on:
            step.mixed_floor, found_max = _mixed_by_measure(m, top, settings, tile, step.mixed_floor)
            step.mixed.append(found_max)

    def _reach(self, rect: tuple[int, int, int, int]) -> float:
        """The largest content distance an edge of this tile may have, from its smallest time distance (-1: none)."""
        settings, times = self.settings, self.projection.times
        i0, i1, j0, _ = rect
        gap = max(0.0, times[j0] - times[i1 - 1])
        reaches = [
            settings.high * room / (1 - a) if a < 1 else np.inf
            for a in settings.alphas
            if (room := settings.limit - settings.time_term(gap, a)) >= 0
        ]
        return max(reaches, default=-1.0)

    def _within(self, rect: tuple[int, int, int, int], bound: np.ndarray, margin: float, reach: float) -> np.ndarray:
        """Tile positions whose lower bound may lie within the cut: for the tile, then pair by pair."""
        settings, times = self.settings, self.projection.times
        i0, _, j0, j1 = rect
        found = np.flatnonzero(bound <= bounds.to_squared(reach, settings.metric) + margin)
        if settings.time_on and len(found) < bound.size // 2:
            a, b = np.divmod(found, j1 - j0)
            near = bounds.from_squared(np.maximum(bound.ravel()[found] - margin, 0), settings.metric) / settings.high
            keep = np.zeros(len(found), bool)
            for other in settings.alphas:
                keep |= (1 - other) * near + settings.time_between(
                    times, a + i0, b + j0, False, other
                ) <= settings.limit
            found = found[keep]
        return found

    def _maxima(self, rect, tile, lower: np.ndarray, eps: float, ceiling: float) -> list[tuple[list, tuple]]:
        """Candidates for the two maxima in a tile from its bounds, each with the step's list it goes into."""
        settings, step = self.settings, self.step
        if not settings.maxima or (self.settled and not settings.time_on):
            return []
        found: list[tuple[list, tuple]] = []
        tops = _TileMaxima(self.projection, lower, eps, rect, tile)
        # The largest content distance: any pair's lower bound is a floor for it.
        if not self.settled:
            step.content_floor = max(step.content_floor, float(tops.lower.max()) - eps)
            if ceiling >= step.content_floor * (1 - 2 * SLACK):
                found.append((step.content, _content_by_bounds(tops, step.content_floor * (1 - 2 * SLACK))))
        # The largest mixed distance, likewise.
        i0, _, _, j1 = rect
        if settings.time_on and _mixed_reach(settings, ceiling, self.projection.times, i0, j1) >= step.mixed_floor * (
            1 - SLACK
        ):
            step.mixed_floor, found_max = _mixed_by_bounds(tops, settings, step.mixed_floor)
            found.append((step.mixed, found_max))
        return found

    def _bound(self, rect: tuple[int, int, int, int]) -> None:
        """A tile by its bounds: its edge candidates settled, set aside for the true cut, or measured in full."""
        settings, step, projection = self.settings, self.step, self.projection
        i0, i1, j0, j1 = rect
        tile = (j1 - j0, i0, j0, j0 < i1)
        lower = projection.lower(i0, i1, j0, j1)
        eps = projection.margin(i0, i1, j0, j1)
        ceiling = _ceiling(projection, lower, eps, i0, i1, j0, j1)
        if settings.maxima:
            step.ceilings[i0, j0] = (ceiling, False)
        reach = self._reach(rect)
        found = self._within(rect, lower, eps, reach) if reach >= 0 else np.empty(0, np.int64)
        crowded = len(found) > DENSE * lower.size
        bound, fine = lower, False
        if crowded and settings.finer and len(found) < HOPELESS * lower.size and projection.has_fine:
            # Tighter bounds from more directions, unless these left nearly every pair.
            bound, fine = projection.lower_fine(i0, i1, j0, j1), True
            found = self._within(rect, bound, projection.margin(i0, i1, j0, j1, bounds.EPS_FINE), reach)
            step.finer += _pair_count(*rect)
            crowded = len(found) > DENSE * lower.size
        maxima = self._maxima(rect, tile, lower, eps, ceiling)
        if (crowded and not settings.maxima) or any(len(f[2]) > DENSE * lower.size for _, f in maxima):
            self._measure(rect)
            return
        if crowded:  # its edges wait for the second step, at the true cut
            step.deferred.append(rect)
        else:
            a, b, kept = _pairs(found, *tile)
            close, doubt = _settle(self.screened, settings, a, b, bound.ravel()[kept], fine)
            self.near.append(close)
            step.count += len(a)
            step.bounded += len(a)
            step.measured += doubt
        for into, found_max in maxima:
            into.append(found_max)
        self._over_budget()


@dataclass
class _EdgeCandidates:
    """Edge candidates near the cut: time-order pairs a < b (int32: 16 bytes a pair in all) with float32
    lower and upper bounds of their content distance, both the distance itself where it was measured.

    What a pass keeps of its candidates for the true cut, known only when the pass ends: at a million
    photos, tens of millions of pairs, which their int64 indices and float64 bounds made gigabytes.
    """

    a: np.ndarray
    b: np.ndarray
    lo: np.ndarray
    hi: np.ndarray

    @staticmethod
    def joined(parts: list[_EdgeCandidates]) -> _EdgeCandidates:
        if not parts:
            return _EdgeCandidates(
                np.empty(0, np.int32), np.empty(0, np.int32), np.empty(0, np.float32), np.empty(0, np.float32)
            )
        return _EdgeCandidates(*(np.concatenate([getattr(q, key) for q in parts]) for key in ("a", "b", "lo", "hi")))

    def __len__(self) -> int:
        return len(self.a)


def _settle(
    screened: Screening, settings: _Settings, a, b, bound: np.ndarray, fine: bool
) -> tuple[_EdgeCandidates, int]:
    """A tile's edge candidates, kept where they may lie within this step's cut, and how many were measured.

    ``bound``: their squared lower bounds from the tile (on the FINE directions if ``fine``). Each pair's own
    margin and upper bound come first; a pair they cannot place within the cut at every alpha whatever
    max(d_c) turns out (between ``low`` and ``high``) gets its float32 distance in full, here, on the worker
    that bounded it. A pair none of whose alphas reaches the cut is no edge at any later, smaller, cut either.
    """
    projection, metric = screened.projection, settings.metric
    r, eps = (projection.fine[:, -1], bounds.EPS_FINE) if fine else (projection.r, bounds.EPS)
    margin = eps * (projection.n[a] + projection.n[b])
    lo = bounds.from_squared(np.maximum(bound - margin, 0), metric)
    hi = bounds.from_squared(bound + 4.0 * r[a].astype(np.float64) * r[b] + margin, metric)
    times = [(1 - alpha, settings.time_between(projection.times, a, b, False, alpha)) for alpha in settings.alphas]
    keep = np.zeros(len(a), bool)
    sure = np.ones(len(a), bool)
    for share, dt in times:
        keep |= share * lo / settings.high + dt <= settings.limit
        sure &= share * hi / settings.low + dt <= settings.limit
    doubt = np.flatnonzero(keep & ~sure)
    dc = screened.exact.pairs(projection.order[a[doubt]], projection.order[b[doubt]])
    close = np.zeros(len(dc), bool)
    for share, dt in times:
        close |= share * dc / settings.high + (dt[doubt] if np.ndim(dt) else dt) <= settings.limit
    lo, hi = lo.astype(np.float32), hi.astype(np.float32)
    lo[doubt] = hi[doubt] = dc
    keep[doubt] = close
    return _EdgeCandidates(a[keep].astype(np.int32), b[keep].astype(np.int32), lo[keep], hi[keep]), len(dc)


def _ceiling(projection: bounds.Projection, lower: np.ndarray, eps: float, i0: int, i1: int, j0: int, j1: int) -> float:
    """An upper bound of every squared content distance in a tile, from its lower bounds."""
    ceiling = float(lower.max()) + eps + 4.0 * float(projection.r[i0:i1].max()) * float(projection.r[j0:j1].max())
    if projection.relu is not None:  # non-negative fingerprints: ‖x − y‖² <= ‖x‖² + ‖y‖²
        ceiling = min(ceiling, float(projection.relu[i0:i1].max() + projection.relu[j0:j1].max()) + eps)
    return ceiling


def _mixed_reach(settings: _Settings, ceiling: float, times: np.ndarray, i0: int, j1: int) -> float:
    """The largest mixed distance a tile can hold: its largest content distance with its widest time range."""
    return (1 - settings.alpha) * bounds.from_squared(ceiling, settings.metric) / settings.low + settings.time_term(
        times[j1 - 1] - times[i0]
    )


class _TileMaxima:
    """A tile's bounds by cells of ``CELL`` columns: each row's largest lower bound and residual norm there.

    An upper bound of a cell's pairs from these is a few numbers per row, so the
    search for either maximum's candidates takes only the rows that can reach
    it: the same candidates and floor as from every pair, without a pass over
    the whole tile for each of them.
    """

    def __init__(self, projection: bounds.Projection, lower: np.ndarray, eps: float, rect: tuple, tile: tuple):
        i0, i1, j0, j1 = rect
        starts = np.arange(0, j1 - j0, CELL)
        self.projection, self.lower, self.eps, self.rect, self.tile = projection, lower, eps, rect, tile
        self.r = 4.0 * projection.r[i0:i1]
        self.top = np.maximum.reduceat(lower, starts, axis=1)
        self.gap = np.multiply.outer(self.r, np.maximum.reduceat(projection.r[j0:j1], starts))  # 4 r_i r_j at most
        self.first, self.last = starts + j0, np.append(starts[1:] + j0, j1) - 1

    def upper(self, rows: np.ndarray) -> np.ndarray:
        """Squared upper bounds of these rows' pairs (margins included)."""
        _, _, j0, j1 = self.rect
        values = self.lower[rows] + np.multiply.outer(self.r[rows], self.projection.r[j0:j1])
        values += self.eps
        return values

    def pairs(self, rows: np.ndarray, hits: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Time-order pairs (a < b) at ``hits`` (a mask over these rows' columns), and the mask's kept hits."""
        k, col = np.nonzero(hits)
        a, b = rows[k] + self.rect[0], col + self.rect[2]
        keep = b > a if self.tile[3] else np.ones(len(a), bool)
        return a[keep], b[keep], keep


def _content_by_bounds(tops: _TileMaxima, at: float) -> tuple:
    """Candidates for the largest content distance in a tile: pairs whose squared upper bound reaches ``at``."""
    rows = np.flatnonzero((tops.top + tops.gap).max(axis=1) + tops.eps >= at)
    values = tops.upper(rows)
    hits = values >= at
    a, b, keep = tops.pairs(rows, hits)
    return a, b, values[hits][keep]


def _mixed_by_bounds(tops: _TileMaxima, settings: _Settings, floor: float) -> tuple[float, tuple]:
    """Candidates for the largest mixed distance in a tile from its bounds, and the floor raised by them.

    A row none of whose cells reaches the floor holds no candidate, and its
    pairs' lower bounds lie below the floor too (below their upper bounds).
    """
    projection, (i0, i1, j0, j1) = tops.projection, tops.rect
    every = np.arange(i0, i1)
    dt = np.maximum(
        settings.time_between(projection.times, every, tops.first, True),
        settings.time_between(projection.times, every, tops.last, True),
    )
    reach = bounds.from_squared(np.maximum(tops.top + tops.gap + tops.eps, 0), settings.metric) * (
        (1 - settings.alpha) / settings.low
    )
    rows = np.flatnonzero((reach + dt).max(axis=1) >= floor * (1 - SLACK))
    dt = settings.time_between(projection.times, rows + i0, slice(j0, j1), True)
    near = (
        bounds.from_squared(np.maximum(tops.lower[rows] - tops.eps, 0), settings.metric)
        * ((1 - settings.alpha) / settings.high)
        + dt
    )
    floor = max(floor, float(near.max(initial=0)))
    m = (
        bounds.from_squared(np.maximum(tops.upper(rows), 0), settings.metric) * ((1 - settings.alpha) / settings.low)
        + dt
    )
    hits = m >= floor * (1 - SLACK)
    a, b, keep = tops.pairs(rows, hits)
    return floor, (a, b, m[hits][keep])


def _mixed_by_measure(m: np.ndarray, top: float, settings: _Settings, tile: tuple, floor: float) -> tuple[float, tuple]:
    """The same from a tile's float32 mixed distances ``m`` (``top``: its largest content distance)."""
    floor = max(floor, float(m.max()) * (1 - 1e-3))
    widen = (
        top * (1 + 1e-3) * (1 - settings.alpha) * (1 / settings.low - 1 / settings.high)
    )  # from dividing by high to by low
    a, b, found = _pairs(np.flatnonzero(m >= floor * (1 - SLACK) - widen), *tile)
    return floor, (a, b, m.ravel()[found] + widen)


def _scan_maxima(screened: Screening, settings: _Settings, ceilings: dict) -> _Step:
    """Only the candidates for the largest mixed distance, at an alpha whose edge candidates are kept.

    A tile whose kept ceiling cannot reach the floor costs nothing; only the
    few that can (far apart in content and in time) are bounded or measured again.
    """
    projection = screened.projection
    floor, found = settings.mixed_floor, []
    tiles = list(projection.tiles())
    reach = [_mixed_reach(settings, ceilings[t[0], t[2]][0], projection.times, t[0], t[3]) for t in tiles]
    for k in np.argsort(reach)[::-1]:  # the most promising first: the floor rises soonest
        i0, i1, j0, j1 = tiles[k]
        ceiling, measured = ceilings[i0, j0]
        if reach[k] < floor * (1 - SLACK):
            break
        tile = (j1 - j0, i0, j0, j0 < i1)
        if measured:
            full = screened.exact.between(projection.order[i0:i1], projection.order[j0:j1])
            m = full * np.float32((1 - settings.alpha) / settings.high) + settings.time_between(
                projection.times, slice(i0, i1), slice(j0, j1), True
            )
            floor, hits = _mixed_by_measure(m, float(full.max()), settings, tile, floor)
        else:
            lower, eps = projection.lower(i0, i1, j0, j1), projection.margin(i0, i1, j0, j1)
            floor, hits = _mixed_by_bounds(_TileMaxima(projection, lower, eps, (i0, i1, j0, j1), tile), settings, floor)
        found.append(hits)
    return _Step(_EdgeCandidates.joined([]), 0.0, floor, mixed=found)


class _Scan:
    """A whole pass of the screen, its parts' results merged: edges and both maxima's candidates."""

    def __init__(self, screened: Screening, settings: _Settings, parts: list[_Step]):
        self.projection = screened.projection
        self.screened, self.metric = screened, settings.metric
        content_floor = max(part.content_floor for part in parts)
        self._near, self.ceilings, self.deferred, self._counts = _EdgeCandidates.joined([]), {}, [], {}
        # Keep the candidates that reach the final floors, then again with the pairs' own tightest bounds.
        content = [
            (a[u >= content_floor * (1 - 2 * SLACK)], b[u >= content_floor * (1 - 2 * SLACK)])
            for part in parts
            for a, b, u in part.content
        ]
        if content:
            a, b = np.concatenate([a for a, _ in content]), np.concatenate([b for _, b in content])
            near, far = self._bounds(a, b)
            keep = far >= max(content_floor, float(near.max(initial=0))) * (1 - 2 * SLACK)
            content = [(a[keep], b[keep])]
        self._content = content
        self._keep_mixed(settings, parts)
        self.add(parts)

    def add(self, parts: list[_Step]) -> None:
        """Merge the edges of a step's parts: the first's, then the second's for the tiles the first set aside."""
        n = self.projection.size
        self._near = _EdgeCandidates.joined([self._near, *(part.near for part in parts)])
        for part in parts:
            self.ceilings |= part.ceilings
            self.deferred += part.deferred
            for key in ("count", "dense", "finer", "bounded", "measured"):
                self._counts[key] = self._counts.get(key, 0) + getattr(part, key)
        if self._counts["count"] > MAX_EDGES_SHARE * n * (n - 1) / 2:
            raise TooConnected
        self.screened.stats = {
            "pairs": n * (n - 1) // 2,
            "pairs in tiles set aside for the true cut": sum(_pair_count(*t) for t in self.deferred),
            "pairs in tiles bounded again with more directions": self._counts["finer"],
            "pairs in tiles measured in full": self._counts["dense"],
            "edge candidates": self._counts["bounded"],
            "edge candidates kept for the true cut": len(self._near),
            "maximum candidates": sum(len(a) for a, _ in self._content),
            "mixed maximum candidates": sum(len(a) for a, _ in self._mixed),
        }

    def _keep_mixed(self, settings: _Settings, parts: list[_Step]) -> None:
        """The candidates for the largest mixed distance that reach the final floor, by their tightest bounds."""
        floor = max(part.mixed_floor for part in parts)
        mixed = [(a[m >= floor * (1 - SLACK)], b[m >= floor * (1 - SLACK)]) for part in parts for a, b, m in part.mixed]
        if mixed:
            a, b = np.concatenate([a for a, _ in mixed]), np.concatenate([b for _, b in mixed])
            near, far = self._bounds(a, b)
            dt = settings.time_between(self.projection.times, a, b, False)
            near_mixed = (1 - settings.alpha) * bounds.from_squared(near, settings.metric) / settings.high + dt
            floor = max(floor, float(near_mixed.max(initial=0)))
            keep = (1 - settings.alpha) * bounds.from_squared(far, settings.metric) / settings.low + dt >= floor * (
                1 - SLACK
            )
            mixed = [(a[keep], b[keep])]
        self._mixed = mixed

    def at(self, settings: _Settings, maxima: _Step) -> _Scan:
        """This pass's edge candidates with the candidates for the largest mixed distance at another alpha."""
        scan = copy.copy(self)
        scan._keep_mixed(settings, [maxima])
        return scan

    def _bounds(self, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Squared lower and upper bounds of pairs (a, b) in time order, the tightest at hand, margins included."""
        projection = self.projection
        if projection.fine_projected is not None:  # tighter, where a tile has needed them (else not worth projecting)
            return projection.fine_bounds(a, b)
        squared = projection.lower_pairs(a, b)
        eps = bounds.EPS * (projection.n[a] + projection.n[b])
        return np.maximum(squared - eps, 0), squared + projection.upper_gap(a, b) + eps

    def _photos(self, found: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
        found = [f for f in found if len(f[0])]
        if not found:
            return np.empty(0, np.int64), np.empty(0, np.int64)
        order = self.projection.order
        return order[np.concatenate([a for a, _ in found])], order[np.concatenate([b for _, b in found])]

    def content_pairs(self) -> tuple[np.ndarray, np.ndarray]:
        """Photo pairs that may be the farthest apart in content (the estimate's own pair among them)."""
        i, j = self._photos(self._content)
        _, a, b = self.screened.estimate
        return np.append(i, a), np.append(j, b)

    def mixed_pairs(self) -> tuple[np.ndarray, np.ndarray]:
        """Photo pairs that may be the farthest apart in mixed distance."""
        i, j = self._photos(self._mixed)
        return (i, j) if len(i) else self.content_pairs()

    def edges(self, mixed, limit: float) -> tuple[np.ndarray, np.ndarray]:
        """Photo pairs within ``limit`` of mixed distance, or too close to it for float32 to tell.

        The pass kept each candidate with bounds of its content distance (the distance itself where it
        was measured): the lower bound decides first, the upper bound makes it an edge, and the few that
        the true cut leaves in doubt get their float32 distance in full. A chunk at a time, so the photo
        indices and float64 values of every candidate at once are never made.
        """
        order, near, measured = self.projection.order, self._near, self._counts["measured"]
        found_i, found_j, sure_count = [np.empty(0, np.int64)], [np.empty(0, np.int64)], 0
        for s in range(0, len(near), SETTLE):
            i, j = order[near.a[s : s + SETTLE]], order[near.b[s : s + SETTLE]]
            lo = near.lo[s : s + SETTLE]
            keep = mixed(lo.astype(np.float64), i, j) <= limit
            i, j, lo, hi = i[keep], j[keep], lo[keep], near.hi[s : s + SETTLE][keep]
            sure = mixed(hi.astype(np.float64), i, j) <= limit
            doubt = ~sure
            dc = self.screened.exact.pairs(i[doubt], j[doubt]).astype(np.float64)
            close = mixed(dc, i[doubt], j[doubt]) <= limit
            found_i += [i[sure], i[doubt][close]]
            found_j += [j[sure], j[doubt][close]]
            sure_count += int(np.count_nonzero(lo[sure] != hi[sure]))  # not measured
            measured += len(dc)
        found_i, found_j = np.concatenate(found_i), np.concatenate(found_j)
        self.screened.stats |= {
            "settled by the upper bound": sure_count,
            "measured in doubt": measured,
            "edges": len(found_i),
        }
        return found_i, found_j


_IN_PROCESS: dict[int, Screening] = {}  # screenings shared with Dask workers that are threads of this process
_TOKENS = itertools.count()


@dataclass(frozen=True)
class _InProcess:
    """A screening shared with workers in this process: what each task gets is its name, not its gigabytes."""

    token: int


@contextmanager
def _shared(client, screened: Screening) -> Iterator[object]:
    """The screening as one pass's tasks get it: itself without Dask; scattered once to workers elsewhere;
    and for workers that are threads of this process (a local cluster's, whose addresses are inproc://),
    a name for this process's one copy, which ``scatter`` would copy for each of them."""
    if client is None:
        yield screened
        return
    workers = client.scheduler_info().get("workers", {})
    if not workers or not all(address.startswith("inproc://") for address in workers):
        yield client.scatter(screened, broadcast=True)
        return
    token = next(_TOKENS)
    _IN_PROCESS[token] = screened
    try:
        yield _InProcess(token)
    finally:
        del _IN_PROCESS[token]


def _scan_shared(shared: Screening | _InProcess, settings: _Settings, tiles: list[tuple]) -> _Step:
    """:func:`_scan_tiles` as a Dask task runs it, on the screening it was scattered or named."""
    return _scan_tiles(_IN_PROCESS[shared.token] if isinstance(shared, _InProcess) else shared, settings, tiles)


def _scan_parts(screened: Screening, shared, settings: _Settings, client, tiles: list | None = None) -> list[_Step]:
    """A step of the pass over these tiles (default: all), here, or shared among a Dask cluster's workers
    (``shared`` is then what :func:`_shared` gave: the screening goes to them once, not with every task). Early
    row blocks hold more pairs (each block's photos against all later ones), so each task takes every
    k-th block, or every k-th tile set aside."""
    if client is None:
        return [_scan_tiles(screened, settings, tiles)]
    projection = screened.projection
    workers = max(1, len(client.scheduler_info().get("workers", {})))
    if tiles is None:
        blocks = projection.row_blocks()
        tasks = min(len(blocks), 4 * workers)
        chunks = [list(projection.tiles(blocks[k::tasks])) for k in range(tasks)]
    else:
        tasks = min(len(tiles), 4 * workers)
        chunks = [tiles[k::tasks] for k in range(tasks)]
    futures = client.map(_scan_shared, [shared] * len(chunks), [settings] * len(chunks), chunks, pure=False)
    try:
        return client.gather(futures)
    except TooConnected:
        client.cancel(futures)
        raise


def _pair_count(i0: int, i1: int, j0: int, j1: int) -> int:
    """How many pairs i < j a tile holds."""
    rows = np.arange(i0, i1)
    return int(np.clip(j1 - np.maximum(j0, rows + 1), 0, None).sum())


def _pairs(found: np.ndarray, width: int, i0: int, j0: int, diagonal: bool) -> tuple[np.ndarray, ...]:
    """Flat positions in a tile as time-order indices (a, b) of pairs a < b, and the positions kept."""
    a, b = np.divmod(found, width)
    a += i0
    b += j0
    if diagonal:
        keep = b > a
        a, b, found = a[keep], b[keep], found[keep]
    return a, b, found


def combine(vectors, t64, labels, method, metric, time_metric, mix, d_max, constraints=None) -> np.ndarray:
    """Exact linkage inside each component, joined into one tree at height d_max (for either distance:
    ``mix(content distances, time distances)`` computes it in the content's memory, :func:`_time` the latter).

    Inside a component, clusters that verdicts keep apart join above every cut; the
    components then join at d_max, which only a cut at sim 0 reaches (never this tree's).
    Inside :func:`on_dask`, components of ``ON_WORKERS`` photos or more are clustered on
    the workers, each sent its photos' fingerprints, while the rest are clustered here.
    """
    constrained = constraints.by_component(labels) if constraints else {}
    n = len(vectors)
    order = np.argsort(labels, kind="stable")
    groups = [np.sort(members) for members in np.split(order, np.flatnonzero(np.diff(labels[order])) + 1)]
    client = _DASK.get()
    remote = {
        k: client.submit(
            _linkage, vectors[members], t64[members], method, metric, time_metric, mix, threads=1, pure=False
        )
        for k, members in enumerate(groups)
        if client is not None and len(members) >= ON_WORKERS and int(labels[members[0]]) not in constrained
    }
    blocks: list[np.ndarray] = []
    roots: list[tuple[int, int]] = []  # (cluster id, size)
    next_id = n
    batch: list[np.ndarray] = []  # small components waiting for one linkage call

    def add(members: np.ndarray, z: np.ndarray) -> None:
        """A component's (or a batch's) linkage, its rows renumbered as rows of the whole tree."""
        nonlocal next_id
        m = len(members)
        ids = np.concatenate([members, np.arange(next_id, next_id + m - 1)])
        block = np.array(z, dtype=np.float64)
        block[:, :2] = ids[z[:, :2].astype(np.int64)]
        blocks.append(block)
        next_id += m - 1
        roots.append((next_id - 1, m))

    pool = ThreadPoolExecutor(pairwise.cores())  # small components on every core: pdist lets go of the lock
    linkages: list[tuple[np.ndarray, object]] = []  # (members, linkage or its future), in order
    try:
        for k, members in enumerate(groups):
            m = len(members)
            if m == 1:
                roots.append((int(members[0]), 1))
                continue
            label = int(labels[members[0]])
            inside = constrained[label].within(members) if label in constrained else None
            if k in remote:
                linkages.append((members, remote.pop(k)))
            elif inside:
                with matrices(m, 1):
                    d = _mixed(mix, pairwise.distances(vectors[members], metric), t64[members], time_metric)
                    linkages.append((members, constrained_linkage(d, method, inside, above(d_max))))
            elif 2 < m <= BATCHED:
                batch.append(members)
                if sum(map(len, batch)) >= BATCH:
                    args = (vectors, t64, batch, method, metric, time_metric, mix, d_max)
                    linkages.append((np.concatenate(batch), pool.submit(_batch_linkage, *args)))
                    batch = []
            elif m * (m - 1) // 2 < pairwise.MIN_PAIRS:  # one core's work: alongside the others
                args = (vectors[members], t64[members], method, metric, time_metric, mix, 1)
                linkages.append((members, pool.submit(_linkage, *args)))
            else:
                linkages.append((members, _linkage(vectors[members], t64[members], method, metric, time_metric, mix)))
        if batch:
            args = (vectors, t64, batch, method, metric, time_metric, mix, d_max)
            linkages.append((np.concatenate(batch), pool.submit(_batch_linkage, *args)))
        for members, z in linkages:
            add(members, z.result() if hasattr(z, "result") else z)
    finally:
        pool.shutdown(cancel_futures=True)
    # Join the components above every merge that matters.
    rows: list[list[float]] = []
    current, current_size = roots[0]
    for root, size in roots[1:]:
        current_size += size
        rows.append([current, root, d_max, current_size])
        current = next_id
        next_id += 1
    return np.concatenate([*blocks, np.array(rows, dtype=np.float64).reshape(-1, 4)])


def _batch_linkage(vectors, t64, groups: list[np.ndarray], method, metric, time_metric, mix, d_max) -> np.ndarray:
    """Small components' linkages in one call, which costs less than a call for each.

    Pairs across components are set to ``FAR``, far above every merge. A
    reducible method's merge inside a component uses only the distances
    inside it, so the merges inside are that component's own linkage's;
    the merges across come last, and are put at d_max, where components join.
    """
    m = sum(map(len, groups))
    d = np.full(m * (m - 1) // 2, FAR)
    start = 0
    for members in groups:
        i, j = _upper(len(members))
        i, j = i + start, j + start
        at = m * i - i * (i + 1) // 2 + j - i - 1  # the pair's place in the condensed matrix
        d[at] = mix(distance.pdist(vectors[members], metric), _time_pdist(t64[members], time_metric))
        start += len(members)
    z = hierarchy.linkage(d, method=method)
    z[z[:, 2] >= FAR / 2, 2] = d_max
    return z


def _linkage(
    vectors: np.ndarray, times: np.ndarray, method: str, metric: str, time_metric: str, mix, threads: int | None = None
) -> np.ndarray:
    """One component's linkage, as the reference computes it: here on every core, or on one of a Dask worker's
    threads (``threads=1``: the worker runs as many tasks as it has cores)."""
    with matrices(len(vectors), 1):  # mixed in the content's memory
        d = _mixed(mix, pairwise.distances(vectors, metric, threads), times, time_metric)
        if len(vectors) == 2 and np.isfinite(d[0]):  # what linkage gives two photos, by every method
            return np.array([[0.0, 1.0, d[0], 2.0]])
        return hierarchy.linkage(d, method=method)
