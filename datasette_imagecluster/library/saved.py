"""Saved clusterings: ``imagecluster cluster --save NAME`` writes them, exports, ``diff`` and the API read them.

A clustering is saved under a name with its parameters and fingerprint set
(table ``clusterings``) and its members (``cluster_members``). Saving a name
again adds a *version*: the earlier ones stay, so ``imagecluster diff`` can
say what changed, and each cluster that persists keeps its number, so
keywords exported to a photo manager keep their meaning.

Numbering. A new cluster inherits the number of an old one when they share
more than half of either one's photos; where several could, an optimal
one-to-one assignment (the largest total Jaccard overlap) decides. Clusters
that inherit nothing get numbers above every number the name has ever used,
so a number is never reused. A cluster whose members didn't change always
keeps its number: its overlap with its old self is complete, and disjoint
from every other old cluster.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import sqlite_utils

from ..errors import ClusterError, NotFoundError
from .connections import joined_write_transaction, tables
from .schema import CLUSTER_MEMBERS, CLUSTERINGS, IMAGES

PARAMETERS = ("sim", "alpha", "method", "metric", "min_csize", "pca", "distance", "tau", "model", "layer", "weights")
# Saved before distances had a choice (or in a database older than that): imagecluster's distance.
LEGACY = {"distance": "imagecluster", "tau": None}


@dataclass(frozen=True)
class Member:
    cluster: int
    image_id: int
    path: str
    taken: str | None
    source: str


@dataclass(frozen=True)
class Saved:
    """One saved version of a clustering: its row in ``clusterings`` and its members, by cluster then time."""

    id: int
    name: str
    version: int
    params: dict[str, Any]  # the clustering parameters and the fingerprint set
    n_images: int
    n_clusters: int
    created_at: str
    members: list[Member] = field(default_factory=list)

    def info(self) -> dict[str, Any]:
        """The clustering's description, as ``imagecluster export --format json`` writes it."""
        return {
            "name": self.name,
            "version": self.version,
            **self.params,
            "n_images": self.n_images,
            "n_clusters": self.n_clusters,
            "created_at": self.created_at,
        }

    def clusters(self) -> dict[int, set[int]]:
        """``{cluster number: image ids}``."""
        found: dict[int, set[int]] = defaultdict(set)
        for m in self.members:
            found[m.cluster].add(m.image_id)
        return dict(found)


def stable_numbers(old: dict[int, set[int]], new: list[list[int]], last_number: int) -> list[int]:
    """The number of each new cluster: an old cluster's where they match (see the module), else a fresh one."""
    from scipy.optimize import linear_sum_assignment

    owner = {image_id: number for number, members in old.items() for image_id in members}
    candidates: dict[tuple[int, int], float] = {}  # (new index, old number) -> Jaccard
    for index, members in enumerate(new):
        shared: dict[int, int] = defaultdict(int)
        for image_id in members:
            if image_id in owner:
                shared[owner[image_id]] += 1
        for number, overlap in shared.items():
            if 2 * overlap > len(members) or 2 * overlap > len(old[number]):
                candidates[(index, number)] = overlap / (len(members) + len(old[number]) - overlap)
    numbers: list[int | None] = [None] * len(new)
    if candidates:
        rows = sorted({i for i, _ in candidates})
        cols = sorted({n for _, n in candidates})
        weight = [[candidates.get((i, n), 0.0) for n in cols] for i in rows]
        for r, c in zip(*linear_sum_assignment(weight, maximize=True)):
            if weight[r][c] > 0:
                numbers[rows[r]] = cols[c]
    fresh = iter(range(last_number + 1, last_number + 1 + len(new)))
    return [number if number is not None else next(fresh) for number in numbers]


def check_name(name: str) -> None:
    """ClusterError unless ``name`` can name a clustering: 1 to 100 printable characters, no slash or backslash
    and no ``.json`` at the end (the page's links put the name in a path, where those would mean another page)."""
    if not name or len(name) > 100 or not name.isprintable():
        raise ClusterError("a clustering's name is 1 to 100 printable characters")
    if "/" in name or "\\" in name or name.lower().endswith(".json"):
        raise ClusterError(f"a clustering's name can't hold a slash or end in .json: {name!r}")


