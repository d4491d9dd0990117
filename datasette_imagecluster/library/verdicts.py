"""Verdicts: what the user says about pairs of photos, written by ``imagecluster verdict`` and the page.

Verdicts are keyed by the photos' content (SHA-256, smaller first), so they
survive moves, renames and re-imports. Every clustering honours them
(:mod:`..engine.constraints`); ``imagecluster tune`` uses them as labels.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime, timezone

import sqlite_utils

from ..engine.labels import merge
from ..errors import LabelError
from .connections import joined_write_transaction
from .known_labels import verdicts
from .schema import IMAGES, VERDICTS

KINDS = ("same", "different", "forget")
# How a recorded verdict reads: "photos 12, 13 belong together".
DESCRIBED = {"same": "belong together", "different": "differ", "forget": "have no verdict"}


def _hashes(conn: sqlite3.Connection, image_ids: list[int]) -> dict[int, str]:
    """Each photo's content hash; LabelError for an id no imported photo has."""
    hashes = {}
    for image_id in image_ids:
        row = conn.execute(f"select sha256 from {IMAGES} where id = ?", (image_id,)).fetchone()
        if row is None:
            raise LabelError(f"no imported photo has id {image_id}")
        hashes[image_id] = row[0]
    return hashes


def _apart(conn: sqlite3.Connection, photo: int, others: list[int]) -> list[tuple[str, str]]:
    """``different`` pairs between one photo and each of ``others``, checked against the stored verdicts once."""
    hashes = _hashes(conn, [photo, *others])
    for other in others:
        if hashes[photo] == hashes[other]:
            raise LabelError(f"photos {photo} and {other} have the same content: they can't be different")
    same, apart = verdicts(conn)
    merge(same, apart + [(photo, other) for other in others])  # raises LabelError naming the photos on a conflict
    return [(hashes[photo], hashes[other]) for other in others]


def verdict_pairs(conn: sqlite3.Connection, verdict: str, image_ids: tuple[int, ...]) -> list[tuple[str, str]]:
    """The content-hash pairs a verdict on these photos records; LabelError for a verdict that can't stand.

    ``same`` takes two photos or more (one group), ``different`` and ``forget`` exactly two.
    """
    if verdict == "same" and len(set(image_ids)) < 2:
        raise LabelError("'same' needs at least two different photos (a one-photo group says nothing)")
    if verdict in ("different", "forget") and len(set(image_ids)) != 2:
        raise LabelError(f"'{verdict}' takes exactly two different photos")
    first, *others = list(dict.fromkeys(image_ids))
    if verdict == "different":
        return _apart(conn, first, others)
    hashes = _hashes(conn, [first, *others])
    if verdict == "same":  # the verdicts with this one must not contradict each other
        same, apart = verdicts(conn)
        merge(same + [set(image_ids)], apart)
    return [(hashes[first], hashes[other]) for other in others]


# A pair's verdict before a change: (sha256_a, sha256_b, verdict or None, created_at or None).
Previous = tuple[str, str, "str | None", "str | None"]


def record(conn: sqlite3.Connection, verdict: str, pairs: list[tuple[str, str]]) -> list[Previous]:
    """Record a verdict (``same``/``different``) on content-hash pairs, or ``forget`` them, in one transaction;
    what each pair held before (for :func:`restore`, the page's undo)."""
    keyed = list(dict.fromkeys((min(a, b), max(a, b)) for a, b in pairs))
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    with joined_write_transaction(conn):
        previous = [_previous(conn, a, b) for a, b in keyed]
        if verdict == "forget":
            conn.executemany(f"delete from {VERDICTS} where sha256_a = ? and sha256_b = ?", keyed)
        else:
            sqlite_utils.Database(conn)[VERDICTS].insert_all(
                ({"sha256_a": a, "sha256_b": b, "verdict": verdict, "created_at": now} for a, b in keyed),
                replace=True,
            )
    return previous


def _previous(conn: sqlite3.Connection, a: str, b: str) -> Previous:
    row = conn.execute(
        f"select verdict, created_at from {VERDICTS} where sha256_a = ? and sha256_b = ?", (a, b)
    ).fetchone()
    return (a, b, *(row or (None, None)))


def restore(conn: sqlite3.Connection, previous: list[Previous]) -> None:
    """Put pairs back as they were before a :func:`record` (undo), in one transaction."""
    with joined_write_transaction(conn):
        for a, b, verdict, created_at in previous:
            if verdict not in (None, "same", "different"):
                raise LabelError(f"cannot restore a verdict {verdict!r}")
            conn.execute(f"delete from {VERDICTS} where sha256_a = ? and sha256_b = ?", (a, b))
            if verdict is not None:
                sqlite_utils.Database(conn)[VERDICTS].insert(
                    {"sha256_a": a, "sha256_b": b, "verdict": verdict, "created_at": created_at}, replace=True
                )


def not_with(conn: sqlite3.Connection, photo: int, others: list[int]) -> list[tuple[str, str]]:
    """``different`` pairs between one photo and each of ``others`` ("not this one" on a cluster's photo);
    LabelError where it has no others (a card of one photo: there is nothing to set it apart from)."""
    others = [other for other in dict.fromkeys(others) if other != photo]
    if not others:
        raise LabelError(f"photo {photo} is alone in its cluster: there is nothing to set it apart from")
    return _apart(conn, photo, others)
