"""Hand a saved clustering back: XMP sidecars for digiKam and Lightroom, CSV or JSON for the rest."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

from datasette_imagecluster.api import Photos
from datasette_imagecluster.errors import ClusterError, ImageclusterError
from datasette_imagecluster.library.saved import Saved
from datasette_imagecluster.library.schema import IMAGES

from .xmp import SidecarError, keeper_keyword, keyword, merge, sidecar_path


class ExportError(ImageclusterError):
    """The export cannot be made; the message says why."""


@dataclass
class SidecarChange:
    sidecar: str
    added: list[str]
    removed: list[str]


@dataclass
class SidecarSkipped:
    """A sidecar left as it was, and why (unreadable, not a regular file, not XMP): the others are still written."""

    sidecar: str
    reason: str


def _saved(db_path: str, name: str) -> tuple[Saved, list[tuple[int, str, str]]]:
    """The saved clustering and (id, path, source) of every photo, from one read of the database."""
    try:
        with Photos.open(db_path) as photos:
            saved = photos.clustering(name)
            photos_rows = photos.conn.execute(f"select id, path, source from {IMAGES} order by id").fetchall()
    except ClusterError as e:
        raise ExportError(str(e))
    return saved, photos_rows


def export_table(db_path: str, name: str, fmt: str) -> str:
    """The clustering as CSV (a row per photo) or JSON (clusters of photos)."""
    saved, _ = _saved(db_path, name)
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["clustering", "cluster", "image_id", "path", "taken"])
        writer.writerows([name, m.cluster, m.image_id, m.path, m.taken] for m in saved.members)
        return out.getvalue()
    clusters: dict[int, list] = {}
    for m in saved.members:
        clusters.setdefault(m.cluster, []).append({"id": m.image_id, "path": m.path, "taken": m.taken})
    return json.dumps(
        {
            "clustering": saved.info(),
            "clusters": [
                {"cluster": number, "size": len(images), "images": images} for number, images in clusters.items()
            ],
        },
        indent=2,
    )


def _rated(db_path: str) -> set[int]:
    """Photos whose catalog gives them a rating: the user's, never replaced."""
    with Photos.open(db_path) as photos:
        return {row[0] for row in photos.conn.execute(f"select id from {IMAGES} where rating is not null")}


def _write_atomically(path: str, data: bytes) -> None:
    """Replace ``path`` with ``data`` at once, keeping its mode; a new sidecar gets the mode the umask gives a new
    file, as an editor's would (mkstemp's 0600 would hide it from digiKam under another account or a share)."""
    folder = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(prefix=".imagecluster-", suffix=".xmp", dir=folder)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    if os.path.exists(path):
        shutil.copymode(path, tmp)
    else:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
    os.replace(tmp, path)


def _read_sidecar(path: str) -> bytes:
    """A sidecar's bytes; OSError for one that is not a regular file (a FIFO would block the export forever)."""
    if not stat.S_ISREG(os.stat(path).st_mode):
        raise OSError(f"{path} is not a regular file")
    return Path(path).read_bytes()


def _keepers(db_path: str, name: str) -> set[int]:
    """The photos of a saved clustering that are a keeper: of their cluster, or of a group of duplicates or a
    burst inside it."""
    try:
        with Photos.open(db_path, reuse=False) as photos:
            found = photos.keepers(name)
    except ClusterError as e:
        raise ExportError(str(e))
    return {c.keeper for c in found} | {g.keeper for c in found for g in c.groups}


def export_xmp(
    db_path: str,
    name: str,
    style: str | None = None,
    dry_run: bool = False,
    keepers: bool = True,
    keeper_rating: int | None = None,
) -> tuple[list[SidecarChange], list[SidecarSkipped]]:
    """Write each clustered photo's cluster keyword into its sidecar, and ``imagecluster|NAME|keeper`` into its
    keepers' (``keepers``; with ``keeper_rating``, that rating too where the photo has none, in its sidecar or
    its catalog); remove this clustering's old keywords from every other sidecar. ``style``: appended,
    replaced, or None to follow an existing sidecar, else the photo's program (Lightroom: replaced; others:
    appended).

    A sidecar that can't be read, parsed or written is skipped with its reason and the rest are written:
    returns what changed and what was skipped."""
    saved, photos = _saved(db_path, name)
    wanted = {m.image_id: m.cluster for m in saved.members}
    kept = _keepers(db_path, name) if keepers else set()
    rated = _rated(db_path) if keeper_rating is not None else set()
    changes, skipped = [], []
    for image_id, photo, source in photos:
        candidates = [sidecar_path(photo, s) for s in (("appended", "replaced") if style is None else (style,))]
        existing = next((c for c in candidates if os.path.lexists(c)), None)
        if image_id not in wanted and existing is None:
            continue
        default = "replaced" if source == "lightroom" else "appended"
        target = existing or sidecar_path(photo, style or default)
        try:
            data = _read_sidecar(target) if existing else None
            paths = [keyword(name, wanted[image_id])] if image_id in wanted else []
            rating = None
            if image_id in kept:
                paths.append(keeper_keyword(name))
                rating = keeper_rating if image_id not in rated else None
            new, added, removed = merge(data, name, paths, rating, keeper=image_id in kept)
        except OSError as e:
            skipped.append(SidecarSkipped(target, f"cannot read it: {e.strerror or e}"))
            continue
        except SidecarError as e:
            skipped.append(SidecarSkipped(target, str(e)))
            continue
        if not added and not removed:  # already as wanted
            continue
        if not dry_run:
            try:
                _write_atomically(target, new)
            except OSError as e:
                skipped.append(SidecarSkipped(target, f"cannot write it: {e.strerror or e}"))
                continue
        changes.append(SidecarChange(target, added, removed))
    return changes, skipped
