"""Hierarchical clustering of fingerprints and capture times: imagecluster's method, and the product's distance.

imagecluster's distance (``distance="imagecluster"``) exactly as imagecluster computes it, and the absolute one;
:func:`build_tree` is the cacheable, slow step, :func:`cut_tree` the cheap one. Numpy and scipy only.
In depth: docs/engine.md, "The method".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy.cluster import hierarchy
from scipy.spatial import distance

from ..errors import ClusterError  # noqa: F401 (re-exported: the core's names, as imagecluster's users use them)
from . import absolute, components, nearby, pairwise
from .constraints import Constraints, above, constrained_linkage
from .constraints import check as check_constraints
from .memory import matrices
from .parameters import EUCLIDEAN_ONLY_METHODS, METHODS, METRICS, Params  # noqa: F401 (likewise)

# screening(kind, make): a kept screening of these (projected) vectors for that kind of distance, or make()'s.
ScreeningCache = Callable[[str, Callable[[], components.Screening]], components.Screening]


@dataclass
class Tree:
    """A linkage tree and the height ``sim`` 0 cuts at: the largest mixed distance with imagecluster's
    distance, 1 on absolute scales (cuts at ``dmax * (1 - sim)``).

    A tree built one component at a time (see :mod:`.components`) is exact
    only below the cut of the sim it was built for: it may be cut at that sim
    or any higher one (``valid_from_sim``).
    """

    linkage: np.ndarray
    dmax: float
    valid_from_sim: float = 0.0

    def can_cut(self, sim: float) -> bool:
        return sim >= self.valid_from_sim

    def threshold(self, sim: float) -> float:
        return self.dmax * (1.0 - sim)


@dataclass
class Result:
    """Clusters as arrays of image ids: largest first, then earliest, then lowest id."""

    params: Params
    n_images: int
    clusters: list[np.ndarray] = field(default_factory=list)

    def stats(self) -> list[tuple[int, int]]:
        """imagecluster's table: (cluster size, number of clusters of that size), by size."""
        sizes: dict[int, int] = {}
        for members in self.clusters:
            sizes[len(members)] = sizes.get(len(members), 0) + 1
        return sorted(sizes.items())

    @property
    def n_clustered(self) -> int:
        return sum(len(members) for members in self.clusters)


def pca_project(vectors: np.ndarray, n_components: float) -> np.ndarray:
    """Project onto the leading principal components (sklearn's PCA semantics).

    A float keeps the fewest components whose explained variance reaches that
    fraction; an int keeps that many (at most min(N, dims)).
    """
    x = np.asarray(vectors, dtype=np.float64)
    x = x - x.mean(axis=0)
    u, s, _ = np.linalg.svd(x, full_matrices=False)
    if isinstance(n_components, float):
        variance = s**2
        total = variance.sum()
        if total == 0:
            keep = 1
        else:
            ratio = np.cumsum(variance) / total
            keep = int(np.searchsorted(ratio, n_components, side="right")) + 1
    else:
        keep = n_components
    keep = max(1, min(keep, s.shape[0]))
    return u[:, :keep] * s[:keep]


def _normalised(d: np.ndarray) -> np.ndarray:
    """``d / max(d)`` (0 where the maximum is 0), in place: the values of a new array, without one more matrix."""
    dmax = d.max() if d.size else 0.0
    if dmax > 0:
        d /= dmax
    else:
        d[:] = 0.0
    return d


def mixed_distances(vectors: np.ndarray, timestamps: np.ndarray, alpha: float, metric: str) -> np.ndarray:
    """The condensed matrix ``(1 - alpha) * d_c / max(d_c) + alpha * d_t / max(d_t)``."""
    content = pairwise.distances(vectors, metric)
    if not np.all(np.isfinite(content)):
        raise ClusterError(
            f"the {metric} distance is undefined for some fingerprints (e.g. cosine "
            f"of an all-zero vector): choose another metric"
        )
    content = _normalised(content)
    if alpha == 0:
        return content
    times = np.asarray(timestamps, dtype=np.float64)[:, None]
    time = _normalised(distance.pdist(times, components.TIME_METRIC.get(metric, metric)))
    content *= 1.0 - alpha  # in place, the same operations as content * (1 - alpha) + time * alpha
    time *= alpha
    content += time
    return content


