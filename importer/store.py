"""Where a decoded photo becomes rows: images, thumbnails, fingerprints, import_errors.

Every write happens inside :meth:`Store.transaction`, and the pipeline writes
one batch per transaction: an image row, its thumbnail and its fingerprint
land together or not at all, so an import killed at any moment leaves no
orphans, and a re-run finds the committed photos unchanged.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone

import sqlite_utils

from datasette_imagecluster.schema import (
    ALBUMS,
    CLUSTER_MEMBERS,
    CLUSTERINGS,
    FINGERPRINTS,
    IMAGES,
    IMPORT_ERRORS,
    TAGS,
    THUMBNAILS,
    TUNED_PARAMS,
    VERDICTS,
    ensure_schema,
)

from .catalog import CatalogPhoto
from .decode import DECODER_ROTATED, Decoded
from .sources import FileEntry, Problem


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class FingerprintKey:
    model: str
    layer: str
    weights: str


@dataclass(frozen=True)
class KnownImage:
    id: int
    path: str
    size: int
    mtime: float
    sha256: str
    orientation: int | None
    format: str | None

    def needs_rotation(self, orientation: int) -> bool:
        """Its pixels were turned upright by another orientation (one its decoder does not apply)."""
        return self.orientation != orientation and self.format not in DECODER_ROTATED


_KNOWN = "id, path, size, mtime, sha256, orientation, format"


_IMAGE_COLUMNS = (
    "path",
    "folder",
    "name",
    "size",
    "mtime",
    "sha256",
    "format",
    "width",
    "height",
    "orientation",
    "taken",
    "timestamp",
    "timestamp_source",
    "camera_make",
    "camera_model",
    "latitude",
    "longitude",
    "exif_error",
    "source",
    "imported_at",
    "pixels_from",
    "pixels_path",
)


class Store:
    """The photo database, opened for writing."""

    def __init__(self, path: str):
        self.db = sqlite_utils.Database(path)
        self.conn: sqlite3.Connection = self.db.conn
        self.conn.execute("PRAGMA busy_timeout = 10000")
        self.conn.execute("PRAGMA foreign_keys = ON")
        ensure_schema(self.db)
        # In WAL mode NORMAL survives a killed process; only a power cut may
        # lose the last batches, never consistency.
        self.conn.execute("PRAGMA synchronous = NORMAL")

    def close(self) -> None:
        if self.db.journal_mode == "wal":
            self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self.conn.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.conn.rollback()
            raise
        self.conn.commit()

    # -- reading -----------------------------------------------------------

    def image_at(self, path: str) -> KnownImage | None:
        row = self.conn.execute(f"select {_KNOWN} from {IMAGES} where path = ?", (path,)).fetchone()
        return KnownImage(*row) if row else None

    def images_of_size(self, size: int) -> list[KnownImage]:
        return [
            KnownImage(*row)
            for row in self.conn.execute(
                f"select {_KNOWN} from {IMAGES} where size = ? order by id",
                (size,),
            )
        ]

    def has_fingerprint(self, image_id: int, key: FingerprintKey) -> bool:
        return (
            self.conn.execute(
                f"select 1 from {FINGERPRINTS} where image_id = ? and model = ? and layer = ? and weights = ?",
                (image_id, key.model, key.layer, key.weights),
            ).fetchone()
            is not None
        )

    def failed_unchanged(self, entry: FileEntry) -> bool:
        """True if this very file (same size and mtime) already failed to import."""
        row = self.conn.execute(f"select size, mtime from {IMPORT_ERRORS} where path = ?", (entry.path,)).fetchone()
        return row is not None and row[0] == entry.size and row[1] == entry.mtime

    def images_under(self, root: str) -> Iterator[tuple[int, str]]:
        """(id, path) of every image at or below a folder, in path order."""
        root = root.rstrip(os.sep)
        yield from self.conn.execute(
            f"select id, path from {IMAGES} where path = ? or (path > ? and path < ?) order by path",
            (root, root + os.sep, root + chr(ord(os.sep) + 1)),
        )

    # -- writing (call inside transaction()) -------------------------------

    def record_problem(self, problem: Problem) -> None:
        self.conn.execute(
            f"insert or replace into {IMPORT_ERRORS} (path, stage, message, size, mtime, time, catalog) "
            "values (?, ?, ?, ?, ?, ?, ?)",
            (problem.path, problem.stage, problem.message, problem.size, problem.mtime, now(), problem.catalog),
        )

    def write_decoded(self, item: Decoded, key: FingerprintKey, vector: bytes) -> int:
        """Insert or update the photo's row, thumbnail and fingerprint; returns its id."""
        capture = item.capture
        values = {
            "path": item.path,
            "folder": os.path.dirname(item.path),
            "name": os.path.basename(item.path),
            "size": item.size,
            "mtime": item.mtime,
            "sha256": item.sha256,
            "format": item.format,
            "width": item.width,
            "height": item.height,
            "orientation": capture.orientation,
            "taken": capture.taken,
            "timestamp": capture.timestamp,
            "timestamp_source": capture.timestamp_source,
            "camera_make": capture.camera_make,
            "camera_model": capture.camera_model,
            "latitude": capture.latitude,
            "longitude": capture.longitude,
            "exif_error": capture.error,
            "source": "folder",
            "imported_at": now(),
            "pixels_from": item.pixels_from,
            "pixels_path": item.pixels_path,
        }
        previous = self.image_at(item.path)
        if previous is None:
            cursor = self.conn.execute(
                f"insert into {IMAGES} ({', '.join(_IMAGE_COLUMNS)}) values ({', '.join('?' for _ in _IMAGE_COLUMNS)})",
                [values[c] for c in _IMAGE_COLUMNS],
            )
            image_id = cursor.lastrowid
        else:
            image_id = previous.id
            self.conn.execute(
                f"update {IMAGES} set {', '.join(f'{c} = ?' for c in _IMAGE_COLUMNS)} where id = ?",
                [values[c] for c in _IMAGE_COLUMNS] + [image_id],
            )
            if previous.sha256 != item.sha256:
                # New content: every fingerprint of the old content is stale.
                self.conn.execute(f"delete from {FINGERPRINTS} where image_id = ?", (image_id,))
        self.conn.execute(
            f"insert or replace into {THUMBNAILS} (image_id, jpeg, width, height) values (?, ?, ?, ?)",
            (image_id, item.thumbnail, item.thumbnail_width, item.thumbnail_height),
        )
        self.write_fingerprint(image_id, key, vector)
        self.conn.execute(f"delete from {IMPORT_ERRORS} where path = ?", (item.path,))
        return image_id

    def write_fingerprint(self, image_id: int, key: FingerprintKey, vector: bytes) -> None:
        self.conn.execute(
            f"insert or replace into {FINGERPRINTS} "
            "(image_id, model, layer, weights, dims, vector, created_at) values (?, ?, ?, ?, ?, ?, ?)",
            (image_id, key.model, key.layer, key.weights, len(vector) // 4, vector, now()),
        )

    def move(self, image: KnownImage, entry: FileEntry) -> None:
        """The same photo under a new path: keep its row, thumbnail and fingerprints."""
        self.conn.execute(
            f"update {IMAGES} set path = ?, folder = ?, name = ?, size = ?, mtime = ? where id = ?",
            (entry.path, os.path.dirname(entry.path), os.path.basename(entry.path), entry.size, entry.mtime, image.id),
        )
        self.conn.execute(f"delete from {IMPORT_ERRORS} where path = ?", (entry.path,))

    def copy(self, image: KnownImage, entry: FileEntry) -> int:
        """A second file with the content of a known photo: copy its rows, no decoding."""
        columns = [c for c in _IMAGE_COLUMNS if c not in ("path", "folder", "name", "mtime", "imported_at")]
        cursor = self.conn.execute(
            f"insert into {IMAGES} (path, folder, name, mtime, imported_at, {', '.join(columns)}) "
            f"select ?, ?, ?, ?, ?, {', '.join(columns)} from {IMAGES} where id = ?",
            (entry.path, os.path.dirname(entry.path), os.path.basename(entry.path), entry.mtime, now(), image.id),
        )
        new_id = cursor.lastrowid
        self.conn.execute(
            f"insert into {THUMBNAILS} (image_id, jpeg, width, height) "
            f"select ?, jpeg, width, height from {THUMBNAILS} where image_id = ?",
            (new_id, image.id),
        )
        self.conn.execute(
            f"insert into {FINGERPRINTS} (image_id, model, layer, weights, dims, vector, created_at) "
            f"select ?, model, layer, weights, dims, vector, created_at from {FINGERPRINTS} "
            "where image_id = ?",
            (new_id, image.id),
        )
        self.conn.execute(f"delete from {IMPORT_ERRORS} where path = ?", (entry.path,))
        return new_id

    def relocate(self, image_id: int, path: str) -> None:
        """A catalog photo's row follows it to a new path; size and mtime still say whether to re-read it."""
        self.conn.execute(
            f"update {IMAGES} set path = ?, folder = ?, name = ? where id = ?",
            (path, os.path.dirname(path), os.path.basename(path), image_id),
        )

    def touch(self, image: KnownImage, entry: FileEntry) -> None:
        """Same content, new size or mtime (e.g. copied back from a backup)."""
        self.conn.execute(f"update {IMAGES} set size = ?, mtime = ? where id = ?", (entry.size, entry.mtime, image.id))

    def delete_images(self, image_ids: list[int]) -> None:
        for table, column in (
            (CLUSTER_MEMBERS, "image_id"),
            (TAGS, "image_id"),
            (ALBUMS, "image_id"),
            (FINGERPRINTS, "image_id"),
            (THUMBNAILS, "image_id"),
            (IMAGES, "id"),
        ):
            self.conn.executemany(f"delete from {table} where {column} = ?", [(i,) for i in image_ids])

    def write_catalog(self, image_id: int, source: str, catalog: str, photo: CatalogPhoto) -> None:
        """A catalog's metadata for one photo's row; its date, when it has one, wins over EXIF."""
        self.conn.execute(
            f"update {IMAGES} set source = ?, catalog = ?, catalog_id = ?, rating = ?, pick = ?, "
            "color_label = ?, title = ?, caption = ?, latitude = coalesce(?, latitude), "
            "longitude = coalesce(?, longitude), camera_make = coalesce(camera_make, ?), "
            "camera_model = coalesce(camera_model, ?) where id = ?",
            (
                source,
                catalog,
                photo.catalog_id,
                photo.rating,
                photo.pick,
                photo.color_label,
                photo.title,
                photo.caption,
                photo.latitude,
                photo.longitude,
                photo.camera_make,
                photo.camera_model,
                image_id,
            ),
        )
        if photo.timestamp is not None:
            self.conn.execute(
                f"update {IMAGES} set taken = ?, timestamp = ?, timestamp_source = 'catalog' where id = ?",
                (photo.taken, photo.timestamp, image_id),
            )
        self.conn.execute(f"delete from {TAGS} where image_id = ? and source = ?", (image_id, source))
        self.conn.executemany(
            f"insert or ignore into {TAGS} (image_id, source, tag) values (?, ?, ?)",
            [(image_id, source, tag) for tag in photo.tags],
        )
        self.conn.execute(f"delete from {ALBUMS} where image_id = ? and source = ?", (image_id, source))
        self.conn.executemany(
            f"insert or ignore into {ALBUMS} (image_id, source, kind, album) values (?, ?, ?, ?)",
            [(image_id, source, kind, name) for kind, name in photo.albums],
        )

    def link_groups(self, catalog: str, leaders: dict[str, str]) -> None:
        """``group_leader`` of each photo, from catalog ids to this database's ids."""
        self.conn.execute(f"update {IMAGES} set group_leader = null where catalog = ?", (catalog,))
        self.conn.executemany(
            f"update {IMAGES} set group_leader = (select id from {IMAGES} where catalog = ? and catalog_id = ?) "
            "where catalog = ? and catalog_id = ?",
            [(catalog, leader, catalog, member) for member, leader in leaders.items()],
        )

    def forget_missing_originals(self, catalog: str) -> None:
        """A catalog's missing originals are checked afresh on every import (its paths may be remapped)."""
        self.conn.execute(f"delete from {IMPORT_ERRORS} where catalog = ?", (catalog,))

    def catalog_rows(self, catalog: str) -> Iterator[tuple[int, str, str]]:
        """(id, catalog id, path) of every photo imported from a catalog."""
        yield from self.conn.execute(
            f"select id, catalog_id, path from {IMAGES} where catalog = ? order by id", (catalog,)
        )

    def save_clustering(self, name: str, params: dict, n_images: int, clusters: list[list[int]]) -> int:
        """Store a clustering under a name (replacing one of that name); returns its id.

        ``params`` holds the clustering parameters and the fingerprint set
        (model, layer, weights); clusters are numbered from 1 in their order.
        """
        with self.transaction():
            previous = self.conn.execute(f"select id from {CLUSTERINGS} where name = ?", (name,)).fetchone()
            if previous is not None:
                self.conn.execute(f"delete from {CLUSTER_MEMBERS} where clustering_id = ?", (previous[0],))
                self.conn.execute(f"delete from {CLUSTERINGS} where id = ?", (previous[0],))
            pca = params.get("pca")
            cursor = self.conn.execute(
                f"insert into {CLUSTERINGS} (name, sim, alpha, method, metric, min_csize, pca, "
                "model, layer, weights, n_images, n_clusters, created_at) "
                "values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    name,
                    params["sim"],
                    params["alpha"],
                    params["method"],
                    params["metric"],
                    params["min_csize"],
                    None if pca is None else str(pca),
                    params["model"],
                    params["layer"],
                    params["weights"],
                    n_images,
                    len(clusters),
                    now(),
                ),
            )
            clustering_id = cursor.lastrowid
            self.conn.executemany(
                f"insert into {CLUSTER_MEMBERS} (clustering_id, cluster, image_id) values (?, ?, ?)",
                [
                    (clustering_id, number, int(image_id))
                    for number, members in enumerate(clusters, start=1)
                    for image_id in members
                ],
            )
        return clustering_id

    def set_verdicts(self, pairs: list[tuple[str, str]], verdict: str | None) -> None:
        """Record a verdict (``same``/``different``) on pairs of photos by content hash; None forgets."""
        keyed = [(min(a, b), max(a, b)) for a, b in pairs]
        with self.transaction():
            if verdict is None:
                self.conn.executemany(f"delete from {VERDICTS} where sha256_a = ? and sha256_b = ?", keyed)
            else:
                self.conn.executemany(
                    f"insert or replace into {VERDICTS} (sha256_a, sha256_b, verdict, created_at) values (?, ?, ?, ?)",
                    [(a, b, verdict, now()) for a, b in keyed],
                )

    def save_tuned(
        self,
        fingerprint_set: tuple[str, str, str],
        params: dict,
        labels: str,
        pairs: int,
        precision: float,
        recall: float,
        f1: float,
        cv_f1: float | None,
    ) -> None:
        """Store tuned parameters as the defaults of one fingerprint set (model, layer, weights)."""
        model, layer, weights = fingerprint_set
        pca = params.get("pca")
        with self.transaction():
            self.conn.execute(
                f"insert or replace into {TUNED_PARAMS} (model, layer, weights, method, metric, alpha, sim, "
                "min_csize, pca, labels, labelled_pairs, precision, recall, f1, cv_f1, tuned_at) "
                "values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    model,
                    layer,
                    weights,
                    params["method"],
                    params["metric"],
                    params["alpha"],
                    params["sim"],
                    params["min_csize"],
                    None if pca is None else str(pca),
                    labels,
                    pairs,
                    precision,
                    recall,
                    f1,
                    cv_f1,
                    now(),
                ),
            )
