"""SQL functions over fingerprints and clusters, registered on every connection.

Cheap per call: clustering functions go through the shared caches in
:mod:`..library.caches`, so ``imagecluster_label(id, ...)`` over a whole table builds one
tree and one label map, not one per row. Each call reads its fingerprint set
and library in one read transaction (:mod:`..library.connections`), so an import landing
mid-call can't mix two states of the database. Bad arguments raise, which
SQLite reports as an error for the query (Python's sqlite3 gives every such
error the same text, "user-defined function raised exception").
"""

from __future__ import annotations

import json
import sqlite3
from concurrent.futures import CancelledError
from concurrent.futures import TimeoutError as FutureTimeout

import numpy as np
from scipy.spatial import distance as scipy_distance

from ..api import Photos, Selection
from ..engine.clustering import Tree
from ..engine.parameters import METRICS
from ..errors import ClusterError
from ..library.vectors import decode
from .builds import Busy, tree_of

MAX_SIMILAR = 1000


def _pair(a: bytes, b: bytes) -> tuple[np.ndarray, np.ndarray]:
    va, vb = decode(a), decode(b)
    if va.shape != vb.shape:
        raise ValueError(f"fingerprints of different lengths ({va.shape[0]} and {vb.shape[0]})")
    return va.astype(np.float64), vb.astype(np.float64)


def distance(a: bytes, b: bytes, metric: str = "euclidean") -> float:
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}")
    va, vb = _pair(a, b)
    value = float(getattr(scipy_distance, metric)(va, vb))
    if not np.isfinite(value):
        raise ValueError(f"the {metric} distance is undefined for these fingerprints")
    return value


def similarity(a: bytes, b: bytes) -> float:
    return 1.0 - distance(a, b, "cosine")


def dims(blob: bytes) -> int:
    return int(decode(blob).shape[0])


def vector(blob: bytes) -> str:
    return json.dumps([float(x) for x in decode(blob)])


class Functions:
    """The clustering functions of one connection, over :class:`..api.Photos` with the plugin's configuration.

    Parameters left out (or null) come from the configuration, then the
    database's tuned parameters, then the shipped defaults (:mod:`..engine.parameters`).
    With ``time_limit_ms`` (Datasette's ``sql_time_limit_ms``) a tree not yet built is built on the plugin's
    build queue (:mod:`.builds`) and a call that would outlast the limit is refused, as core stops a query
    (SQLite can't interrupt Python): the build goes on, so the cluster page, or the same query later, gets it.
    """

    def __init__(self, conn: sqlite3.Connection, config: dict, time_limit_ms: int | None = None):
        self.photos = Photos(conn, config, inside_statement=True)
        self.time_limit_ms = time_limit_ms

    def _clustered(self, **given) -> tuple[Selection, Tree]:
        """The selection and its tree, built (and cached) within the time limit; ClusterError beyond it."""
        selection = self.photos.choose(**given)
        tree = selection.cached_tree()
        if tree is not None:
            return selection, tree
        if self.time_limit_ms is None:
            return selection, selection.tree()
        try:
            return selection, tree_of(selection).result(timeout=self.time_limit_ms / 1000)
        except (Busy, FutureTimeout, CancelledError):
            raise ClusterError(
                f"clustering {len(selection.library.ids):,} photos takes longer than this query's time limit "
                f"({self.time_limit_ms:,} ms): it goes on in the background; open the cluster page (/-/cluster), "
                "which waits for it, or run the query again later"
            ) from None

    def clusters(self, sim=None, alpha=None, min_csize=None, method=None, metric=None, tau=None, distance=None) -> str:
        selection, tree = self._clustered(
            sim=sim, alpha=alpha, min_csize=min_csize, method=method, metric=metric, tau=tau, distance=distance
        )
        return json.dumps(selection.cluster(tree).clusters)

    def label(self, image_id, sim=None, alpha=None, tau=None, distance=None) -> int | None:
        selection, tree = self._clustered(sim=sim, alpha=alpha, tau=tau, distance=distance)
        return selection.numbers(tree).get(int(image_id))

    def similar(self, image_id, k) -> str:
        k = int(k)
        if not 1 <= k <= MAX_SIMILAR:
            raise ValueError(f"k must be between 1 and {MAX_SIMILAR}")
        return json.dumps(self.photos.choose().similar(int(image_id), k))


def _checked(fn, *arities):
    """Wrap a function for SQLite: a clear Python error (logged) for wrong argument counts."""

    def call(*args):
        if len(args) not in arities:
            raise ClusterError(f"expects {' or '.join(map(str, arities))} arguments, got {len(args)}")
        return fn(*args)

    return call


def register(conn: sqlite3.Connection, config: dict, time_limit_ms: int | None = None) -> None:
    """The functions on one connection; ``time_limit_ms``: see :class:`Functions` (the plugin passes
    Datasette's ``sql_time_limit_ms``; Python users of the connection, none)."""
    functions = Functions(conn, config, time_limit_ms)
    conn.create_function("imagecluster_distance", -1, _checked(distance, 2, 3), deterministic=True)
    conn.create_function("imagecluster_similarity", 2, similarity, deterministic=True)
    conn.create_function("imagecluster_dims", 1, dims, deterministic=True)
    conn.create_function("imagecluster_vector", 1, vector, deterministic=True)
    conn.create_function("imagecluster_clusters", -1, _checked(functions.clusters, 0, 1, 2, 3, 4, 5, 6, 7))
    conn.create_function("imagecluster_label", -1, _checked(functions.label, 1, 3, 4, 5))
    conn.create_function("imagecluster_similar", 2, functions.similar)
