"""The schema: created once, versioned, foreign keys and indexes as documented."""

from __future__ import annotations

import sqlite3

import pytest
import sqlite_utils

from datasette_imagecluster.errors import SchemaError
from datasette_imagecluster.library.schema import SCHEMA_VERSION, ensure_schema, schema_version

from .conftest import invoke


def test_ensure_schema_is_idempotent_and_versioned(tmp_path):
    db = sqlite_utils.Database(tmp_path / "x.db")
    ensure_schema(db)
    ensure_schema(db)
    assert schema_version(db.conn) == SCHEMA_VERSION
    assert set(db.table_names()) == {
        "images",
        "thumbnails",
        "fingerprints",
        "import_errors",
        "clusterings",
        "cluster_members",
        "tags",
        "albums",
        "verdicts",
        "tuned_params",
        "content_scales",
        "previews",
        "photo_quality",
        "keepers",
    }
    assert db["images"].columns_dict["timestamp"] is float
    assert db["fingerprints"].columns_dict["vector"] is bytes
    assert db["fingerprints"].pks == ["image_id", "model", "layer", "weights"]
    assert {fk.other_table for fk in db["fingerprints"].foreign_keys} == {"images"}
    assert {tuple(i.columns) for i in db["images"].indexes} >= {("path",), ("sha256",), ("timestamp",)}
    assert db.journal_mode == "wal"


def test_a_newer_schema_is_refused_with_one_line(runner, tmp_path, photo_folder):
    path = tmp_path / "future.db"
    conn = sqlite3.connect(path)
    conn.execute(f"pragma user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(SchemaError, match="newer than this"):
        ensure_schema(sqlite_utils.Database(path))
    result = invoke(runner, "import", path, photo_folder, "--weights", "none", ok=False)
    assert result.exit_code == 1 and "upgrade it" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_a_version_1_database_is_migrated_forward(tmp_path):
    """A database written by schema version 1 gains the catalog and pixel-source columns, keeping its rows."""
    from datasette_imagecluster.library.schema import MIGRATIONS

    db = sqlite_utils.Database(tmp_path / "v1.db")
    MIGRATIONS[0](db)
    db.execute("pragma user_version = 1")
    db["images"].insert(
        {"path": "/a.jpg", "size": 1, "mtime": 0.0, "sha256": "x", "timestamp": 0.0, "source": "folder"}
    )
    db["clusterings"].insert({"id": 1, "name": "trips", "sim": 0.5, "alpha": 0.3, "n_clusters": 1})
    db["cluster_members"].insert({"clustering_id": 1, "cluster": 3, "image_id": 1})
    ensure_schema(db)
    assert schema_version(db.conn) == SCHEMA_VERSION == 8
    # A clustering saved before v5 is its first version, its numbers counted as used; saved before v6, it was
    # made with imagecluster's distance, and says so.
    assert list(db.query("select name, version, last_number, distance, tau from clusterings")) == [
        {"name": "trips", "version": 1, "last_number": 3, "distance": "imagecluster", "tau": None}
    ]
    assert {
        "catalog",
        "catalog_id",
        "rating",
        "pick",
        "color_label",
        "title",
        "caption",
        "group_leader",
        "pixels_from",
        "pixels_path",
    } <= set(db["images"].columns_dict)
    assert {"tags", "albums", "photo_quality", "keepers"} <= set(db.table_names())
    # Saved before v8, a member has no role in its cluster: the next save gives one.
    assert list(db.query("select cluster, role, tier from cluster_members")) == [
        {"cluster": 3, "role": None, "tier": None}
    ]
    assert db.execute("select path, pixels_from from images").fetchall() == [("/a.jpg", None)]
