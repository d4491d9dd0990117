"""Which pairs of photos can matter, found with k of the fingerprints' dimensions instead of all.

Lower and upper bounds of every pair's distance from a projection onto k principal directions and the
norm of the rest, in capture-time order, tile by tile.
In depth: docs/engine.md, "Bounds from a projection".
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

K = 128  # principal directions: 81 % of real fingerprints' variance (docs/benchmarks.md)
FINE = 512  # directions of the tighter bounds, for tiles where K's leave too many candidates
SAMPLE = 2048  # photos the directions are fitted on
ROWS, COLS = 1024, 8192  # a tile: 32 MB of float32; large enough for BLAS to run at full speed
EPS = 2.0**-14
EPS_FINE = 2.0**-12  # float32 products of FINE + 1 terms, and 2^-14 for n's own rounding
BOUNDS_FROM = 10_000  # below, measuring every pair costs less than fitting the FINE directions
PROBE = 512  # photos whose pairs tell whether the bounds can prune
TIGHT = 0.6  # below this median ratio of lower bound to distance, they cannot (random fingerprints: ~0.2)
_FINE = threading.Lock()  # Dask's workers that are threads of one process project its FINE directions once


@dataclass
class Projection:
    """The photos in capture-time order, with what the bounds need; independent of alpha and sim."""

    order: np.ndarray  # position in time order -> photo index
    times: np.ndarray  # float64 capture times, in time order
    left: np.ndarray  # [z, r, n, 1], float32
    right: np.ndarray  # [-2z, -2r, 1, n], float32: left[i] @ right[j] = the lower bound², squared
    r: np.ndarray  # residual norms, float32
    n: np.ndarray  # ‖x − μ‖², float64
    relu: np.ndarray | None  # ‖x‖² where every fingerprint is non-negative, else None
    source: np.ndarray  # the fingerprints (float32, photo order; not a copy): for the FINE directions
    mean: np.ndarray
    wide: int  # FINE, or 0 where K has every dimension or the bounds are loose: no finer bounds
    seed: int = 0
    tight: bool = True  # False: the bounds are too loose to prune (a flat spectrum); measure every tile in full
    rows: int = ROWS  # the tile size when projected (Dask workers tile as the client does)
    cols: int = COLS
    fine_projected: np.ndarray | None = field(default=None, repr=False)  # [z, r] on the FINE directions

    @property
    def has_fine(self) -> bool:
        return self.wide > 0

    @property
    def fine(self) -> np.ndarray:
        """[z, r] on FINE directions, float32, projected when a tile first needs them.

        Many builds never do (where K's bounds settle every tile), and fitting
        and projecting on 512 directions is most of the projection's cost.
        """
        with _FINE:  # once, where Dask's workers are threads sharing this projection
            if self.fine_projected is None:
                directions = _directions(self.source, self.mean, self.wide, self.seed)
                z = np.empty((self.size, self.wide), np.float32)
                for s in range(0, self.size, 1024):
                    z[s : s + 1024] = (self.source[s : s + 1024] - self.mean) @ directions
                z = z[self.order]
                self.fine_projected = np.hstack([z, _residual(z, self.n)[:, None]])
        return self.fine_projected

    @property
    def size(self) -> int:
        return len(self.order)

    def row_blocks(self) -> list[int]:
        """Where each block of ROWS photos (time order) starts."""
        return list(range(0, self.size - 1, self.rows))

    def tiles(self, blocks: list[int] | None = None) -> Iterator[tuple[int, int, int, int]]:
        """(i0, i1, j0, j1) covering every pair i < j of these row blocks (default all) once, tile by tile."""
        n = self.size
        for i0 in self.row_blocks() if blocks is None else blocks:
            i1 = min(n, i0 + self.rows)
            for j0 in range(i0, n, self.cols):
                yield i0, i1, j0, min(n, j0 + self.cols)

    def lower(self, i0: int, i1: int, j0: int, j1: int) -> np.ndarray:
        """Squared lower bounds of the distances of photos i0..i1 to j0..j1 (time order)."""
        return self.left[i0:i1] @ self.right[j0:j1].T

    def lower_pairs(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Squared lower bounds (no margin) of pairs (a[p], b[p]) in time order, float64; the rows are gathered
        a chunk at a time, not for millions of pairs at once."""
        out = np.empty(len(a))
        for s in range(0, len(a), 16384):
            out[s : s + 16384] = np.einsum(
                "ij,ij->i", self.left[a[s : s + 16384]], self.right[b[s : s + 16384]], dtype=np.float64
            )
        return out

    def lower_fine(self, i0: int, i1: int, j0: int, j1: int) -> np.ndarray:
        """Tighter squared lower bounds of the same tile, from FINE directions."""
        d = self.fine[i0:i1] @ self.fine[j0:j1].T
        d *= -2
        d += self.n32[i0:i1, None]
        d += self.n32[None, j0:j1]
        return d

    def fine_bounds(self, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Squared lower and upper bounds of pairs (a, b) (time order) from the FINE directions, margins included."""
        lower, upper = np.empty(len(a)), np.empty(len(a))
        for s in range(0, len(a), 1024):
            u, v = np.take(self.fine, a[s : s + 1024], axis=0), np.take(self.fine, b[s : s + 1024], axis=0)
            d = u[:, :-1] - v[:, :-1]
            near = np.einsum("ij,ij->i", d, d, dtype=np.float64)
            ru, rv = u[:, -1].astype(np.float64), v[:, -1].astype(np.float64)
            eps = EPS_FINE * (self.n[a[s : s + 1024]] + self.n[b[s : s + 1024]])
            lower[s : s + 1024] = np.maximum(near + (ru - rv) ** 2 - eps, 0)
            upper[s : s + 1024] = near + (ru + rv) ** 2 + eps
        return lower, upper

    def margin(self, i0: int, i1: int, j0: int, j1: int, eps: float = EPS) -> float:
        """How far float32 rounding may move any squared bound in this tile."""
        return eps * float(self.n[i0:i1].max() + self.n[j0:j1].max())

    @property
    def n32(self) -> np.ndarray:
        return self.left[:, -2]

    def upper_gap(self, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        """Upper bound² minus lower bound², pair by pair: 4 r_i r_j."""
        return 4.0 * self.r[i].astype(np.float64) * self.r[j]


def project(
    vectors: np.ndarray,
    timestamps: np.ndarray,
    norms: np.ndarray,
    k: int | None = None,
    seed: int = 0,
    bounds_from: int | None = None,
) -> Projection:
    """The projection of ``vectors`` (float32, already normalised for cosine) onto k principal directions.

    ``norms``: their squared norms in float64 (:class:`Exact` has them). Below ``bounds_from`` photos
    (default :data:`BOUNDS_FROM`) the bounds are not used (``tight`` false).
    """
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    n_photos, dims = x.shape
    order = np.argsort(np.asarray(timestamps, dtype=np.float64), kind="stable")
    mean = x.mean(axis=0, dtype=np.float64).astype(np.float32)
    k = max(1, min(k or K, dims, n_photos))
    directions = _directions(x, mean, k, seed)  # dims x k, orthonormal
    tight = (
        n_photos >= (BOUNDS_FROM if bounds_from is None else bounds_from)
        and _tightness(x, mean, directions, seed) >= TIGHT
    )
    wide = min(FINE, dims, n_photos) if tight and k < min(FINE, dims, n_photos) else 0
    n = np.empty(n_photos)
    non_negative = True
    z = np.empty((n_photos, k), np.float32)
    for s in range(0, n_photos, 1024):  # one pass, in cache-sized blocks; the fingerprints are not copied
        rows = x[s : s + 1024]
        non_negative = non_negative and bool(rows.min() >= 0)
        rows = rows - mean
        z[s : s + 1024] = rows @ directions
        n[s : s + 1024] = np.einsum("ij,ij->i", rows, rows, dtype=np.float64)
    z, n, relu = z[order], n[order], norms[order]  # in time order
    left, right, r = _augmented(z, n)
    times = np.asarray(timestamps, np.float64)[order]
    relu = relu if non_negative else None
    return Projection(order, times, left, right, r, n, relu, x, mean, wide, seed, tight, ROWS, COLS)


def _tightness(x: np.ndarray, mean: np.ndarray, directions: np.ndarray, seed: int) -> float:
    """The median ratio of lower bound to distance over pairs of a sample of photos."""
    rng = np.random.default_rng(seed + 1)
    c = x[np.sort(rng.choice(len(x), min(len(x), PROBE), replace=False))] - mean
    n = np.einsum("ij,ij->i", c, c, dtype=np.float64)
    z = c @ directions
    zr = np.hstack([z, _residual(z, n)[:, None]]).astype(np.float64)
    lower = n[:, None] + n[None, :] - 2 * (zr @ zr.T)
    true = n[:, None] + n[None, :] - 2 * (c.astype(np.float64) @ c.T.astype(np.float64))
    i, j = np.triu_indices(len(c), 1)
    far = true[i, j] > 0
    return float(np.median(np.sqrt(np.maximum(lower[i, j][far], 0) / true[i, j][far]))) if far.any() else 1.0


def _residual(z: np.ndarray, n: np.ndarray) -> np.ndarray:
    """r = ‖x − μ − Pᵀz‖ from r² = ‖x − μ‖² − ‖z‖², in float64: its rounding (~1e-7 of n) is far inside EPS."""
    return np.sqrt(np.maximum(n - np.einsum("ij,ij->i", z, z, dtype=np.float64), 0)).astype(np.float32)


def _augmented(z: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """[z, r, n, 1] and [-2z, -2r, 1, n]: one product of the two is the squared lower bound."""
    r = _residual(z, n)
    ones = np.ones((len(z), 1), np.float32)
    n32 = n.astype(np.float32)[:, None]
    return np.hstack([z, r[:, None], n32, ones]), np.hstack([-2 * z, -2 * r[:, None], ones, n32]), r


def _directions(x: np.ndarray, mean: np.ndarray, k: int, seed: int) -> np.ndarray:
    """k orthonormal principal directions of a sample (randomised SVD, one power iteration), dims x k float32.

    Any orthonormal directions keep the bounds true; these make them tight.
    Where the sample spans fewer than k directions, the rest are zero columns:
    a projection onto fewer directions, so the bounds stay true.
    """
    rng = np.random.default_rng(seed)
    n, dims = x.shape
    sample = x[np.sort(rng.choice(n, min(n, SAMPLE), replace=False))]
    sample -= mean
    if k >= min(sample.shape):
        sample = sample.astype(np.float64)
        _, _, vt = np.linalg.svd(sample, full_matrices=False)
        basis = vt[:k].T
        if basis.shape[1] < k:  # fewer photos than k: complete with any orthonormal directions
            extra = np.linalg.qr(np.hstack([basis, rng.standard_normal((dims, k - basis.shape[1]))]))[0]
            basis = extra[:, :k]
        return np.ascontiguousarray(basis, dtype=np.float32)
    q = _span(sample @ rng.standard_normal((dims, min(dims, k + 16)), dtype=np.float32)).astype(np.float32)
    q = _span(sample @ (sample.T @ q)).astype(np.float32)
    basis = _span((q.T @ sample).T, k)  # the sample's principal directions within q's span
    return np.ascontiguousarray(np.hstack([basis, np.zeros((dims, k - basis.shape[1]))]), dtype=np.float32)


def _span(y: np.ndarray, top: int | None = None) -> np.ndarray:
    """Orthonormal columns (float64) spanning ``y``'s, the most of y first (its left singular vectors), at most ``top``.

    From the eigenvectors of the small Gram matrix yᵀy, then one Cholesky
    step that makes them orthonormal to float64's rounding. Directions that
    carry under 1e-10 of the largest's share are left out: they span nothing
    the sample has. numpy's QR and SVD of a tall matrix would give the same,
    but make hundreds of small multithreaded BLAS calls that stall whenever a
    neighbour holds one of the cores (0.2–1 s of this fit on a busy 2-core
    machine); this is a few products and a decomposition of a few hundred rows.
    """
    y = y.astype(np.float64)
    values, vectors = np.linalg.eigh(y.T @ y)  # ascending
    floor = values[-1] * 1e-10 if len(values) and values[-1] > 0 else np.inf  # one photo over and over: nothing
    keep = np.flatnonzero(values > floor)[::-1][:top]
    u = y @ (vectors[:, keep] / np.sqrt(values[keep]))
    return np.linalg.solve(np.linalg.cholesky(u.T @ u), u.T).T if len(keep) else u


class Exact:
    """float32 distances in all D dimensions, with BLAS: for the few pairs the bounds cannot settle."""

    def __init__(self, vectors: np.ndarray, metric: str):
        x = np.ascontiguousarray(vectors, dtype=np.float32)
        if metric == "cosine":
            x = unit(x)
        self.x, self.metric, self.n = x, metric, len(x)
        self.norms = np.einsum("ij,ij->i", x, x, dtype=np.float64)  # ‖x‖², float64: the projection's too
        self.sq = self.norms.astype(np.float32)

    def between(self, rows: np.ndarray | slice, cols: np.ndarray | slice) -> np.ndarray:
        d = self.x[rows] @ self.x[cols].T
        d *= -2
        d += self.sq[rows, None]
        d += self.sq[None, cols]
        np.maximum(d, 0, out=d)
        return from_squared(d, self.metric)

    def pairs(self, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        """The distance of each pair (i[p], j[p]); in small chunks, which keeps the gathered rows in cache."""
        out = np.empty(len(i), np.float32)
        for s in range(0, len(i), 256):
            a = np.take(self.x, i[s : s + 256], axis=0)
            a -= np.take(self.x, j[s : s + 256], axis=0)
            out[s : s + 256] = from_squared(np.einsum("ij,ij->i", a, a), self.metric)
        return out


def far_pairs(p: Projection, exact: Exact, extremes: int = 256, spans: int = 64) -> tuple[np.ndarray, ...]:
    """Pairs far apart, found before any pass: (i, j, float32 distance) for each photo of the ``extremes``
    farthest from the centre with its farthest photo in each of ``spans`` spans of capture time (as many
    photos each).

    The largest is nearly always the largest distance of all (the diameter's ends lie among the extremes in
    practice), and for any alpha one of them nearly always has the largest mixed distance, far in content and
    in time: lower bounds of both maxima that a pass starts from. Each pair's distance is a lower bound of
    them however the pair was chosen, so where the bounds are tight, the farthest photo is the one whose lower
    bound is largest: K + 3 values a pair, not D, and only the chosen pairs are measured.
    """
    n = p.size
    k = min(extremes, n)
    ends = np.argpartition(p.n, n - k)[n - k :]  # time-order positions; p.n is ‖x − μ‖²
    starts = np.unique(np.linspace(0, n, min(spans, n) + 1).astype(np.int64)[:-1])
    found_i, found_j = [], []
    rows = max(16, min(k, 2**25 // n))  # rows of bounds or distances to all at a time: 128 MB at most
    for s in range(0, k, rows):
        chosen = ends[s : s + rows]
        far = p.left[chosen] @ p.right.T if p.tight else exact.between(p.order[chosen], slice(None))[:, p.order]
        for a, b in zip(starts, [*starts[1:], n]):
            found_i.append(chosen)
            found_j.append(a + np.argmax(far[:, a:b], axis=1))
    i, j = p.order[np.concatenate(found_i)], p.order[np.concatenate(found_j)]
    return i, j, exact.pairs(i, j)


def unit(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (cosine distance is half their squared euclidean distance)."""
    norms = np.linalg.norm(x.astype(np.float64), axis=1)
    norms[norms == 0] = 1.0  # pdist says NaN for these; components.build refuses them first
    return (x / norms[:, None].astype(np.float32)).astype(np.float32)


def from_squared(d2, metric: str):
    """A metric's distance from the squared euclidean distance (of unit vectors for cosine)."""
    if metric == "euclidean":
        return np.sqrt(d2)
    if metric == "cosine":
        return d2 * 0.5
    return d2


def to_squared(d, metric: str):
    """The inverse of :func:`from_squared`."""
    if metric == "euclidean":
        return d * d
    if metric == "cosine":
        return d * 2.0
    return d
