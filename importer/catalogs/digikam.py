"""digiKam's ``digikam4.db`` (schema versions 10 to 16) as a source of photos.

Paths come from AlbumRoots (the identifier says which volume), Albums and
Images; only visible images (status 1, in an album) are taken. The capture
date is digiKam's ``creationDate``: users correct dates in digiKam, so it wins
over the file's EXIF. Tags become hierarchical paths, without digiKam's
internal tags (whose colour and pick labels are read as such).
"""

from __future__ import annotations

import os
import re
from typing import Iterator
from urllib.parse import unquote, urlsplit

from datasette_imagecluster.library.connections import columns, has_tables

from .base import (
    CatalogError,
    CatalogPhoto,
    Preview,
    find_catalog_file,
    map_root,
    open_catalog,
    parse_catalog_datetime,
    under_root,
)

SUPPORTED_VERSIONS = range(10, 17)
INTERNAL = "_Digikam_Internal_Tags_"
MAX_TAG_DEPTH = 64  # levels of tags under tags: far beyond any real hierarchy
PICKS = {"Pick Label Rejected": -1, "Pick Label Pending": 0, "Pick Label Accepted": 1}
COMMENT, TITLE = 1, 3  # ImageComments.type


def _udev_name(value: str) -> str:
    """A filesystem label or UUID as udev names its link in /dev/disk/by-*: unsafe bytes as \\xNN."""
    safe = set("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz#+-.:=@_")
    return "".join(c if c in safe or ord(c) > 127 else f"\\x{ord(c):02x}" for c in value)


