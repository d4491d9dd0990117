"""Tuned parameters (table ``tuned_params``): stored by ``imagecluster tune --save``, read as a set's defaults."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timezone

import sqlite_utils

from .connections import tables, write_transaction
from .fingerprints import FingerprintSet
from .schema import TUNED_PARAMS

# The clustering parameters a row stores (``pca`` as text: a count or a fraction).
STORED = ("method", "metric", "alpha", "sim", "min_csize", "distance", "tau")


def tuned(conn: sqlite3.Connection, fingerprint_set: FingerprintSet) -> dict | None:
    """The parameters tuned for this fingerprint set, or None."""
    if TUNED_PARAMS not in tables(conn):
        return None
    cursor = conn.execute(
        f"select * from {TUNED_PARAMS} where model = ? and layer = ? and weights = ?",
        (fingerprint_set.model, fingerprint_set.layer, fingerprint_set.weights),
    )
    row = cursor.fetchone()
    return dict(zip([c[0] for c in cursor.description], row)) if row else None


def save_tuned(
    conn: sqlite3.Connection, fingerprint_set: FingerprintSet, params: dict, labels: str, scores: dict
) -> None:
    """Store tuned parameters as the defaults of one fingerprint set, replacing any before, in one transaction.

    ``scores``: ``labelled_pairs``, ``precision``, ``recall``, ``f1`` and ``cv_f1`` (None without folds).
    """
    pca = params.get("pca")
    with write_transaction(conn):
        sqlite_utils.Database(conn)[TUNED_PARAMS].insert(
            {
                "model": fingerprint_set.model,
                "layer": fingerprint_set.layer,
                "weights": fingerprint_set.weights,
                **{k: params[k] for k in STORED},
                "pca": None if pca is None else str(pca),
                "labels": labels,
                **{k: scores[k] for k in ("labelled_pairs", "precision", "recall", "f1", "cv_f1")},
                "tuned_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            },
            replace=True,
        )
