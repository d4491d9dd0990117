"""The database both halves share: table names, columns and the schema version.

The importer writes these tables and the Datasette plugin reads them, so this
module is the contract between the two (documented in ``docs/schema.md``).
The version lives in ``PRAGMA user_version`` so that any SQLite tool can read
it, and ``MIGRATIONS`` takes a database from any older version to the current
one. Only writers (the ``imagecluster`` command) call :func:`ensure_schema`;
the plugin only calls :func:`schema_version`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..errors import SchemaError

if TYPE_CHECKING:  # only its type: the hooks import table names from here, and sqlite-utils takes 50 ms to load
    import sqlite_utils

SCHEMA_VERSION = 8

IMAGES = "images"
THUMBNAILS = "thumbnails"
FINGERPRINTS = "fingerprints"
IMPORT_ERRORS = "import_errors"
CLUSTERINGS = "clusterings"
CLUSTER_MEMBERS = "cluster_members"
TAGS = "tags"
ALBUMS = "albums"
VERDICTS = "verdicts"
TUNED_PARAMS = "tuned_params"
CONTENT_SCALES = "content_scales"
PREVIEWS = "previews"
PHOTO_QUALITY = "photo_quality"
KEEPERS = "keepers"


def _create_v1(db: sqlite_utils.Database) -> None:
    db[IMAGES].create(
        {
            "id": int,
            "path": str,
            "folder": str,
            "name": str,
            "size": int,
            "mtime": float,
            "sha256": str,
            "format": str,
            "width": int,
            "height": int,
            "orientation": int,
            "taken": str,
            "timestamp": float,
            "timestamp_source": str,
            "camera_make": str,
            "camera_model": str,
            "latitude": float,
            "longitude": float,
            "exif_error": str,
            "source": str,
            "imported_at": str,
        },
        pk="id",
        if_not_exists=True,
        not_null={"path", "size", "mtime", "sha256", "timestamp", "source"},
    )
    db[IMAGES].create_index(["path"], unique=True, if_not_exists=True)
    db[IMAGES].create_index(["sha256"], if_not_exists=True)
    db[IMAGES].create_index(["size"], if_not_exists=True)
    db[IMAGES].create_index(["timestamp"], if_not_exists=True)
    db[IMAGES].create_index(["folder"], if_not_exists=True)

    db[THUMBNAILS].create(
        {"image_id": int, "jpeg": bytes, "width": int, "height": int},
        pk="image_id",
        if_not_exists=True,
        foreign_keys=[("image_id", IMAGES, "id")],
        not_null={"jpeg", "width", "height"},
    )

    db[FINGERPRINTS].create(
        {
            "image_id": int,
            "model": str,
            "layer": str,
            "weights": str,
            "dims": int,
            "vector": bytes,
            "created_at": str,
        },
        pk=("image_id", "model", "layer", "weights"),
        if_not_exists=True,
        foreign_keys=[("image_id", IMAGES, "id")],
        not_null={"dims", "vector"},
    )
    db[FINGERPRINTS].create_index(["model", "layer", "weights"], if_not_exists=True)

    db[IMPORT_ERRORS].create(
        {
            "path": str,
            "stage": str,
            "message": str,
            "size": int,
            "mtime": float,
            "time": str,
        },
        pk="path",
        if_not_exists=True,
        not_null={"stage", "message"},
    )

    db[CLUSTERINGS].create(
        {
            "id": int,
            "name": str,
            "sim": float,
            "alpha": float,
            "method": str,
            "metric": str,
            "min_csize": int,
            "pca": str,
            "model": str,
            "layer": str,
            "weights": str,
            "n_images": int,
            "n_clusters": int,
            "created_at": str,
        },
        pk="id",
        if_not_exists=True,
        not_null={"name"},
    )
    db[CLUSTERINGS].create_index(["name"], unique=True, if_not_exists=True)

    db[CLUSTER_MEMBERS].create(
        {"clustering_id": int, "cluster": int, "image_id": int},
        pk=("clustering_id", "image_id"),
        if_not_exists=True,
        foreign_keys=[
            ("clustering_id", CLUSTERINGS, "id"),
            ("image_id", IMAGES, "id"),
        ],
        not_null={"cluster"},
    )
    db[CLUSTER_MEMBERS].create_index(["clustering_id", "cluster"], if_not_exists=True)
    db[CLUSTER_MEMBERS].create_index(["image_id"], if_not_exists=True)


def _add_catalogs_v2(db: sqlite_utils.Database) -> None:
    """Photo managers' metadata: which catalog row a photo is, its rating, tags and albums."""
    columns = {
        "catalog": str,
        "catalog_id": str,
        "rating": int,
        "pick": int,
        "color_label": str,
        "title": str,
        "caption": str,
        "group_leader": int,
    }
    existing = db[IMAGES].columns_dict
    for name, kind in columns.items():
        if name not in existing:
            db[IMAGES].add_column(name, kind)
    db[IMAGES].create_index(["catalog", "catalog_id"], if_not_exists=True)
    if "catalog" not in db[IMPORT_ERRORS].columns_dict:
        db[IMPORT_ERRORS].add_column("catalog", str)
    db[TAGS].create(
        {"image_id": int, "source": str, "tag": str},
        pk=("image_id", "source", "tag"),
        foreign_keys=[("image_id", IMAGES, "id")],
        if_not_exists=True,
    )
    db[TAGS].create_index(["tag"], if_not_exists=True)
    db[ALBUMS].create(
        {"image_id": int, "source": str, "kind": str, "album": str},
        pk=("image_id", "source", "kind", "album"),
        foreign_keys=[("image_id", IMAGES, "id")],
        if_not_exists=True,
    )
    db[ALBUMS].create_index(["album"], if_not_exists=True)


