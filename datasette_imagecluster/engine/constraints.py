"""Verdicts as constraints: agglomerative clustering that honours ``same`` and ``different``.

Must-link groups merge first, merges joining a cannot-link pair are refused, and the tree can still be
cut at any sim (:func:`constrained_linkage`).
In depth: docs/engine.md, "Verdicts as constraints".
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from scipy.spatial.distance import squareform

from ..errors import ClusterError

CONSTRAINABLE_METHODS = ("single", "complete", "average", "weighted", "ward")


@dataclass(frozen=True)
class Constraints:
    """Must-link groups and cannot-link pairs, as positions in a library (consistent: see labels.merge)."""

    same: tuple[tuple[int, ...], ...] = ()
    different: tuple[tuple[int, int], ...] = ()

    def __bool__(self) -> bool:
        return bool(self.same or self.different)

    def by_component(self, labels: np.ndarray) -> dict[int, Constraints]:
        """The constraints of each connected component (``labels``: each position's component); must-links
        are edges of the graph, so a group never spans two components, and a cannot-link pair across two
        is kept apart by the components themselves."""
        same: dict[int, list] = {}
        different: dict[int, list] = {}
        for g in self.same:
            same.setdefault(int(labels[g[0]]), []).append(g)
        for a, b in self.different:
            if labels[a] == labels[b]:
                different.setdefault(int(labels[a]), []).append((a, b))
        return {c: Constraints(tuple(same.get(c, ())), tuple(different.get(c, ()))) for c in {*same, *different}}

    def within(self, members: np.ndarray) -> Constraints:
        """The constraints among ``members`` (sorted positions), renumbered to their index there."""
        index = {int(p): k for k, p in enumerate(members)}
        same = tuple(tuple(index[p] for p in g if p in index) for g in self.same)
        different = tuple((index[a], index[b]) for a, b in self.different if a in index and b in index)
        return Constraints(tuple(g for g in same if len(g) > 1), different)


def from_ids(ids: np.ndarray, same: Iterable[Iterable[int]], different: Iterable[tuple[int, int]]) -> Constraints:
    """Constraints on a library's photos (``ids`` sorted) from image ids; photos not in it are left out."""
    where = {int(i): k for k, i in enumerate(ids)}
    groups = tuple(sorted(tuple(sorted(where[i] for i in g if i in where)) for g in same))
    pairs = tuple(
        sorted((min(where[a], where[b]), max(where[a], where[b])) for a, b in different if a in where and b in where)
    )
    return Constraints(tuple(g for g in groups if len(g) > 1), pairs)


def above(dmax: float) -> float:
    """A height above every cut (cuts lie at max(d) * (1 - sim) <= max(d)): where verdicts keep clusters apart."""
    return 2.0 * dmax + 1.0


def _update(method: str, dik, djk, dij: float, ni: int, nj: int, nk):
    """Lance–Williams: the distance from the merged cluster i∪j to each k, as scipy computes it."""
    if method == "single":
        return np.minimum(dik, djk)
    if method == "complete":
        return np.maximum(dik, djk)
    if method == "average":
        return (ni * dik + nj * djk) / (ni + nj)
    if method == "weighted":
        return (dik + djk) / 2
    total = ni + nj + nk
    return np.sqrt(np.maximum(((ni + nk) * dik**2 + (nj + nk) * djk**2 - nk * dij**2) / total, 0.0))


def constrained_linkage(d: np.ndarray, method: str, constraints: Constraints, top: float) -> np.ndarray:
    """A scipy-format linkage matrix of the condensed distances ``d`` that honours the constraints."""
    check(method, constraints)
    D = squareform(np.asarray(d, dtype=np.float64))
    m = len(D)
    np.fill_diagonal(D, np.inf)
    forbidden = np.zeros((m, m), dtype=bool)
    for a, b in constraints.different:
        forbidden[a, b] = forbidden[b, a] = True
    size = np.ones(m)
    label = np.arange(m)  # scipy's cluster id of each row
    active = np.ones(m, dtype=bool)
    rows: list[list[float]] = []
    next_id = m

    def merge(i: int, j: int, height: float) -> None:
        """Merge row j into row i."""
        nonlocal next_id
        rows.append([min(label[i], label[j]), max(label[i], label[j]), height, size[i] + size[j]])
        others = active.copy()
        others[[i, j]] = False
        new = _update(method, D[i, others], D[j, others], D[i, j], size[i], size[j], size[others])
        D[i, others] = D[others, i] = new
        D[j, :] = D[:, j] = np.inf
        forbidden[i] |= forbidden[j]
        forbidden[:, i] = forbidden[i]
        active[j] = False
        size[i] += size[j]
        label[i] = next_id
        next_id += 1

    for group in constraints.same:  # must-links first, at height 0
        for j in group[1:]:
            merge(group[0], j, 0.0)

    def nearest(k: int) -> tuple[float, int]:
        allowed = np.where(forbidden[k] | ~active, np.inf, D[k])
        j = int(np.argmin(allowed))
        return float(allowed[j]), j

    nn_d = np.full(m, np.inf)
    nn = np.zeros(m, dtype=np.int64)
    for k in np.flatnonzero(active):
        nn_d[k], nn[k] = nearest(k)
    while True:
        i = int(np.argmin(nn_d))
        if not np.isfinite(nn_d[i]):
            break
        j = int(nn[i])
        merge(i, j, float(nn_d[i]))
        nn_d[j] = np.inf
        stale = np.flatnonzero(active & ((nn == i) | (nn == j)))
        for k in (i, *stale):
            nn_d[k], nn[k] = nearest(int(k))
        # A distance to the new cluster below a row's nearest (not for the reducible methods, kept for safety).
        closer = np.flatnonzero(active & ~forbidden[i] & (D[i] < nn_d))
        nn_d[closer], nn[closer] = D[i, closer], i
    roots = np.flatnonzero(active)  # what verdicts kept apart: joined above every cut
    for r in roots[1:]:
        merge(int(roots[0]), int(r), top)
    return np.array(rows, dtype=np.float64).reshape(-1, 4)


def check(method: str, constraints: Constraints | None) -> None:
    """ClusterError for a method the constraints can't be proven to keep a hierarchy with."""
    if constraints and method not in CONSTRAINABLE_METHODS:
        raise ClusterError(
            f"verdicts can shape clusterings with the methods {', '.join(CONSTRAINABLE_METHODS)}, not {method!r}"
        )
