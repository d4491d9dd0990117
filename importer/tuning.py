"""``imagecluster tune`` and ``imagecluster verdict``: labels in, parameters and verdicts out.

The scoring and the search live in :mod:`datasette_imagecluster.quality`
(the plugin shows the same agreement on its page); this module gathers the
labels from the sources the user names, runs the search on one fingerprint
set, and records verdicts.
"""

from __future__ import annotations

import csv
import os
import sqlite3
from dataclasses import dataclass

from datasette_imagecluster.labels import (
    BUILT_IN,
    LabelError,
    Labels,
    load_labels,
    resolve_rows,
    table_rows,
)
from datasette_imagecluster.parameters import Params
from datasette_imagecluster.photos import Selection
from datasette_imagecluster.quality import Score, Tuning, score_params, tune
from datasette_imagecluster.schema import IMAGES


def read_labels_csv(conn: sqlite3.Connection, path: str) -> list[set[int]]:
    """Groups from a CSV with a ``group`` column and a ``path`` (as imported) or ``image_id`` column."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            columns = [c.strip() for c in reader.fieldnames or []]
            if not columns:
                raise LabelError(f"{path}: empty file")
            key = next((c for c in ("image_id", "path") if c in columns), None)
            if key is None or "group" not in columns:
                raise LabelError(f"{path}: needs the columns path,group or image_id,group, not {','.join(columns)}")
            rows = []
            for line, row in enumerate(reader, start=2):
                row = {k.strip(): v for k, v in row.items() if k}
                value = row.get(key)
                if (
                    key == "path"
                    and value
                    and conn.execute(f"select 1 from {IMAGES} where path = ?", (value,)).fetchone() is None
                ):
                    value = os.path.abspath(os.path.expanduser(value))  # a path relative to here
                rows.append((f"line {line}", value, row.get("group")))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise LabelError(f"cannot read {path}: {e}")
    return resolve_rows(conn, rows, key, path)


@dataclass
class TuneResult:
    tuning: Tuning
    labels: Labels
    defaults: Params
    at_defaults: Score


def gather_labels(
    conn: sqlite3.Connection, sources: tuple[str, ...], csv_path: str | None, table: str | None
) -> tuple[Labels, int]:
    """Labels from the named sources (every built-in one when none is named), and the one-photo groups."""
    extra = []
    if csv_path:
        extra.append((f"{os.path.basename(csv_path)}", read_labels_csv(conn, csv_path)))
    if table:
        key, rows = table_rows(conn, table)
        extra.append((f"table {table}", resolve_rows(conn, rows, key, f"table {table}")))
    chosen = sources or (() if extra else BUILT_IN)
    labels = load_labels(conn, chosen, extra)
    return labels, sum(1 for g in labels.groups if len(g) == 1)


def run_tune(
    selection: Selection,
    labels: Labels,
    *,
    min_precision: float | None,
    folds: int,
    methods: tuple[str, ...],
    pcas: tuple,
) -> TuneResult:
    """Search the parameters for one fingerprint set; the defaults in force (the selection's parameters,
    chosen with none given) are the search's prior."""
    library, defaults = selection.library, selection.params
    kwargs = {"methods": methods} if methods else {}
    result = tune(
        library.vectors,
        library.timestamps,
        library.ids,
        labels,
        defaults,
        min_precision=min_precision,
        folds=folds,
        pcas=pcas,
        scale=selection.scale,
        timed=library.timed,
        **kwargs,
    )
    at_defaults = score_params(
        library.vectors, library.timestamps, library.ids, labels, defaults, selection.scale, library.timed
    )
    return TuneResult(result, labels, defaults, at_defaults)
