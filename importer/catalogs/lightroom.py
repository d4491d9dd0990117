"""Lightroom Classic's ``.lrcat`` as a source of photos.

A photo's path is AgLibraryRootFolder.absolutePath + AgLibraryFolder.pathFromRoot
+ AgLibraryFile.baseName + "." + extension (Windows roots use forward
slashes: map them with ``--root-map``). Virtual copies share one file and
are fingerprinted once, through their master. captureTime is ISO text,
naive local time or with ``Z``/``+HH:MM`` (then converted to UTC). When an
original is missing or cannot be decoded, the catalog's own preview stands in
(see :mod:`.lightroom_previews`).
"""

from __future__ import annotations

import os
from typing import Iterator

from datasette_imagecluster.library.connections import has_tables

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
from .lightroom_previews import ORIENTATIONS, LightroomPreviews

REQUIRED = ("Adobe_images", "AgLibraryFile", "AgLibraryFolder", "AgLibraryRootFolder")
REGULAR_COLLECTION = "com.adobe.ag.library.collection"


def join_path(root: str, folder: str, base: str, extension: str) -> tuple[str, bool]:
    """Lightroom's separator-less concatenation, tolerant of a missing or doubled '/', normalised, and whether it
    stays under the root (:func:`.catalog.under_root`)."""
    return under_root(root, folder, f"{base}.{extension}" if extension else base)


def _number(value) -> int | None:
    """A catalog's number as a whole number SQLite can store; None for none, text, NaN or one out of range."""
    try:
        number = None if value is None else int(float(value))
    except (TypeError, ValueError, OverflowError):
        return None
    return number if number is not None and -(2**63) <= number < 2**63 else None


class LightroomCatalog:
    source = "lightroom"

    def __init__(self, path: str, root_maps: list[tuple[str, str]]):
        self.path = os.path.abspath(find_catalog_file(path, "catalog", suffix=".lrcat"))
        self.root_maps = root_maps
        self.conn, self.snapshot = open_catalog(self.path)
        if not has_tables(self.conn, *REQUIRED):
            raise CatalogError(f"{self.path} is not a Lightroom Classic catalog (no Adobe_images)")
        self.previews = LightroomPreviews(self.path)

    def photos(self) -> Iterator[CatalogPhoto]:
        conn = self.conn
        keywords = self._keywords()
        collections = self._collections()
        captions = (
            dict(conn.execute("select image, caption from AgLibraryIPTC where caption <> ''"))
            if has_tables(conn, "AgLibraryIPTC")
            else {}
        )
        gps = (
            {
                image: (lat, lon)
                for image, lat, lon in conn.execute(
                    "select image, gpsLatitude, gpsLongitude from AgHarvestedExifMetadata where hasGPS = 1"
                )
            }
            if has_tables(conn, "AgHarvestedExifMetadata")
            else {}
        )
        cameras = (
            dict(
                conn.execute(
                    "select e.image, m.value from AgHarvestedExifMetadata e "
                    "join AgInternedExifCameraModel m on m.id_local = e.cameraModelRef where m.value <> ''"
                )
            )
            if has_tables(conn, "AgHarvestedExifMetadata", "AgInternedExifCameraModel")
            else {}
        )
        leaders = self._stack_leaders()
        # One row per file: the master, not its virtual copies.
        rows = conn.execute(
            "select i.id_local, r.absolutePath, fo.pathFromRoot, fi.baseName, fi.extension, i.captureTime, "
            "i.rating, i.pick, i.colorLabels, i.orientation from Adobe_images i "
            "join AgLibraryFile fi on fi.id_local = i.rootFile "
            "join AgLibraryFolder fo on fo.id_local = fi.folder "
            "join AgLibraryRootFolder r on r.id_local = fo.rootFolder "
            "where i.masterImage is null order by i.id_local"
        )
        for image, root, folder, base, extension, captured, rating, pick, color, orientation in rows:
            date = parse_catalog_datetime(captured)
            lat, lon = gps.get(image, (None, None))
            folder_name = (folder or "").strip("/")
            joined, inside = join_path(root or "", folder or "", base or "", extension or "")
            yield CatalogPhoto(
                path=map_root(joined, self.root_maps),
                catalog_id=str(image),
                leaves_root=not inside,
                taken=date[0] if date else None,
                timestamp=date[1] if date else None,
                rating=_number(rating) if _number(rating) in range(1, 6) else None,  # Lightroom's 1 to 5 stars
                pick=_number(pick) if _number(pick) else None,
                color_label=color or None,
                caption=captions.get(image),
                latitude=lat,
                longitude=lon,
                tags=keywords.get(image, []),
                albums=[("collection", c) for c in collections.get(image, [])] + [("folder", folder_name or "/")],
                group_leader=leaders.get(image),
                orientation=ORIENTATIONS.get(str(orientation or "").upper()),
                camera_model=cameras.get(image),  # Lightroom keeps no make
            )

    def _keywords(self) -> dict[int, list[str]]:
        """Keyword paths per image, as '/'-joined hierarchies under the invisible root."""
        if not has_tables(self.conn, "AgLibraryKeyword", "AgLibraryKeywordImage"):
            return {}
        rows = self.conn.execute(
            "with recursive kp(id, path) as ("
            " select id_local, name from AgLibraryKeyword"
            "  where parent = (select id_local from AgLibraryKeyword where parent is null) and name is not null"
            " union all select k.id_local, kp.path || '/' || k.name from AgLibraryKeyword k"
            "  join kp on k.parent = kp.id where k.name is not null)"
            " select ki.image, kp.path from AgLibraryKeywordImage ki join kp on kp.id = ki.tag order by kp.path"
        )
        out: dict[int, list[str]] = {}
        for image, path in rows:
            out.setdefault(image, []).append(path)
        return out

    def _collections(self) -> dict[int, list[str]]:
        if not has_tables(self.conn, "AgLibraryCollection", "AgLibraryCollectionImage"):
            return {}
        out: dict[int, list[str]] = {}
        for image, name in self.conn.execute(
            "select ci.image, c.name from AgLibraryCollectionImage ci "
            "join AgLibraryCollection c on c.id_local = ci.collection "
            "where c.creationId = ? and coalesce(c.systemOnly, 0) in (0, '0', 0.0) order by c.name",
            (REGULAR_COLLECTION,),
        ):
            out.setdefault(image, []).append(name)
        return out

    def _stack_leaders(self) -> dict[int, str]:
        """Stack members -> the top of their stack (lowest position), as catalog ids."""
        if not has_tables(self.conn, "AgLibraryFolderStackImage"):
            return {}
        stacks: dict[int, list[tuple[float, int]]] = {}
        for stack, image, position in self.conn.execute("select stack, image, position from AgLibraryFolderStackImage"):
            try:
                order = float(position)
            except (TypeError, ValueError):
                order = float("inf")
            stacks.setdefault(stack, []).append((order, image))
        leaders: dict[int, str] = {}
        for members in stacks.values():
            members.sort()
            top = members[0][1]
            for _, image in members[1:]:
                leaders[image] = str(top)
        return leaders

    def preview(self, photo: CatalogPhoto) -> Preview | None:
        """The largest preview in ``<catalog> Previews.lrdata``, if Lightroom rendered one."""
        return self.previews.find(photo.catalog_id)

    def close(self) -> None:
        self.conn.close()
