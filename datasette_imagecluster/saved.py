"""Saved clusterings: ``imagecluster cluster --save NAME`` writes them, exports and the API read them back.

A clustering is saved under a name with its parameters and fingerprint set
(table ``clusterings``) and its members numbered from 1 (``cluster_members``).
Saving a name again replaces it, in one write transaction.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import sqlite_utils

from .connections import tables, write_transaction
from .parameters import NotFoundError
from .schema import CLUSTER_MEMBERS, CLUSTERINGS, IMAGES

PARAMETERS = ("sim", "alpha", "method", "metric", "min_csize", "pca", "model", "layer", "weights")


@dataclass(frozen=True)
class Member:
    cluster: int
    image_id: int
    path: str
    taken: str | None
    source: str


@dataclass(frozen=True)
class Saved:
    """A saved clustering: its row in ``clusterings`` and its members, by cluster then capture time."""

    id: int
    name: str
    params: dict[str, Any]  # the clustering parameters and the fingerprint set
    n_images: int
    n_clusters: int
    created_at: str
    members: list[Member] = field(default_factory=list)

    def info(self) -> dict[str, Any]:
        """The clustering's description, as ``imagecluster export --format json`` writes it."""
        return {
            "name": self.name,
            **self.params,
            "n_images": self.n_images,
            "n_clusters": self.n_clusters,
            "created_at": self.created_at,
        }


def save(conn: sqlite3.Connection, name: str, params: dict, n_images: int, clusters: list[list[int]]) -> Saved:
    """Store a clustering under a name (replacing one of that name), clusters numbered from 1 in their order."""
    db = sqlite_utils.Database(conn)
    created_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    row = {k: params[k] for k in PARAMETERS}
    row["pca"] = None if row["pca"] is None else str(row["pca"])
    with write_transaction(conn):
        previous = conn.execute(f"select id from {CLUSTERINGS} where name = ?", (name,)).fetchone()
        if previous is not None:
            conn.execute(f"delete from {CLUSTER_MEMBERS} where clustering_id = ?", (previous[0],))
            conn.execute(f"delete from {CLUSTERINGS} where id = ?", (previous[0],))
        table = db[CLUSTERINGS].insert(
            {"name": name, **row, "n_images": n_images, "n_clusters": len(clusters), "created_at": created_at}
        )
        clustering_id = table.last_pk
        db[CLUSTER_MEMBERS].insert_all(
            {"clustering_id": clustering_id, "cluster": number, "image_id": image_id}
            for number, members in enumerate(clusters, start=1)
            for image_id in members
        )
    return Saved(clustering_id, name, {k: params[k] for k in PARAMETERS}, n_images, len(clusters), created_at)


def names(conn: sqlite3.Connection) -> list[str]:
    if CLUSTERINGS not in tables(conn):
        return []
    return [name for (name,) in conn.execute(f"select name from {CLUSTERINGS} order by name")]


def load(conn: sqlite3.Connection, name: str) -> Saved:
    """The clustering saved under ``name``, with its members; NotFoundError naming the saved ones."""
    row = (
        conn.execute(
            f"select id, name, {', '.join(PARAMETERS)}, n_images, n_clusters, created_at "
            f"from {CLUSTERINGS} where name = ?",
            (name,),
        ).fetchone()
        if CLUSTERINGS in tables(conn)
        else None
    )
    if row is None:
        found = ", ".join(names(conn)) or "none; save one with 'imagecluster cluster --save NAME'"
        raise NotFoundError(f"no clustering named {name!r} (saved: {found})")
    clustering_id, name, *values = row
    params = dict(zip(PARAMETERS, values))
    n_images, n_clusters, created_at = values[len(PARAMETERS) :]
    members = [
        Member(*r)
        for r in conn.execute(
            f"select m.cluster, i.id, i.path, i.taken, i.source from {CLUSTER_MEMBERS} m join {IMAGES} i "
            "on i.id = m.image_id where m.clustering_id = ? order by m.cluster, i.timestamp, i.id",
            (clustering_id,),
        )
    ]
    return Saved(clustering_id, name, params, n_images, n_clusters, created_at, members)
