"""Labels the user already has, read from the database: which photos belong together, which differ.

Sources, each named as ``imagecluster tune --labels`` takes it:

* ``groups``: digiKam groups and Lightroom stacks, as imported (``images.group_leader``);
* ``siblings``: files of one shot, same folder and name but another format (RAW+JPEG);
* ``duplicates``: files with the same SHA-256;
* ``verdicts``: the user's ``imagecluster verdict`` (table ``verdicts``, by content hash);
* a table with a ``group`` column and a ``path`` or ``image_id`` column (``--labels-table``),
  and the same as a CSV file (read by the command, resolved here).

Unknown paths or ids, and an empty set of rows, are LabelErrors naming the
line; a one-photo group is allowed (that photo belongs with no other
labelled photo) and reported by the caller.
"""

from __future__ import annotations

import csv
import os
import sqlite3
from collections.abc import Iterable, Sequence

from ..engine.labels import Labels, merge
from ..errors import LabelError
from .connections import tables
from .schema import IMAGES, VERDICTS

BUILT_IN = ("groups", "siblings", "duplicates", "verdicts")


DESCRIPTIONS = {
    "groups": "catalog groups and stacks",
    "siblings": "same-shot siblings",
    "duplicates": "exact duplicates",
    "verdicts": "verdicts",
}


def catalog_groups(conn: sqlite3.Connection) -> list[set[int]]:
    """Each imported digiKam group or Lightroom stack: its leader and its members."""
    groups: dict[int, set[int]] = {}
    for image_id, leader in conn.execute(f"select id, group_leader from {IMAGES} where group_leader is not null"):
        groups.setdefault(leader, {leader}).add(image_id)
    return [g for g in groups.values() if len(g) > 1]


def siblings(conn: sqlite3.Connection) -> list[set[int]]:
    """Files of one shot: the same folder and file name, another extension (RAW+JPEG, HEIC+JPEG)."""
    shots: dict[tuple[str, str], dict[str, int]] = {}
    for image_id, folder, name in conn.execute(f"select id, folder, name from {IMAGES} order by id"):
        stem, dot, extension = (name or "").rpartition(".")
        if dot and stem:
            shots.setdefault((folder, stem.lower()), {}).setdefault(extension.lower(), image_id)
    return [set(files.values()) for files in shots.values() if len(files) > 1]


def duplicates(conn: sqlite3.Connection) -> list[set[int]]:
    """Files with the same content."""
    groups: dict[str, set[int]] = {}
    for image_id, sha in conn.execute(
        f"select id, sha256 from {IMAGES} where sha256 in "
        f"(select sha256 from {IMAGES} group by sha256 having count(*) > 1)"
    ):
        groups.setdefault(sha, set()).add(image_id)
    return list(groups.values())


def verdicts(conn: sqlite3.Connection) -> tuple[list[set[int]], list[tuple[int, int]]]:
    """``same`` verdicts as groups and ``different`` verdicts as pairs, on the photos they are about today."""
    if VERDICTS not in tables(conn):
        return [], []
    by_sha: dict[str, list[int]] = {}
    for image_id, sha in conn.execute(
        f"select id, sha256 from {IMAGES} where sha256 in "
        f"(select sha256_a from {VERDICTS} union select sha256_b from {VERDICTS})"
    ):
        by_sha.setdefault(sha, []).append(image_id)
    same, different = [], []
    for a, b, verdict in conn.execute(f"select sha256_a, sha256_b, verdict from {VERDICTS}"):
        if a not in by_sha or b not in by_sha:
            continue  # about photos no longer in the database
        if verdict == "same":
            same.append(set(by_sha[a]) | set(by_sha[b]))
        else:
            different.extend((x, y) for x in by_sha[a] for y in by_sha[b])
    return same, different


def resolve_rows(
    conn: sqlite3.Connection, rows: Iterable[tuple[str, object, str]], key: str, where: str
) -> list[set[int]]:
    """Groups from ``(line, path or image id, group)`` rows; LabelError naming the line of an unknown photo."""
    groups: dict[str, set[int]] = {}
    count = 0
    for line, value, group in rows:
        count += 1
        if group is None or str(group).strip() == "":
            raise LabelError(f"{where} {line}: no group for {value!r}")
        if key == "image_id":
            try:
                found = conn.execute(f"select id from {IMAGES} where id = ?", (int(str(value)),)).fetchone()
            except (ValueError, OverflowError):
                raise LabelError(f"{where} {line}: image_id must be a whole number, not {value!r}")
        else:
            found = conn.execute(f"select id from {IMAGES} where path = ?", (str(value),)).fetchone()
        if found is None:
            raise LabelError(f"{where} {line}: no imported photo has {key} {value!r}")
        groups.setdefault(str(group), set()).add(found[0])
    if count == 0:
        raise LabelError(f"{where}: no labels (an empty file or table)")
    return list(groups.values())


def table_rows(conn: sqlite3.Connection, table: str) -> tuple[str, list[tuple[str, object, str]]]:
    """The key column (``path`` or ``image_id``) and the rows of a labels table."""
    if table not in tables(conn):
        raise LabelError(f"no table {table!r} in this database")
    quoted = '"' + table.replace('"', '""') + '"'
    columns = [row[1] for row in conn.execute(f"pragma table_info({quoted})")]
    key = next((c for c in ("image_id", "path") if c in columns), None)
    if key is None or "group" not in columns:
        raise LabelError(
            f"table {table!r} needs a 'group' column and a 'path' or 'image_id' column, not {', '.join(columns)}"
        )
    rows = conn.execute(f'select "{key}", "group" from {quoted}').fetchall()
    return key, [(f"row {n}", value, group) for n, (value, group) in enumerate(rows, start=1)]


def load_labels(
    conn: sqlite3.Connection, sources: Sequence[str] = BUILT_IN, extra: Sequence[tuple[str, list[set[int]]]] = ()
) -> Labels:
    """The named built-in sources plus extra ``(description, groups)``, merged into one set of labels."""
    groups: list[set[int]] = []
    different: list[tuple[int, int]] = []
    used = []
    readers = {"groups": catalog_groups, "siblings": siblings, "duplicates": duplicates}
    for source in sources:
        apart: list[tuple[int, int]] = []
        if source == "verdicts":
            found, apart = verdicts(conn)
        elif source in readers:
            found = readers[source](conn)
        else:
            raise LabelError(f"unknown label source {source!r}: choose from {', '.join(BUILT_IN)}")
        if found or apart:
            used.append(DESCRIPTIONS[source])
        groups.extend(found)
        different.extend(apart)
    for description, found in extra:
        used.append(description)
        groups.extend(found)
    return merge(groups, different, used)


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
