"""Reading fingerprints and capture times out of the database for clustering.

A *fingerprint set* is every fingerprint made by one (model, layer, weights):
only fingerprints of one set may be compared, so every reader picks a set
first. Loading fills one preallocated float32 matrix row by row, so memory is
the matrix and nothing more.
"""

from __future__ import annotations

import mmap
import sqlite3
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ClusterError
from .connections import has_tables
from .schema import FINGERPRINTS, IMAGES
from .vectors import DTYPE

UNTIMED = "mtime"  # images.timestamp_source of a photo whose time is only its file's date


@dataclass(frozen=True)
class FingerprintKey:
    """What names a fingerprint set: the model, layer and weights that made it (only its fingerprints compare)."""

    model: str
    layer: str
    weights: str

    @property
    def label(self) -> str:
        return f"{self.model}/{self.layer} (weights {self.weights})"

    @property
    def key(self) -> FingerprintKey:
        """The name alone (a :class:`FingerprintSet` is one, with its size)."""
        return FingerprintKey(self.model, self.layer, self.weights)


@dataclass(frozen=True)
class FingerprintSet(FingerprintKey):
    """A fingerprint set as the database holds it: its name, the values per fingerprint and how many there are."""

    dims: int
    count: int


@dataclass
class Library:
    """The fingerprints of one set, aligned with their image ids, timestamps, paths and capture times.

    Paths and capture times are read in the same statement as the vectors, so
    the details a page or JSON answer shows always belong to the photos it
    clustered (a prune between two reads can't make one vanish).
    """

    fingerprint_set: FingerprintSet
    ids: np.ndarray
    vectors: np.ndarray
    timestamps: np.ndarray
    paths: list[str]
    taken: list[str | None]
    timed: np.ndarray | None = None  # which photos have a capture time (not only their file's date); None: all

    def details(self, image_ids: list[int]) -> dict[int, dict[str, Any]]:
        """``{id: {"id", "path", "taken"}}`` for photos of this library."""
        rows = np.searchsorted(self.ids, image_ids)
        return {int(i): {"id": int(i), "path": self.paths[r], "taken": self.taken[r]} for i, r in zip(image_ids, rows)}


def fingerprint_sets(conn: sqlite3.Connection) -> list[FingerprintSet]:
    """Every fingerprint set in the database, the largest first.

    Raises ClusterError when one set holds vectors of different lengths, which
    only a foreign writer can produce.
    """
    if not has_tables(conn, FINGERPRINTS, IMAGES):
        return []
    rows = conn.execute(
        f"select model, layer, weights, min(dims), max(dims), count(*) from {FINGERPRINTS} "
        "group by model, layer, weights order by count(*) desc, model, layer, weights"
    ).fetchall()
    sets = []
    for model, layer, weights, min_dims, max_dims, count in rows:
        if min_dims != max_dims:
            raise ClusterError(
                f"fingerprints of {model}/{layer} (weights {weights}) have mixed dimensions "
                f"({min_dims} and {max_dims}): re-import them"
            )
        sets.append(FingerprintSet(model, layer, weights, min_dims, count))
    return sets


def choose_set(
    sets: list[FingerprintSet],
    model: str | None = None,
    layer: str | None = None,
    weights: str | None = None,
) -> FingerprintSet:
    """The one set matching the given filters (the largest set when none is given).

    Raises ClusterError saying what to choose when the filters match none or several.
    """
    if not sets:
        raise ClusterError("this database has no fingerprints: run 'imagecluster import' first")
    if model is None and layer is None and weights is None:
        return sets[0]
    matching = [
        s
        for s in sets
        if (model is None or s.model == model)
        and (layer is None or s.layer == layer)
        and (weights is None or s.weights == weights)
    ]
    available = ", ".join(s.label for s in sets)
    if not matching:
        raise ClusterError(f"no fingerprints match; this database has {available}")
    if len(matching) > 1:
        raise ClusterError(
            f"this database has several fingerprint sets ({available}): choose one with model, layer and weights"
        )
    return matching[0]