def _add_pixel_sources_v3(db: sqlite_utils.Database) -> None:
    """Which pixels a fingerprint was computed from: the file, a RAW's preview, a catalog's preview."""
    existing = db[IMAGES].columns_dict
    for name in ("pixels_from", "pixels_path"):
        if name not in existing:
            db[IMAGES].add_column(name, str)


def _add_verdicts_and_tuning_v4(db: sqlite_utils.Database) -> None:
    """Users' verdicts on pairs of photos, and each fingerprint set's tuned parameters.

    Verdicts are keyed by the photos' content (SHA-256, smaller first), so
    they survive moves, renames and re-imports.
    """
    db[VERDICTS].create(
        {"sha256_a": str, "sha256_b": str, "verdict": str, "created_at": str},
        pk=("sha256_a", "sha256_b"),
        if_not_exists=True,
        not_null={"verdict"},
    )
    db[TUNED_PARAMS].create(
        {
            "model": str,
            "layer": str,
            "weights": str,
            "method": str,
            "metric": str,
            "alpha": float,
            "sim": float,
            "min_csize": int,
            "pca": str,
            "labels": str,
            "labelled_pairs": int,
            "precision": float,
            "recall": float,
            "f1": float,
            "cv_f1": float,
            "tuned_at": str,
        },
        pk=("model", "layer", "weights"),
        if_not_exists=True,
        not_null={"method", "metric", "alpha", "sim", "min_csize"},
    )


def _keep_clustering_history_v5(db: sqlite_utils.Database) -> None:
    """Saving a clustering again adds a version instead of replacing it, so cluster numbers can
    stay stable across saves (``version``; ``last_number``, the highest number any version used,
    so numbers are never reused) and ``imagecluster diff`` can say what changed."""
    existing = db[CLUSTERINGS].columns_dict
    if "version" not in existing:
        db[CLUSTERINGS].add_column("version", int, not_null_default=1)
    if "last_number" not in existing:
        db[CLUSTERINGS].add_column("last_number", int, not_null_default=0)
        db.execute(
            f"update {CLUSTERINGS} set last_number = coalesce((select max(cluster) from {CLUSTER_MEMBERS} "
            f"where clustering_id = {CLUSTERINGS}.id), 0)"
        )
    db.execute(f"drop index if exists idx_{CLUSTERINGS}_name")
    db[CLUSTERINGS].create_index(["name", "version"], unique=True, if_not_exists=True)


