"""Distances on absolute scales: what a pair of photos is, whatever else the library holds.

``d = (1 - alpha) * d_c / scale + alpha * min(|Δt| / tau, 1)``, cut at ``1 - sim``; :mod:`.nearby` finds
the pairs within that cut for large libraries.
In depth: docs/engine.md, "Distances on absolute scales".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import pairwise

SAMPLE = 1000  # photos whose pairs give the content scale: 499,500 pairs, a median to a fraction of a percent
TOP = 2.0  # where a tree's components join: above every cut (cuts lie in [0, 1])


def sample_rows(ids: np.ndarray, size: int = SAMPLE) -> np.ndarray:
    """Positions of up to ``size`` photos chosen by a hash of their ids: spread over the whole library (not the
    first import's folder), and the same photos whatever order they were read in."""
    keys = (np.asarray(ids, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(11)
    return np.sort(np.argsort(keys, kind="stable")[:size])


def content_scale(vectors: np.ndarray, metric: str) -> float:
    """The median content distance over every pair of ``vectors`` (a sample of the set); 1.0 where it is 0
    (fewer than two photos, or all the same), so distances stay defined."""
    if len(vectors) < 2:
        return 1.0
    if metric in ("euclidean", "sqeuclidean"):  # from the Gram matrix: one product, not a pass per pair
        x = np.asarray(vectors, dtype=np.float64)
        norms = np.einsum("ij,ij->i", x, x)
        i, j = np.triu_indices(len(x), 1)
        d = np.maximum(norms[i] + norms[j] - 2 * (x @ x.T)[i, j], 0)
        d = np.sqrt(d) if metric == "euclidean" else d
    else:
        d = pairwise.pdist(np.asarray(vectors), metric)
    d = d[np.isfinite(d)]
    median = float(np.median(d)) if d.size else 0.0
    return median if median > 0 else 1.0


def clock(timestamps: np.ndarray, timed: np.ndarray | None) -> np.ndarray:
    """Capture times as the distance uses them: NaN where a photo has no capture time (content alone)."""
    t = np.asarray(timestamps, dtype=np.float64)
    return t if timed is None else np.where(timed, t, np.nan)


def order_times(timestamps: np.ndarray, timed: np.ndarray | None) -> np.ndarray:
    """Times that put the photos without a capture time after every other, in their files' order: the screen's
    tiles of photos with times then never hold one without (whose pairs it judges by content alone)."""
    t = np.asarray(timestamps, dtype=np.float64)
    if timed is None or timed.all():
        return t
    end = (t[timed].max() if timed.any() else 0.0) + 1.0
    untimed = np.flatnonzero(~timed)
    out = t.copy()
    out[untimed[np.argsort(t[untimed], kind="stable")]] = end + np.arange(len(untimed))
    return out


@dataclass(frozen=True)
class Mix:
    """d from content and time distances, the same operations wherever it is computed (full matrix or
    components), so the two give the same values bit for bit."""

    alpha: float
    scale: float
    tau: float

    def __call__(self, dc: np.ndarray, dt: np.ndarray) -> np.ndarray:
        """``dc``: content distances; ``dt``: |Δt| (NaN where a photo has no capture time). Both float64, and
        both consumed: the result is computed in ``dc``'s memory (a full matrix is gigabytes), with the
        values of ``dc / scale * (1 - alpha) + minimum(dt / tau, 1) * alpha``."""
        d = dc
        d /= self.scale
        if self.alpha == 0:
            return d
        untimed = np.isnan(dt)
        alone = d[untimed] if untimed.any() else None  # content alone, for pairs without a time
        d *= 1 - self.alpha
        dt /= self.tau
        np.minimum(dt, 1.0, out=dt)
        dt *= self.alpha
        d += dt
        if alone is not None:
            d[untimed] = alone
        return d

    def terms(self, dc: np.ndarray, dt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """d's content and time terms apart (their sum is d), for weighing one against the other
        (:mod:`.cohesion`); ``dc`` and ``dt`` as for the call, left as they are."""
        alone = dc / self.scale  # a pair without a capture time: content alone
        timed = np.isfinite(dt)
        time = np.where(timed, np.minimum(np.nan_to_num(dt) / self.tau, 1.0) * self.alpha, 0.0)
        return np.where(timed, alone * (1 - self.alpha), alone), time


def distances(vectors: np.ndarray, times: np.ndarray, mix: Mix, metric: str) -> np.ndarray:
    """The condensed matrix of the absolute distance; ``times`` from :func:`clock`."""
    content = pairwise.distances(vectors, metric)
    return pairwise.mixed_by_rows(mix, content, times, lambda t, later: np.abs(later - t))
