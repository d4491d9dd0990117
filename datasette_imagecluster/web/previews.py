"""The loupe's large picture: the preview stored at import, else the original scaled down, else the thumbnail.

The thumbnail the importer stores is 320 px, too small to judge a photo by.
``imagecluster import --previews PX`` stores a larger one (table ``previews``)
for a catalog published without its originals. Where there is none and the
original is on this machine (the usual ``datasette photos.db`` beside the
library) it is decoded in draft mode straight to about :data:`PREVIEW_SIZE`,
turned as its EXIF orientation says and sent as a JPEG; a few recent ones are
kept in memory, keyed by the file's size and time, so paging back and forth in
the loupe doesn't decode again. A published catalog without its originals, or a
file Pillow can't read (a RAW), gets the thumbnail. Only paths the database
lists are ever opened, and Pillow is optional: without it, thumbnails.
"""

from __future__ import annotations

import hashlib
import io
import os
import sqlite3
from functools import lru_cache

from ..library.connections import has_tables
from ..library.schema import IMAGES, PREVIEWS

PREVIEW_SIZE = 1600  # px, the longer side: a loupe fit to a laptop's screen (1440 x 900) at full sharpness
QUALITY = 80


def stored(conn: sqlite3.Connection, image_id: int) -> bytes | None:
    """The preview ``imagecluster import --previews`` stored for the photo, if any."""
    if not has_tables(conn, PREVIEWS):
        return None
    row = conn.execute(f"select jpeg from {PREVIEWS} where image_id = ?", (image_id,)).fetchone()
    return row[0] if row is not None and isinstance(row[0], bytes) else None


def source(conn: sqlite3.Connection, image_id: int) -> tuple[str, int, float] | None:
    """(file, size, mtime) of the picture a photo's preview is made from (the catalog's rendered preview where
    the importer read its pixels from one), or None for a photo not in the database."""
    if not has_tables(conn, IMAGES):
        return None
    columns = {row[1] for row in conn.execute(f"pragma table_info({IMAGES})")}
    pixels = "pixels_path" if "pixels_path" in columns else "null"
    row = conn.execute(f"select path, {pixels}, size, mtime from {IMAGES} where id = ?", (image_id,)).fetchone()
    if row is None:
        return None
    return (row[1] or row[0], row[2], row[3])


def scaled(row: tuple[str, int, float]) -> tuple[bytes, str] | None:
    """(JPEG, ETag) of the file scaled to :data:`PREVIEW_SIZE`, or None where it can't be read here."""
    path, size, mtime = row
    try:
        stat = os.stat(path)
    except (OSError, ValueError, TypeError):
        return None
    return _scaled(path, stat.st_size, stat.st_mtime)


@lru_cache(maxsize=32)
def _scaled(path: str, size: int, mtime: float) -> tuple[bytes, str] | None:
    try:
        from PIL import Image, ImageOps
    except ImportError:
        return None
    try:
        with Image.open(path) as img:
            img.draft("RGB", (PREVIEW_SIZE, PREVIEW_SIZE))
            picture = ImageOps.exif_transpose(img).convert("RGB")
        picture.thumbnail((PREVIEW_SIZE, PREVIEW_SIZE), Image.Resampling.LANCZOS)
        out = io.BytesIO()
        picture.save(out, "JPEG", quality=QUALITY, optimize=True)
    except Exception:  # noqa: BLE001 (not a picture Pillow reads, truncated, a decompression bomb: the thumbnail)
        return None
    jpeg = out.getvalue()
    return jpeg, '"' + hashlib.sha256(f"{path}|{size}|{mtime}".encode() + jpeg[:64]).hexdigest()[:32] + '"'