def build_tree(
    vectors: np.ndarray,
    timestamps: np.ndarray,
    *,
    alpha: float = 0.3,
    method: str = "average",
    metric: str = "euclidean",
    pca: int | float | None = None,
    sim: float | None = None,
    constraints: Constraints | None = None,
    screening: ScreeningCache | None = None,
    distance: str = "imagecluster",
    tau: float = 3600.0,
    scale: float | None = None,
    timed: np.ndarray | None = None,
) -> Tree:
    """The linkage tree of the mixed distances; everything but the cut.

    ``distance`` chooses imagecluster's or the absolute one (:mod:`.absolute`), which also takes ``tau``
    (seconds), the content ``scale`` (default: estimated from these vectors, after PCA) and ``timed``
    (which photos have a capture time; default all).

    Given the ``sim`` it will be cut at, a large library with a reducible
    method is clustered one connected component at a time (exact, faster,
    half the memory); without it, or when that does not apply, the full
    distance matrix is used, as imagecluster does. With ``constraints``
    (verdicts), the linkage honours them (:mod:`.constraints`).
    ``screening(vectors, timestamps, metric)`` may return a kept
    :class:`.components.Screening` of the same (projected) vectors, so a
    change of alpha skips what does not depend on it.
    """
    n = vectors.shape[0]
    if n < 2:
        raise ClusterError(f"clustering needs at least 2 fingerprints, found {n}")
    if len(timestamps) != n:
        raise ClusterError("there must be one timestamp per fingerprint")
    check_constraints(method, constraints)
    if pca is not None:
        vectors = pca_project(vectors, pca)
    if distance == "absolute":
        if scale is None or pca is not None:
            scale = absolute.content_scale(vectors[absolute.sample_rows(np.arange(n))], metric)
        return _absolute_tree(
            vectors, timestamps, timed, absolute.Mix(alpha, scale, tau), method, metric, sim, constraints, screening
        )
    if sim is not None and components.applicable(n, method, metric):
        try:
            make = lambda: components.screening(vectors, timestamps, metric)  # noqa: E731
            screened = screening("imagecluster", make) if screening else None
            z, dmax = components.build(vectors, timestamps, alpha, method, metric, sim, constraints, screened)
            return Tree(linkage=z, dmax=dmax, valid_from_sim=sim)
        except components.TooConnected:
            pass
        except ValueError as e:
            raise ClusterError(f"the {metric} distance is undefined for some fingerprints ({e}): choose another metric")
    with matrices(n, 2 if alpha > 0 else 1):  # content and time
        d = mixed_distances(vectors, timestamps, alpha, metric)
        dmax = float(d.max())
        if constraints:
            return Tree(linkage=constrained_linkage(d, method, constraints, above(dmax)), dmax=dmax)
        return Tree(linkage=hierarchy.linkage(d, method=method), dmax=dmax)


def _absolute_tree(vectors, timestamps, timed, mix, method, metric, sim, constraints, screening) -> Tree:
    """:func:`build_tree` on absolute scales: components where the cut's pairs are few, else the full matrix."""
    n = len(vectors)
    if sim is not None and components.applicable(n, method, metric):
        try:
            make = lambda: nearby.screening(vectors, timestamps, timed, metric)  # noqa: E731
            screened = screening("absolute", make) if screening else None
            z = nearby.build(vectors, timestamps, timed, mix, method, metric, sim, constraints, screened)
            return Tree(linkage=z, dmax=1.0, valid_from_sim=sim)
        except components.TooConnected:
            pass
        except ValueError as e:
            raise ClusterError(f"the {metric} distance is undefined for some fingerprints ({e}): choose another metric")
    with matrices(n, 1):  # mixed in the content's memory, row by row
        d = absolute.distances(vectors, absolute.clock(timestamps, timed), mix, metric)
        if not np.all(np.isfinite(d)):
            raise ClusterError(
                f"the {metric} distance is undefined for some fingerprints (e.g. cosine "
                f"of an all-zero vector): choose another metric"
            )
        if constraints:
            return Tree(linkage=constrained_linkage(d, method, constraints, above(absolute.TOP)), dmax=1.0)
        return Tree(linkage=hierarchy.linkage(d, method=method), dmax=1.0)


def cut_tree(tree: Tree, sim: float) -> np.ndarray:
    """Flat cluster labels (1..k), one per fingerprint, for a similarity cut."""
    return hierarchy.fcluster(tree.linkage, t=tree.threshold(sim), criterion="distance")


def group(labels: np.ndarray, ids: np.ndarray, timestamps: np.ndarray, params: Params) -> Result:
    """Turn flat labels into ordered clusters of image ids, dropping small ones."""
    ids = np.asarray(ids)
    timestamps = np.asarray(timestamps, dtype=np.float64)
    # Members ordered by (timestamp, id); clusters by (-size, first timestamp, first id).
    order = np.lexsort((ids, timestamps))
    labels_sorted = labels[order]
    by_label: dict[int, list[int]] = {}
    for index, label in zip(order.tolist(), labels_sorted.tolist()):
        by_label.setdefault(label, []).append(index)
    kept = [members for members in by_label.values() if len(members) >= params.min_csize]
    kept.sort(key=lambda m: (-len(m), timestamps[m[0]], ids[m[0]]))
    return Result(params=params, n_images=len(ids), clusters=[ids[m] for m in kept])


def tree_for(
    vectors: np.ndarray,
    timestamps: np.ndarray,
    params: Params,
    constraints: Constraints | None = None,
    screening: ScreeningCache | None = None,
    scale: float | None = None,
    timed: np.ndarray | None = None,
) -> Tree:
    """The tree for these parameters (and verdicts), exact wherever it may be cut: at ``params.sim`` and above.

    ``scale`` and ``timed``: see :func:`build_tree` (absolute distances only)."""
    return build_tree(
        vectors,
        timestamps,
        alpha=params.alpha,
        method=params.method,
        metric=params.metric,
        pca=params.pca,
        sim=params.sim,
        constraints=constraints,
        screening=screening,
        distance=params.distance,
        tau=params.tau,
        scale=scale,
        timed=timed,
    )


def cluster(
    vectors: np.ndarray,
    timestamps: np.ndarray,
    ids: np.ndarray,
    params: Params,
    scale: float | None = None,
    timed: np.ndarray | None = None,
) -> Result:
    """Build the tree, cut it at ``params.sim`` and group the labels."""
    tree = tree_for(vectors, timestamps, params, scale=scale, timed=timed)
    return group(cut_tree(tree, params.sim), ids, timestamps, params)
