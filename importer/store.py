"""Where a decoded photo becomes rows: images, thumbnails, previews, quality signals, fingerprints, import_errors.

Every write happens inside :meth:`Store.transaction`, and the pipeline writes
one batch per transaction: an image row, its thumbnail and its fingerprint
land together or not at all, so an import killed at any moment leaves no
orphans, and a re-run finds the committed photos unchanged.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timezone

import sqlite_utils

from datasette_imagecluster.library import scales
from datasette_imagecluster.library.connections import require_transaction, write_transaction
from datasette_imagecluster.library.fingerprints import FingerprintKey, fingerprint_sets
from datasette_imagecluster.library.schema import (
    ALBUMS,
    CLUSTER_MEMBERS,
    FINGERPRINTS,
    IMAGES,
    IMPORT_ERRORS,
    PHOTO_QUALITY,
    PREVIEWS,
    TAGS,
    THUMBNAILS,
    ensure_schema,
)

from .catalogs.base import CatalogPhoto
from .decode import DECODER_ROTATED, Decoded
from .folders import FileEntry, Problem


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@contextmanager
def one_import_at_a_time(db_path: str, waiting: Callable[[], None]) -> Iterator[None]:
    """Hold the database for one import: a second import waits until the first ends (``waiting()`` says so once).

    Two at once raced on the schema's migration and on the same photos' rows ("duplicate column name",
    "UNIQUE constraint failed"). The lock is an advisory one on a small file beside the database
    (``.NAME.imagecluster-lock``), released when the import ends or its process dies. Where there is no
    ``fcntl`` (Windows), or the folder takes no new file (then the database can't be written either), nothing is
    locked.
    """
    try:
        import fcntl
    except ImportError:
        yield
        return
    folder, name = os.path.split(os.path.abspath(db_path))
    try:
        lock = open(os.path.join(folder, f".{name}.imagecluster-lock"), "a")
    except OSError:
        yield
        return
    with lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            waiting()
            fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


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

    def refresh_scale(self, key: FingerprintKey) -> None:
        """Store the set's content scale if it has none or has outgrown it (:mod:`.library.scales`)."""
        self._writing()
        for found in fingerprint_sets(self.conn):
            if found.key == key:
                scales.refresh(self.conn, found)

    def close(self) -> None:
        if self.db.journal_mode == "wal":
            self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self.conn.close()

    def transaction(self) -> AbstractContextManager:
        """One write transaction, taken at once (``BEGIN IMMEDIATE``): every write method runs inside one."""
        return write_transaction(self.conn)

    def _writing(self) -> None:
        require_transaction(self.conn)

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

    def has_signals(self, image_id: int) -> bool:
        return (
            self.conn.execute(f"select 1 from {PHOTO_QUALITY} where image_id = ?", (image_id,)).fetchone() is not None
        )

    def has_preview(self, image_id: int) -> bool:
        return self.conn.execute(f"select 1 from {PREVIEWS} where image_id = ?", (image_id,)).fetchone() is not None

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
        self._writing()
        self.db[IMPORT_ERRORS].insert(
            {
                "path": problem.path,
                "stage": problem.stage,
                "message": problem.message,
                "size": problem.size,
                "mtime": problem.mtime,
                "time": now(),
                "catalog": problem.catalog,
            },
            replace=True,
        )

    def write_decoded(self, item: Decoded, key: FingerprintKey, vector: bytes | None) -> int:
        """Insert or update the photo's row, thumbnail, signals and fingerprint (None: it has it); its id."""
        self._writing()
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
            image_id = self.db[IMAGES].insert(values).last_pk
        else:
            image_id = previous.id
            self.db[IMAGES].update(image_id, values)
            if previous.sha256 != item.sha256:
                # New content: every fingerprint of the old content is stale.
                self.conn.execute(f"delete from {FINGERPRINTS} where image_id = ?", (image_id,))
        self.db[THUMBNAILS].insert(
            {
                "image_id": image_id,
                "jpeg": item.thumbnail,
                "width": item.thumbnail_width,
                "height": item.thumbnail_height,
            },
            replace=True,
        )
        if item.preview is not None:
            self.db[PREVIEWS].insert(
                {
                    "image_id": image_id,
                    "jpeg": item.preview,
                    "width": item.preview_width,
                    "height": item.preview_height,
                },
                replace=True,
            )
        if item.signals is not None:
            self.db[PHOTO_QUALITY].insert({"image_id": image_id, **asdict(item.signals)}, replace=True)
        else:  # none measured this time: an older content's would mislead
            self.conn.execute(f"delete from {PHOTO_QUALITY} where image_id = ?", (image_id,))
        if vector is not None:
            self.write_fingerprint(image_id, key, vector)
        self.conn.execute(f"delete from {IMPORT_ERRORS} where path = ?", (item.path,))
        return image_id

    def write_fingerprint(self, image_id: int, key: FingerprintKey, vector: bytes) -> None:
        self.db[FINGERPRINTS].insert(
            {
                "image_id": image_id,
                "model": key.model,
                "layer": key.layer,
                "weights": key.weights,
                "dims": len(vector) // 4,
                "vector": vector,
                "created_at": now(),
            },
            replace=True,
        )

    def move(self, image: KnownImage, entry: FileEntry) -> None:
        """The same photo under a new path: keep its row, thumbnail and fingerprints."""
        self._writing()
        self.db[IMAGES].update(
            image.id,
            {
                "path": entry.path,
                "folder": os.path.dirname(entry.path),
                "name": os.path.basename(entry.path),
                "size": entry.size,
                "mtime": entry.mtime,
            },
        )
        self.conn.execute(f"delete from {IMPORT_ERRORS} where path = ?", (entry.path,))

    def copy(self, image: KnownImage, entry: FileEntry) -> int:
        """A second file with the content of a known photo: copy its rows, no decoding."""
        self._writing()
        columns = [c for c in _IMAGE_COLUMNS if c not in ("path", "folder", "name", "mtime", "imported_at")]
        cursor = self.conn.execute(
            f"insert into {IMAGES} (path, folder, name, mtime, imported_at, {', '.join(columns)}) "
            f"select ?, ?, ?, ?, ?, {', '.join(columns)} from {IMAGES} where id = ?",
            (entry.path, os.path.dirname(entry.path), os.path.basename(entry.path), entry.mtime, now(), image.id),
        )
        new_id = cursor.lastrowid
        for table in (THUMBNAILS, PREVIEWS, PHOTO_QUALITY):
            columns = ", ".join(c for c in self.db[table].columns_dict if c != "image_id")
            self.conn.execute(
                f"insert into {table} (image_id, {columns}) select ?, {columns} from {table} where image_id = ?",
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
        self._writing()
        self.db[IMAGES].update(
            image_id, {"path": path, "folder": os.path.dirname(path), "name": os.path.basename(path)}
        )

    def touch(self, image: KnownImage, entry: FileEntry) -> None:
        """Same content, new size or mtime (e.g. copied back from a backup)."""
        self._writing()
        self.db[IMAGES].update(image.id, {"size": entry.size, "mtime": entry.mtime})

    def delete_images(self, image_ids: list[int]) -> None:
        self._writing()
        for table, column in (
            (CLUSTER_MEMBERS, "image_id"),
            (TAGS, "image_id"),
            (ALBUMS, "image_id"),
            (FINGERPRINTS, "image_id"),
            (THUMBNAILS, "image_id"),
            (PREVIEWS, "image_id"),
            (PHOTO_QUALITY, "image_id"),
            (IMAGES, "id"),
        ):
            self.conn.executemany(f"delete from {table} where {column} = ?", [(i,) for i in image_ids])

    def write_catalog(self, image_id: int, source: str, catalog: str, photo: CatalogPhoto) -> None:
        """A catalog's metadata for one photo's row; its date, when it has one, wins over EXIF."""
        self._writing()
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
        self._writing()
        self.conn.execute(f"update {IMAGES} set group_leader = null where catalog = ?", (catalog,))
        self.conn.executemany(
            f"update {IMAGES} set group_leader = (select id from {IMAGES} where catalog = ? and catalog_id = ?) "
            "where catalog = ? and catalog_id = ?",
            [(catalog, leader, catalog, member) for member, leader in leaders.items()],
        )

    def forget_missing_originals(self, catalog: str) -> None:
        """A catalog's missing originals are checked afresh on every import (its paths may be remapped)."""
        self._writing()
        self.conn.execute(f"delete from {IMPORT_ERRORS} where catalog = ?", (catalog,))

    def catalog_rows(self, catalog: str) -> Iterator[tuple[int, str, str]]:
        """(id, catalog id, path) of every photo imported from a catalog."""
        yield from self.conn.execute(
            f"select id, catalog_id, path from {IMAGES} where catalog = ? order by id", (catalog,)
        )