def _add_absolute_distances_v6(db: sqlite_utils.Database) -> None:
    """Distances on absolute scales: which distance and time scale (seconds) a saved clustering or a tuning
    used (rows from before were imagecluster's distance), and each fingerprint set's content scale."""
    for table in (CLUSTERINGS, TUNED_PARAMS):
        existing = db[table].columns_dict
        if "distance" not in existing:
            db[table].add_column("distance", str)
            db.execute(f"update {table} set distance = 'imagecluster'")
        if "tau" not in existing:
            db[table].add_column("tau", float)
    db[CONTENT_SCALES].create(
        {"model": str, "layer": str, "weights": str, "metric": str, "scale": float, "photos": int},
        pk=("model", "layer", "weights", "metric"),
        if_not_exists=True,
        not_null={"scale", "photos"},
    )


def _add_previews_v7(db: sqlite_utils.Database) -> None:
    """Larger pictures than the thumbnails, for the page's loupe where the originals are not at hand (a
    published catalog): written by ``imagecluster import --previews PX``."""
    db[PREVIEWS].create(
        {"image_id": int, "jpeg": bytes, "width": int, "height": int},
        pk="image_id",
        if_not_exists=True,
        foreign_keys=[("image_id", IMAGES, "id")],
        not_null={"jpeg", "width", "height"},
    )


def _add_quality_and_keepers_v8(db: sqlite_utils.Database) -> None:
    """Each photo's quality signals, measured at import (what suggests a burst's keeper), and the keepers users
    chose, by content like the verdicts (they survive moves, renames and re-imports)."""
    db[PHOTO_QUALITY].create(
        {
            "image_id": int,
            "sharpness": float,
            "noise": float,
            "highlights": float,
            "shadows": float,
            "brightness": float,
            "compression": float,
            "pixels_sha256": str,
        },
        pk="image_id",
        if_not_exists=True,
        foreign_keys=[("image_id", IMAGES, "id")],
        not_null={"sharpness", "noise", "highlights", "shadows", "brightness", "pixels_sha256"},
    )
    db[PHOTO_QUALITY].create_index(["pixels_sha256"], if_not_exists=True)
    db[KEEPERS].create(
        {"sha256": str, "created_at": str},
        pk="sha256",
        if_not_exists=True,
    )
    existing = db[CLUSTER_MEMBERS].columns_dict
    for column in ("role", "tier"):  # a saved member's part in its cluster (docs/schema.md)
        if column not in existing:
            db[CLUSTER_MEMBERS].add_column(column, str)


# MIGRATIONS[n] takes a database at version n to version n + 1.
MIGRATIONS: list[Callable[[sqlite_utils.Database], None]] = [
    _create_v1,
    _add_catalogs_v2,
    _add_pixel_sources_v3,
    _add_verdicts_and_tuning_v4,
    _keep_clustering_history_v5,
    _add_absolute_distances_v6,
    _add_previews_v7,
    _add_quality_and_keepers_v8,
]
assert len(MIGRATIONS) == SCHEMA_VERSION


def schema_version(conn: sqlite3.Connection) -> int:
    """The schema version recorded in the database (0 for a database we never wrote)."""
    return conn.execute("PRAGMA user_version").fetchone()[0]


def ensure_schema(db: sqlite_utils.Database) -> None:
    """Create or migrate the tables, and switch the database to WAL mode.

    Every step is idempotent (``if_not_exists``) and the version is bumped only
    after a step completes, so an interrupted upgrade simply runs again.
    """
    version = schema_version(db.conn)
    if version > SCHEMA_VERSION:
        raise SchemaError(
            f"this database has schema version {version}, newer than this "
            f"datasette-imagecluster understands ({SCHEMA_VERSION}): upgrade it"
        )
    if version < SCHEMA_VERSION and db.journal_mode != "wal":
        db.enable_wal()
    for step in range(version, SCHEMA_VERSION):
        MIGRATIONS[step](db)
        db.execute(f"PRAGMA user_version = {step + 1}")
