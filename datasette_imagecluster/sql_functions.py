"""SQL functions over fingerprints and clusters, registered on every connection.

Cheap per call: clustering functions go through the shared caches in
:mod:`.trees`, so ``imagecluster_label(id, ...)`` over a whole table builds one
tree and one label map, not one per row. Each call reads its fingerprint set
and library in one read transaction (:mod:`.connections`), so an import landing
mid-call can't mix two states of the database. Bad arguments raise, which
SQLite reports as an error for the query (Python's sqlite3 gives every such
error the same text, "user-defined function raised exception").
"""

from __future__ import annotations

import json
import sqlite3

import numpy as np
from scipy.spatial import distance as scipy_distance

from .parameters import METRICS, ClusterError
from .photos import Photos
from .vectors import decode

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
    """The clustering functions of one connection, over :class:`.photos.Photos` with the plugin's configuration.

    Parameters left out (or null) come from the configuration, then the
    database's tuned parameters, then the shipped defaults (:mod:`.parameters`).
    """

    def __init__(self, conn: sqlite3.Connection, config: dict):
        self.photos = Photos(conn, config, inside_statement=True)

    def clusters(self, sim=None, alpha=None, min_csize=None, method=None, metric=None, tau=None, distance=None) -> str:
        clustering = self.photos.cluster(
            sim=sim, alpha=alpha, min_csize=min_csize, method=method, metric=metric, tau=tau, distance=distance
        )
        return json.dumps(clustering.clusters)

    def label(self, image_id, sim=None, alpha=None, tau=None, distance=None) -> int | None:
        return self.photos.choose(sim=sim, alpha=alpha, tau=tau, distance=distance).numbers().get(int(image_id))

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


def register(conn: sqlite3.Connection, config: dict) -> None:
    functions = Functions(conn, config)
    conn.create_function("imagecluster_distance", -1, _checked(distance, 2, 3), deterministic=True)
    conn.create_function("imagecluster_similarity", 2, similarity, deterministic=True)
    conn.create_function("imagecluster_dims", 1, dims, deterministic=True)
    conn.create_function("imagecluster_vector", 1, vector, deterministic=True)
    conn.create_function("imagecluster_clusters", -1, _checked(functions.clusters, 0, 1, 2, 3, 4, 5, 6, 7))
    conn.create_function("imagecluster_label", -1, _checked(functions.label, 1, 3, 4, 5))
    conn.create_function("imagecluster_similar", 2, functions.similar)
