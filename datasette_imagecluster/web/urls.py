"""The plugin's URLs: a database's cluster page and a photo's thumbnail, under the database's route."""

from __future__ import annotations


def thumbnail_url(datasette, database: str, image_id: int) -> str:
    return datasette.urls.path(f"/{route(datasette, database)}/-/cluster/thumbnail/{image_id}.jpg")


def route(datasette, database: str) -> str:
    db = datasette.get_database(database)
    return getattr(db, "route", database)


def cluster_url(datasette, database: str, path: str = "") -> str:
    """``/<route>/-/cluster`` and the pages under it (``path``: ``/save``, ``/similar/12``, ...)."""
    return datasette.urls.path(f"/{route(datasette, database)}/-/cluster{path}")


def preview_url(datasette, database: str, image_id: int) -> str:
    """The photo larger than its thumbnail, for the loupe (:func:`..views.preview_view`)."""
    return cluster_url(datasette, database, f"/preview/{image_id}.jpg")
