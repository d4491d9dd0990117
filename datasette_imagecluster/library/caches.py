"""In-memory caches of fingerprint libraries and linkage trees, shared by pages and SQL functions.

Building a tree is the expensive step; cutting it at a new ``sim`` is cheap.
Libraries are cached per (database file, library signature, fingerprint set,
subset) and trees per library and (alpha, method, metric, pca), so moving the
sim slider re-cuts a cached tree and a re-import (which changes the
signature) invalidates both. Nothing is written to the database, so this
works on immutable, published databases.
"""

from __future__ import annotations

import sqlite3
import threading
from collections import OrderedDict
from typing import Callable, Generic, Hashable, TypeVar

import numpy as np

from ..engine import components
from ..engine.clustering import Params, Tree, tree_for
from ..engine.constraints import Constraints, from_ids
from ..engine.labels import merge
from ..engine.quality import LabelIndex
from ..errors import ClusterError, LabelError
from .connections import tables
from .fingerprints import FingerprintSet, Library, library_signature, load_library
from .known_labels import load_labels, verdicts
from .scales import Scale, estimate, stored
from .schema import VERDICTS

T = TypeVar("T")


class LRU(Generic[T]):
    """A small thread-safe least-recently-used cache."""

    def __init__(self, size: int):
        self.size = size
        self._items: OrderedDict[Hashable, T] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable, make: Callable[[], T]) -> T:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        value = make()  # outside the lock: building may take long
        self.put(key, value)
        return value

    def peek(self, key: Hashable) -> T | None:
        with self._lock:
            return self._items.get(key)

    def put(self, key: Hashable, value: T) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)


libraries: LRU[Library] = LRU(4)
trees: LRU[Tree] = LRU(16)
numbers: LRU[dict[int, int]] = LRU(32)
agreements: LRU[tuple[str, LabelIndex] | None] = LRU(4)
verdict_constraints: LRU[Constraints] = LRU(8)
screenings: LRU[components.Screening] = LRU(2)  # a projection of each library: an alpha change skips it
content_scales: LRU[Scale] = LRU(8)  # estimated where the database has none stored (read-only, older)


def database_file(conn: sqlite3.Connection) -> str:
    for _, name, path in conn.execute("pragma database_list"):
        if name == "main" and path:
            return path
    return f"memory:{id(conn)}"


def library_key(
    conn: sqlite3.Connection, fingerprint_set: FingerprintSet, subset: frozenset[int] | None = None
) -> tuple:
    return (database_file(conn), library_signature(conn, fingerprint_set), fingerprint_set, subset)


def tree_key(
    lib_key: tuple, params: Params, constraints: Constraints = Constraints(), scale: float | None = None
) -> tuple:
    time_scale = params.tau if params.absolute else None
    return (
        lib_key,
        params.alpha,
        params.method,
        params.metric,
        params.pca,
        constraints,
        params.distance,
        time_scale,
        scale,
    )


def scale_for(conn: sqlite3.Connection, fingerprint_set: FingerprintSet, params: Params) -> float | None:
    """The content scale these parameters divide by: the stored one (:mod:`.scales`), else estimated once
    and kept; None for imagecluster's distance, and with PCA (the engine measures it on the projection)."""
    if not params.absolute or params.pca is not None:
        return None
    found = stored(conn, fingerprint_set, params.metric)
    if found is not None and found.current(fingerprint_set.count):
        return found.value
    s = fingerprint_set
    key = (database_file(conn), s.model, s.layer, s.weights, params.metric)
    kept = content_scales.peek(key)
    if kept is None or not kept.current(s.count):
        kept = estimate(conn, s, params.metric)
        content_scales.put(key, kept)
    return kept.value


def cached_tree(key: tuple, params: Params) -> Tree | None:
    """The cached tree for these parameters if it can be cut at ``params.sim``."""
    tree = trees.peek(key)
    return tree if tree is not None and tree.can_cut(params.sim) else None


def library_for(
    conn: sqlite3.Connection, fingerprint_set: FingerprintSet, subset: frozenset[int] | None = None
) -> tuple[tuple, Library]:
    key = library_key(conn, fingerprint_set, subset)
    return key, libraries.get(key, lambda: load_library(conn, fingerprint_set, subset))