def load_library(
    conn: sqlite3.Connection,
    fingerprint_set: FingerprintSet,
    image_ids: frozenset[int] | None = None,
) -> Library:
    """Fingerprints and timestamps of one set, ordered by image id.

    ``image_ids`` restricts the library to those images (ids without a
    fingerprint in this set are ignored). Rows are read in the set index's
    order and put in id order here: ``order by image_id`` made SQLite copy
    every vector into a temporary B-tree first (4 times slower at 20,000).
    """
    s = fingerprint_set
    capacity = s.count if image_ids is None else min(s.count, len(image_ids))
    ids = np.empty(capacity, dtype=np.int64)
    timestamps = np.empty(capacity, dtype=np.float64)
    vectors = _matrix(capacity, s.dims)
    timed = np.empty(capacity, dtype=bool)
    paths: list[str] = []
    taken: list[str | None] = []
    cursor = conn.execute(
        f"select f.image_id, i.timestamp, f.vector, i.path, i.taken, i.timestamp_source from {FINGERPRINTS} f "
        f"join {IMAGES} i on i.id = f.image_id "
        "where f.model = ? and f.layer = ? and f.weights = ?",
        (s.model, s.layer, s.weights),
    )
    n = 0
    expected = s.dims * DTYPE.itemsize
    for image_id, timestamp, blob, path, when, source in cursor:
        if image_ids is not None and image_id not in image_ids:
            continue
        if n == capacity:  # rows added since the count: cluster what was counted
            break
        if not isinstance(blob, bytes) or len(blob) != expected:
            raise ClusterError(f"the fingerprint of image {image_id} is not {s.dims} float32 values: re-import it")
        ids[n] = image_id
        timestamps[n] = timestamp
        timed[n] = source != UNTIMED
        vectors[n] = np.frombuffer(blob, dtype=DTYPE)
        paths.append(path)
        taken.append(when)
        n += 1
    ids, timestamps, vectors, timed = ids[:n], timestamps[:n], vectors[:n], timed[:n]
    _check_finite(ids, vectors)
    order = np.argsort(ids, kind="stable")
    if np.any(order != np.arange(n)):  # photos imported again have newer rows
        ids, timestamps, timed = ids[order], timestamps[order], timed[order]
        permute_rows(vectors, order)
        paths, taken = [paths[k] for k in order], [taken[k] for k in order]
    return Library(s, ids, vectors, timestamps, paths, taken, timed)


def _matrix(rows: int, dims: int) -> np.ndarray:
    """An uninitialised rows x dims float32 matrix in an anonymous mapping of its own.

    Not ``np.empty``: numpy advises the kernel to back large arrays with
    huge pages, and on virtual machines (where the host takes back free
    memory) faulting those in is slow and erratic. Filling 20,000
    fingerprints (328 MB) took 0.60-1.37 s with them and 0.38-0.52 s
    without (docs/benchmarks.md). The mapping is freed with the matrix.
    """
    size = rows * dims * 4  # float32
    return (
        np.frombuffer(mmap.mmap(-1, size), np.float32).reshape(rows, dims)
        if size
        else np.empty((rows, dims), np.float32)
    )


def _check_finite(ids: np.ndarray, vectors: np.ndarray, block: int = 4096) -> None:
    """ClusterError naming the images whose fingerprints hold NaN or infinite values (every distance to
    them would be undefined); a block of rows at a time, so no mask as large as the fingerprints."""
    rows: list[int] = []
    for s in range(0, len(vectors), block):
        finite = np.isfinite(vectors[s : s + block]).all(axis=1)
        if not finite.all():
            rows.extend((s + np.flatnonzero(~finite)).tolist())
    if rows:
        bad = np.sort(ids[rows])
        named = ", ".join(str(i) for i in bad[:5]) + (f" and {len(bad) - 5:,} more" if len(bad) > 5 else "")
        if len(rows) == 1:
            raise ClusterError(f"the fingerprint of image {named} holds NaN or infinite values: re-import it")
        raise ClusterError(f"the fingerprints of images {named} hold NaN or infinite values: re-import them")


def permute_rows(x: np.ndarray, order: np.ndarray) -> None:
    """``x[:] = x[order]`` in place, one row at a time along the permutation's cycles: no second matrix."""
    done = order == np.arange(len(order))
    for start in np.flatnonzero(~done).tolist():
        if done[start]:
            continue
        first, k = x[start].copy(), start
        while (source := int(order[k])) != start:
            x[k] = x[source]
            done[k] = True
            k = source
        x[k] = first
        done[k] = True


def library_signature(conn: sqlite3.Connection, fingerprint_set: FingerprintSet) -> tuple:
    """Changes whenever an import adds, replaces or deletes fingerprints or images.

    Re-importing a photo replaces its fingerprint row (a new rowid), so counts
    and largest rowids cover every write the importer makes; both come from
    indexes, so this is cheap enough to run on every request.
    """
    s = fingerprint_set
    return conn.execute(
        f"select (select count(*) from {FINGERPRINTS} where model = ? and layer = ? and weights = ?), "
        f"(select max(rowid) from {FINGERPRINTS}), (select count(*) from {IMAGES}), "
        f"(select max(rowid) from {IMAGES})",
        (s.model, s.layer, s.weights),
    ).fetchone()