def save(
    conn: sqlite3.Connection,
    name: str,
    params: dict,
    n_images: int,
    clusters: list[list[int]],
    roles: dict[int, tuple[str, str | None]] | None = None,
) -> Saved:
    """Store a new version of the clustering ``name``; clusters keep the numbers of the last version's
    clusters they continue (:func:`stable_numbers`), the first version numbers them 1, 2, ... in order.
    ``roles``: each photo's (role, tier) in its cluster (:func:`.keepers.roles`)."""
    roles = roles or {}
    check_name(name)
    db = sqlite_utils.Database(conn)
    created_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    row = {k: params.get(k) for k in PARAMETERS}
    row["pca"] = None if row["pca"] is None else str(row["pca"])
    if row["distance"] != "absolute":
        row["tau"] = None  # imagecluster's distance has no time scale
    with joined_write_transaction(conn):
        previous = _latest(conn, name)
        old = load(conn, name).clusters() if previous else {}
        last_number, version = (previous[2], previous[1]) if previous else (0, 0)
        numbers = stable_numbers(old, clusters, last_number)
        table = db[CLUSTERINGS].insert(
            {
                "name": name,
                "version": version + 1,
                **row,
                "n_images": n_images,
                "n_clusters": len(clusters),
                "last_number": max([last_number, *numbers]),
                "created_at": created_at,
            }
        )
        clustering_id = table.last_pk
        db[CLUSTER_MEMBERS].insert_all(
            {
                "clustering_id": clustering_id,
                "cluster": number,
                "image_id": image_id,
                "role": roles.get(image_id, (None, None))[0],
                "tier": roles.get(image_id, (None, None))[1],
            }
            for number, members in zip(numbers, clusters)
            for image_id in members
        )
    return load_version(conn, name, version + 1)


def _latest(conn: sqlite3.Connection, name: str) -> tuple[int, int, int] | None:
    """(id, version, last number) of a name's latest version, or None."""
    if CLUSTERINGS not in tables(conn):
        return None
    return conn.execute(
        f"select id, version, last_number from {CLUSTERINGS} where name = ? order by version desc limit 1", (name,)
    ).fetchone()


def names(conn: sqlite3.Connection) -> list[str]:
    if CLUSTERINGS not in tables(conn):
        return []
    return [name for (name,) in conn.execute(f"select distinct name from {CLUSTERINGS} order by name")]


def versions(conn: sqlite3.Connection, name: str) -> list[int]:
    if CLUSTERINGS not in tables(conn):
        return []
    return [v for (v,) in conn.execute(f"select version from {CLUSTERINGS} where name = ? order by version", (name,))]


def load(conn: sqlite3.Connection, name: str) -> Saved:
    """The latest version of the clustering saved under ``name``; NotFoundError naming the saved ones."""
    found = versions(conn, name)
    if not found:
        saved = ", ".join(names(conn)) or "none; save one with 'imagecluster cluster --save NAME'"
        raise NotFoundError(f"no clustering named {name!r} (saved: {saved})")
    return load_version(conn, name, found[-1])


def load_version(conn: sqlite3.Connection, name: str, version: int) -> Saved:
    """One version of a saved clustering, with its members."""
    present = {r[1] for r in conn.execute(f"pragma table_info({CLUSTERINGS})")}
    columns = [k if k in present else "null" for k in PARAMETERS]
    row = conn.execute(
        f"select id, name, version, {', '.join(columns)}, n_images, n_clusters, created_at "
        f"from {CLUSTERINGS} where name = ? and version = ?",
        (name, version),
    ).fetchone()
    if row is None:
        raise NotFoundError(f"clustering {name!r} has no version {version} (versions: {versions(conn, name)})")
    clustering_id, name, version, *values = row
    params = dict(zip(PARAMETERS, values))
    if params["distance"] is None:
        params.update(LEGACY)
    n_images, n_clusters, created_at = values[len(PARAMETERS) :]
    members = [
        Member(*r)
        for r in conn.execute(
            f"select m.cluster, i.id, i.path, i.taken, i.source from {CLUSTER_MEMBERS} m join {IMAGES} i "
            "on i.id = m.image_id where m.clustering_id = ? order by m.cluster, i.timestamp, i.id",
            (clustering_id,),
        )
    ]
    return Saved(clustering_id, name, version, params, n_images, n_clusters, created_at, members)
