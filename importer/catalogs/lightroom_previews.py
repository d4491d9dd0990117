"""Lightroom's rendered previews, a stand-in for originals that are missing or unreadable.

Beside ``NAME.lrcat`` Lightroom keeps ``NAME Previews.lrdata/``: ``previews.db``
maps a catalog image (``ImageCacheEntry.imageId``) to a preview ``uuid``, and
the pixels live in ``<uuid[0]>/<uuid[:4]>/``, in one of two layouts:

* ``<uuid>-<digest>.lrprev``: the whole pyramid in one file, a run of blocks,
  each ``AgHg``, a big-endian header length (u16), two version bytes, the data
  length (u64), the padding length (u64) and a NUL-padded name (``header``,
  then ``level_1`` ... ``level_N``, smallest first), then the data (a JPEG for
  each level) and the padding;
* ``<uuid>-<digest>_<long edge>``: one file per level, a JPEG after a header.

Both readings follow public descriptions of the format; no Lightroom previews
are among this project's test data, so the tests build files to that layout.
Previews are stored as the camera recorded the photo; the orientation code
next to them (``AB`` upright, ``BC`` 90 degrees clockwise, ``CD`` 180,
``DA`` 90 counter-clockwise) says how to show them upright.
"""

from __future__ import annotations

import os
import re
import sqlite3
import struct

from datasette_imagecluster.errors import ImageclusterError
from datasette_imagecluster.library.connections import columns, has_tables

from .base import CatalogError, Preview, open_catalog

MAGIC = b"AgHg"
_BLOCK = struct.Struct(">4sH2sQQ")  # magic, header length, version, data length, padding length
_LEVEL_FILE = re.compile(r"^(?P<uuid>[0-9A-Fa-f-]{36})-(?P<digest>[0-9a-fA-F]+)(?:_(?P<edge>\d+)|\.lrprev)$")
# Lightroom's orientation codes -> EXIF orientation (the mirrored codes are not documented).
ORIENTATIONS = {"AB": 1, "BC": 6, "CD": 3, "DA": 8}


class PreviewError(ImageclusterError):
    """A preview file that holds no usable JPEG; the message says why."""


def previews_folder(catalog_path: str) -> str:
    """``/x/NAME.lrcat`` -> ``/x/NAME Previews.lrdata``."""
    stem, _ = os.path.splitext(catalog_path)
    return f"{stem} Previews.lrdata"


class LightroomPreviews:
    """The preview cache of one catalog, if it has one (read-only, like the catalog)."""

    def __init__(self, catalog_path: str):
        self.folder = previews_folder(catalog_path)
        self.entries: dict[str, tuple[str, str | None, int]] = {}  # image id -> (uuid, digest, orientation)
        database = os.path.join(self.folder, "previews.db")
        if not os.path.isfile(database):
            return
        try:
            conn, _ = open_catalog(database)  # Lightroom locks it while it runs
        except CatalogError:
            return  # a broken cache only means no stand-ins: the originals are still read
        try:
            self.entries = _read_entries(conn)
        except sqlite3.DatabaseError:
            self.entries = {}
        finally:
            conn.close()

    def __bool__(self) -> bool:
        return bool(self.entries)

    def find(self, image_id: str) -> Preview | None:
        """The largest preview on disk of this catalog image, or None."""
        entry = self.entries.get(image_id)
        if entry is None:
            return None
        uuid, digest, orientation = entry
        bucket = os.path.join(self.folder, uuid[:1], uuid[:4])
        try:
            names = os.listdir(bucket)
        except OSError:
            return None
        candidates = []
        for name in names:
            m = _LEVEL_FILE.match(name)
            if not m or m["uuid"].upper() != uuid.upper():
                continue
            current = digest is None or m["digest"].lower() == digest.lower()
            edge = int(m["edge"]) if m["edge"] else float("inf")  # a .lrprev holds every level
            candidates.append((current, edge, name))
        if not candidates:
            return None
        return Preview(os.path.join(bucket, max(candidates)[2]), orientation)


def _read_entries(conn: sqlite3.Connection) -> dict[str, tuple[str, str | None, int]]:
    if not has_tables(conn, "ImageCacheEntry"):
        return {}
    # ImageCacheEntry.digest may be cut short; Pyramid has the whole one that names the files.
    digests = (
        dict(conn.execute("select uuid, digest from Pyramid"))
        if has_tables(conn, "Pyramid") and {"uuid", "digest"} <= columns(conn, "Pyramid")
        else {}
    )
    orientation = "orientation" if "orientation" in columns(conn, "ImageCacheEntry") else "null"
    entries = {}
    for image_id, uuid, code in conn.execute(f"select imageId, uuid, {orientation} from ImageCacheEntry"):
        try:
            key = str(int(float(image_id)))  # stored as REAL by some versions: 3084000.0
        except (TypeError, ValueError):
            continue
        if isinstance(uuid, str) and len(uuid) == 36:
            entries[key] = (uuid, digests.get(uuid), ORIENTATIONS.get(str(code or "AB").upper(), 1))
    return entries


def preview_jpeg(path: str) -> bytes:
    """The largest JPEG in a preview file."""
    with open(path, "rb") as f:
        data = f.read()
    if data.startswith(MAGIC):
        levels = [block for name, block in _blocks(data) if name.startswith("level_")]
        if not levels:
            raise PreviewError("Lightroom preview without image levels")
        return max(levels, key=len)
    start = data.find(b"\xff\xd8\xff")
    if start < 0:
        raise PreviewError("no JPEG data in this Lightroom preview")
    return data[start:]


def _blocks(data: bytes) -> list[tuple[str, bytes]]:
    blocks = []
    offset = 0
    while offset + _BLOCK.size <= len(data):
        magic, header_length, _, length, padding = _BLOCK.unpack_from(data, offset)
        if magic != MAGIC or header_length < _BLOCK.size:
            raise PreviewError(f"damaged Lightroom preview (no block at byte {offset})")
        name = data[offset + _BLOCK.size : offset + header_length].rstrip(b"\0").decode("ascii", "replace")
        start = offset + header_length
        if start + length > len(data):
            raise PreviewError(f"truncated Lightroom preview (block {name!r})")
        blocks.append((name, data[start : start + length]))
        offset = start + length + padding
    return blocks
