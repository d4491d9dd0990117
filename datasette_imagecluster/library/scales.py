"""Each fingerprint set's content scale, the typical distance between its unrelated photos (:mod:`..engine.absolute`).

It is estimated from a sample of the set chosen by a hash of the photos' ids and stored (table
``content_scales``) by the importer, so later imports do not move every distance: the scale is estimated
again only once the set has grown to ``GROWTH`` times the photos it was estimated from. A database the
importer has not stored it in (older, or published read-only) gets the same estimate in memory.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

import numpy as np

from ..engine.absolute import SAMPLE, content_scale, sample_rows
from .connections import tables
from .schema import CONTENT_SCALES, FINGERPRINTS
from .vectors import DTYPE

GROWTH = 2.0
METRIC = "euclidean"  # the scale the importer stores; another metric's is estimated when asked


@dataclass(frozen=True)
class Scale:
    value: float
    photos: int  # the set's size when it was estimated

    def current(self, photos: int) -> bool:
        """Still the set's scale at this size (it has not grown ``GROWTH``-fold)."""
        return photos < GROWTH * max(self.photos, 1)


def stored(conn: sqlite3.Connection, fingerprint_set, metric: str) -> Scale | None:
    if CONTENT_SCALES not in tables(conn):
        return None
    s = fingerprint_set
    row = conn.execute(
        f"select scale, photos from {CONTENT_SCALES} where model = ? and layer = ? and weights = ? and metric = ?",
        (s.model, s.layer, s.weights, metric),
    ).fetchone()
    return Scale(float(row[0]), int(row[1])) if row else None


def estimate(conn: sqlite3.Connection, fingerprint_set, metric: str) -> Scale:
    """The median distance over the pairs of up to :data:`..engine.absolute.SAMPLE` photos of the set."""
    s = fingerprint_set
    key = (s.model, s.layer, s.weights)
    where = "model = ? and layer = ? and weights = ?"
    ids = np.array([r[0] for r in conn.execute(f"select image_id from {FINGERPRINTS} where {where}", key)])
    chosen = ids[sample_rows(ids, SAMPLE)] if len(ids) else ids
    vectors = []
    for start in range(0, len(chosen), 500):  # SQLite's limit on parameters
        part = chosen[start : start + 500].tolist()
        rows = conn.execute(
            f"select vector from {FINGERPRINTS} where {where} and image_id in ({','.join('?' * len(part))})",
            (*key, *part),
        )
        vectors.extend(np.frombuffer(blob, dtype=DTYPE) for (blob,) in rows)
    matrix = np.stack(vectors) if vectors else np.empty((0, s.dims), DTYPE)
    return Scale(content_scale(matrix, metric), len(ids))


def refresh(conn: sqlite3.Connection, fingerprint_set, metric: str = METRIC) -> Scale:
    """The stored scale, estimated and stored first where there is none or the set has outgrown it (a writer's
    call, inside its transaction)."""
    found = stored(conn, fingerprint_set, metric)
    if found is not None and found.current(fingerprint_set.count):
        return found
    scale = estimate(conn, fingerprint_set, metric)
    s = fingerprint_set
    conn.execute(
        f"insert or replace into {CONTENT_SCALES} (model, layer, weights, metric, scale, photos) "
        "values (?, ?, ?, ?, ?, ?)",
        (s.model, s.layer, s.weights, metric, scale.value, scale.photos),
    )
    return scale
