"""Hand a saved clustering back: XMP sidecars for digiKam and Lightroom, CSV or JSON for the rest."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import sqlite3
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .xmp import SidecarError, keyword, merge, sidecar_path


class ExportError(Exception):
    """The export cannot be made; the message says why."""


@dataclass
class SidecarChange:
    sidecar: str
    added: list[str]
    removed: list[str]


def _connect(db_path: str) -> sqlite3.Connection:
    try:
        conn = sqlite3.connect(Path(db_path).absolute().as_uri() + "?mode=ro", uri=True)
        conn.execute("select 1 from clusterings limit 1")
    except sqlite3.Error:
        raise ExportError(f"{db_path} has no saved clusterings: run 'imagecluster cluster --save NAME'")
    return conn


def _clustering(conn: sqlite3.Connection, name: str) -> dict:
    row = conn.execute(
        "select id, name, sim, alpha, method, metric, min_csize, pca, model, layer, weights, "
        "n_images, n_clusters, created_at from clusterings where name = ?",
        (name,),
    ).fetchone()
    if row is None:
        names = ", ".join(r[0] for r in conn.execute("select name from clusterings order by name")) or "none"
        raise ExportError(f"no clustering named {name!r} (saved: {names})")
    keys = (
        "id",
        "name",
        "sim",
        "alpha",
        "method",
        "metric",
        "min_csize",
        "pca",
        "model",
        "layer",
        "weights",
        "n_images",
        "n_clusters",
        "created_at",
    )
    return dict(zip(keys, row))


def members(conn: sqlite3.Connection, clustering_id: int) -> list[tuple[int, int, str, str | None, str]]:
    """(cluster, image id, path, taken, source) of every clustered photo, by cluster then time."""
    return conn.execute(
        "select m.cluster, i.id, i.path, i.taken, i.source from cluster_members m join images i on i.id = "
        "m.image_id where m.clustering_id = ? order by m.cluster, i.timestamp, i.id",
        (clustering_id,),
    ).fetchall()


def export_table(db_path: str, name: str, fmt: str) -> str:
    """The clustering as CSV (a row per photo) or JSON (clusters of photos)."""
    conn = _connect(db_path)
    try:
        info = _clustering(conn, name)
        rows = members(conn, info["id"])
    finally:
        conn.close()
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["clustering", "cluster", "image_id", "path", "taken"])
        writer.writerows([name, cluster, image_id, path, taken] for cluster, image_id, path, taken, _ in rows)
        return out.getvalue()
    clusters: dict[int, list] = {}
    for cluster, image_id, path, taken, _ in rows:
        clusters.setdefault(cluster, []).append({"id": image_id, "path": path, "taken": taken})
    info.pop("id")
    return json.dumps(
        {
            "clustering": info,
            "clusters": [
                {"cluster": number, "size": len(images), "images": images} for number, images in clusters.items()
            ],
        },
        indent=2,
    )


def _write_atomically(path: str, data: bytes) -> None:
    folder = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(prefix=".imagecluster-", suffix=".xmp", dir=folder)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    if os.path.exists(path):
        shutil.copymode(path, tmp)
    os.replace(tmp, path)


def export_xmp(db_path: str, name: str, style: str | None = None, dry_run: bool = False) -> list[SidecarChange]:
    """Write each clustered photo's cluster keyword into its sidecar; remove this clustering's
    old keywords from every other sidecar. ``style``: appended, replaced, or None to follow
    an existing sidecar, else the photo's program (Lightroom: replaced; others: appended)."""
    conn = _connect(db_path)
    try:
        info = _clustering(conn, name)
        wanted = {image_id: cluster for cluster, image_id, _, _, _ in members(conn, info["id"])}
        photos = conn.execute("select id, path, source from images order by id").fetchall()
    finally:
        conn.close()
    changes = []
    for image_id, photo, source in photos:
        candidates = [sidecar_path(photo, s) for s in (("appended", "replaced") if style is None else (style,))]
        existing = next((c for c in candidates if os.path.exists(c)), None)
        if image_id not in wanted and existing is None:
            continue
        default = "replaced" if source == "lightroom" else "appended"
        target = existing or sidecar_path(photo, style or default)
        try:
            data = Path(target).read_bytes() if existing else None
            path = keyword(name, wanted[image_id]) if image_id in wanted else None
            new, added, removed = merge(data, name, path)
        except (OSError, SidecarError) as e:
            raise ExportError(f"cannot update {target}: {e}")
        if not added and not removed:  # already as wanted
            continue
        if not dry_run:
            try:
                _write_atomically(target, new)
            except OSError as e:
                raise ExportError(f"cannot write {target}: {e.strerror or e}")
        changes.append(SidecarChange(target, added, removed))
    return changes