def build_and_cache(
    key: tuple,
    library: Library,
    params: Params,
    constraints: Constraints | None = None,
    reuse: bool = True,
    scale: float | None = None,
) -> Tree:
    """Build the tree for these parameters (and verdicts) and cache it, unless a concurrent build already
    cached one that can be cut at more sims (a smaller ``valid_from_sim``).

    ``reuse`` keeps the library's screening, so that another alpha skips it and most of
    the pass (at the price of a dearer first pass); a one-off clustering does without.
    """

    def screening(kind: str, make: Callable[[], components.Screening]) -> components.Screening:
        return screenings.get((key[0], kind, params.metric, params.pca), make)

    tree = tree_for(
        library.vectors, library.timestamps, params, constraints, screening if reuse else None, scale, library.timed
    )
    cached = trees.peek(key)
    if cached is None or tree.valid_from_sim <= cached.valid_from_sim:
        trees.put(key, tree)
    return tree


def numbers_for(key: tuple, params: Params, clusters: Callable[[], list[list[int]]]) -> dict[int, int]:
    """``{image_id: cluster number}`` for photos in ``clusters()``, numbered from 1 as reported (cached)."""

    def make() -> dict[int, int]:
        return {i: n for n, members in enumerate(clusters(), start=1) for i in members}

    return numbers.get((key, params.sim, params.min_csize), make)


def user_labels_for(conn: sqlite3.Connection, lib_key: tuple, library: Library) -> tuple[str, LabelIndex] | None:
    """The database's own labels (groups, siblings, duplicates, verdicts) as positions in a library, and
    where they came from; None without labels, or with conflicting ones (tune reports those).

    Reading them scans every image, so they are kept until an import adds or removes photos (the
    library's signature) or a verdict changes; like the photos' paths, groups a catalog re-import
    changes in place show on the next such change.
    """

    def make() -> tuple[str, LabelIndex] | None:
        try:
            found = load_labels(conn)
        except LabelError:
            return None
        index = LabelIndex(found, library.ids)
        return (found.describe(), index) if index.positives else None

    return agreements.get((lib_key, verdicts_signature(conn)), make)


def verdicts_signature(conn: sqlite3.Connection) -> tuple | None:
    """Changes whenever a verdict is recorded or forgotten (cheap: read on every request)."""
    if VERDICTS not in tables(conn):
        return None
    return conn.execute(f"select count(*), max(rowid) from {VERDICTS}").fetchone()


def constraints_for(conn: sqlite3.Connection, lib_key: tuple, library: Library) -> Constraints:
    """The stored verdicts on a library's photos as constraints, kept until the library or a verdict changes;
    ClusterError naming the photos of a conflict (photos marked different that ``same`` verdicts join)."""

    def make() -> Constraints:
        same, different = verdicts(conn)
        if not same and not different:
            return Constraints()
        try:
            merged = merge(same, different)
        except LabelError as e:
            raise ClusterError(f"the verdicts contradict each other: {e}") from None
        return from_ids(library.ids, merged.groups, merged.different)

    return verdict_constraints.get((lib_key, verdicts_signature(conn)), make)


def nearest(library: Library, image_id: int, k: int) -> list[tuple[int, float]]:
    """The k photos closest to one photo by euclidean fingerprint distance, nearest first."""
    where = np.flatnonzero(library.ids == image_id)
    if where.size == 0:
        return []
    query = library.vectors[where[0]].astype(np.float64)
    d = np.empty(len(library.ids))
    for start in range(0, len(d), 2048):  # in blocks: memory stays small for any library
        block = library.vectors[start : start + 2048].astype(np.float64) - query
        d[start : start + 2048] = np.sqrt(np.einsum("ij,ij->i", block, block))
    d[where[0]] = np.inf
    k = min(k, len(d) - 1)
    if k <= 0:
        return []
    best = np.argpartition(d, k - 1)[:k]
    best = best[np.lexsort((library.ids[best], d[best]))]
    return [(int(library.ids[i]), float(d[i])) for i in best]


def cosines(library: Library, image_id: int, others: list[int]) -> dict[int, float]:
    """The cosine similarity of one photo's fingerprint to each of ``others`` (1 for the same direction):
    what the page shows beside similar photos, a figure that means the same in any library."""
    position = {int(i): p for p, i in enumerate(library.ids)}
    if image_id not in position:
        return {}
    query = library.vectors[position[image_id]].astype(np.float64)
    found = {}
    for other in others:
        if other in position:
            vector = library.vectors[position[other]].astype(np.float64)
            norms = float(np.linalg.norm(query) * np.linalg.norm(vector))
            found[other] = float(query @ vector / norms) if norms else 0.0
    return found