def _unescape_mount(field: str) -> str:
    """/proc/mounts writes space, tab, newline and backslash as octal escapes."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def mount_point(kind: str, value: str, disks: str = "/dev/disk", mounts: str = "/proc/self/mounts") -> str | None:
    """Where the volume with this filesystem ``uuid`` or ``label`` is mounted, if it is."""
    link = os.path.join(disks, f"by-{kind}", _udev_name(value))
    if not os.path.exists(link):
        return None
    device = os.path.realpath(link)
    try:
        with open(mounts) as table:
            for line in table:
                fields = line.split()
                if len(fields) < 2:
                    continue
                source = _unescape_mount(fields[0])
                if os.path.exists(source) and os.path.realpath(source) == device:
                    return _unescape_mount(fields[1])
    except OSError:
        return None
    return None


def root_path(identifier: str, specific_path: str) -> str:
    """The folder an AlbumRoot stands for on this machine (before any --root-map).

    Without a trailing "/": the filesystem's root is "", to which the albums'
    relative paths ("/Trips") are appended.
    """
    url = urlsplit(identifier or "")
    query: dict[str, list[str]] = {}
    for part in url.query.split("&"):  # not parse_qs: Qt leaves "+" unencoded, it is no space
        name, _, value = part.partition("=")
        query.setdefault(name, []).append(unquote(value))
    specific = "" if specific_path in (None, "", "/") else specific_path.rstrip("/")
    if url.scheme == "networkshareid":
        mounts = query.get("mountpath", [])
        readable = [m for m in mounts if os.path.isdir(m)]
        return (readable or mounts or [""])[0].rstrip("/")
    if "path" in query:
        return query["path"][0].rstrip("/")
    if "mountpath" in query:
        return query["mountpath"][0].rstrip("/") + specific
    for kind in ("uuid", "label"):
        if kind in query:
            mount = mount_point(kind, query[kind][0]) or "/"
            return mount.rstrip("/") + specific
    return specific


class DigikamCatalog:
    source = "digikam"

    def __init__(self, path: str, root_maps: list[tuple[str, str]]):
        self.path = os.path.abspath(find_catalog_file(path, "digikam4.db"))
        self.root_maps = root_maps
        self.conn, self.snapshot = open_catalog(self.path)
        if not has_tables(self.conn, "AlbumRoots", "Albums", "Images", "Settings"):
            raise CatalogError(f"{self.path} is not a digiKam database (no AlbumRoots, Albums, Images)")
        row = self.conn.execute("select value from Settings where keyword = 'DBVersion'").fetchone()
        try:
            version = int(row[0])
        except (TypeError, ValueError):
            raise CatalogError(f"{self.path} has no digiKam schema version")
        if version not in SUPPORTED_VERSIONS:
            raise CatalogError(f"digiKam schema version {version} is not supported (this reads 10 to 16)")
        self.version = version

    def photos(self) -> Iterator[CatalogPhoto]:
        conn = self.conn
        roots = {
            rid: root_path(identifier, specific)
            for rid, identifier, specific in conn.execute("select id, identifier, specificPath from AlbumRoots")
        }
        tags = self._tags()
        albums = self._albums()
        comments = self._comments()
        leaders = (
            {s: o for s, o in conn.execute("select subject, object from ImageRelations where type = 2")}
            if has_tables(conn, "ImageRelations")
            else {}
        )
        info = "ImageInformation" if has_tables(conn, "ImageInformation") else None
        positions = has_tables(conn, "ImagePositions") and {"latitudeNumber", "longitudeNumber"} <= columns(
            conn, "ImagePositions"
        )
        cameras = (
            {
                image: (make or None, model or None)
                for image, make, model in conn.execute("select imageid, make, model from ImageMetadata")
            }
            if has_tables(conn, "ImageMetadata") and {"make", "model"} <= columns(conn, "ImageMetadata")
            else {}
        )
        query = (
            "select i.id, a.albumRoot, a.relativePath, i.name, "
            + ("ii.creationDate, ii.rating, ii.orientation " if info else "null, null, null ")
            + (", p.latitudeNumber, p.longitudeNumber " if positions else ", null, null ")
            + "from Images i join Albums a on a.id = i.album "
            + ("left join ImageInformation ii on ii.imageid = i.id " if info else "")
            + ("left join ImagePositions p on p.imageid = i.id " if positions else "")
            + "where i.status = 1 and i.album is not null and i.category in (0, 1) order by i.id"
        )
        for image_id, root_id, relative, name, created, rating, orientation, lat, lon in conn.execute(query):
            joined, inside = under_root(roots.get(root_id, ""), relative or "", name or "")
            path = map_root(joined, self.root_maps)
            date = parse_catalog_datetime(created)
            image_tags = [t for t, internal in tags.get(image_id, []) if not internal]
            labels = [t for t, internal in tags.get(image_id, []) if internal]
            title, caption = comments.get(image_id, (None, None))
            make, model = cameras.get(image_id, (None, None))
            yield CatalogPhoto(
                path=path,
                catalog_id=str(image_id),
                leaves_root=not inside,
                taken=date[0] if date else None,
                timestamp=date[1] if date else None,
                rating=rating if isinstance(rating, int) and rating >= 0 else None,
                pick=next((PICKS[t] for t in labels if t in PICKS), None),
                color_label=next(
                    (
                        t[len("Color Label ") :]
                        for t in labels
                        if t.startswith("Color Label ") and t != "Color Label None"
                    ),
                    None,
                ),
                title=title,
                caption=caption,
                latitude=lat,
                longitude=lon,
                tags=image_tags,
                albums=[("album", albums[i]) for i in [image_id] if i in albums],
                group_leader=str(leaders[image_id]) if image_id in leaders else None,
                orientation=orientation if orientation in range(1, 9) else None,
                camera_make=make,
                camera_model=model,
            )

    def _tags(self) -> dict[int, list[tuple[str, bool]]]:
        """(hierarchical path, is internal) per image; internal tags by their own name."""
        if not has_tables(self.conn, "Tags", "ImageTags"):
            return {}
        # A tag that is its own parent, or any loop of parents (a damaged catalog), would recurse forever: a
        # tag is never its own parent here and no path is deeper than MAX_TAG_DEPTH.
        rows = self.conn.execute(
            "with recursive tp(id, path, depth) as ("
            " select id, name, 1 from Tags where pid = 0 and id != 0"
            " union all select t.id, tp.path || '/' || t.name, tp.depth + 1 from Tags t join tp on t.pid = tp.id"
            " where t.id != t.pid and tp.depth < ?)"
            " select it.imageid, tp.path from ImageTags it join tp on tp.id = it.tagid order by tp.path",
            (MAX_TAG_DEPTH,),
        )
        out: dict[int, list[tuple[str, bool]]] = {}
        for image_id, path in rows:
            internal = path == INTERNAL or path.startswith(INTERNAL + "/")
            if internal:
                path = path[len(INTERNAL) + 1 :]  # "Color Label Red", "Pick Label Accepted", ...
            out.setdefault(image_id, []).append((path, internal))
        return out

    def _albums(self) -> dict[int, str]:
        return {
            image_id: relative.strip("/") or "/"
            for image_id, relative in self.conn.execute(
                "select i.id, a.relativePath from Images i join Albums a on a.id = i.album"
            )
        }

    def _comments(self) -> dict[int, tuple[str | None, str | None]]:
        if not has_tables(self.conn, "ImageComments"):
            return {}
        out: dict[int, list] = {}
        for image_id, kind, text in self.conn.execute(
            "select imageid, type, comment from ImageComments where type in (?, ?) "
            "order by (language = 'x-default') desc, id",
            (COMMENT, TITLE),
        ):
            entry = out.setdefault(image_id, [None, None])
            slot = 0 if kind == TITLE else 1
            entry[slot] = entry[slot] or text
        return {k: (v[0], v[1]) for k, v in out.items()}

    def preview(self, photo: CatalogPhoto) -> Preview | None:
        """None: digiKam's only renderings are the thumbnails in its separate thumbnail database
        (mostly PGF-compressed), which this importer does not read."""
        return None

    def close(self) -> None:
        self.conn.close()
