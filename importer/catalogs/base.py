"""What photo managers' catalogs have in common: read-only access, root maps, dates.

A catalog source yields :class:`CatalogPhoto` rows: a path to the original and
the metadata the user curated (date, rating, tags, albums, groups). The
import treats the paths like a folder walk's files and stores the metadata
beside them. Catalogs are only ever opened read-only.
"""

from __future__ import annotations

import os
import posixpath
import re
import shutil
import sqlite3
import tempfile
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Protocol

from datasette_imagecluster.errors import ImageclusterError
from datasette_imagecluster.library.connections import connect_read_only

from ..exif import parse_exif_datetime


class CatalogError(ImageclusterError):
    """The catalog cannot be read; the message says why, in one line."""


@dataclass
class CatalogPhoto:
    path: str
    catalog_id: str
    taken: str | None = None
    timestamp: float | None = None
    rating: int | None = None
    pick: int | None = None
    color_label: str | None = None
    title: str | None = None
    caption: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    tags: list[str] = field(default_factory=list)
    albums: list[tuple[str, str]] = field(default_factory=list)  # (kind, name)
    group_leader: str | None = None  # catalog id of the photo this one is grouped behind
    orientation: int | None = None  # EXIF orientation as the catalog has it: users rotate photos there
    camera_make: str | None = None  # fill in where the file has none (e.g. a preview for a missing original)
    camera_model: str | None = None
    leaves_root: bool = False  # its folder climbs out of the catalog's root ('..'): reported, never read


def under_root(root: str, *parts: str) -> tuple[str, bool]:
    """``root`` joined with a catalog's relative ``parts`` ('/'-separated), normalised, and whether it stays
    under the root: ``/../outside`` in an album or ``../outside/`` in a folder would put a sidecar elsewhere."""
    relative = posixpath.normpath("/".join(p.strip("/") for p in parts if p and p.strip("/")) or ".")
    inside = relative != ".." and not relative.startswith("../")
    return root.rstrip("/") + ("" if relative == "." else "/" + relative), inside


@dataclass(frozen=True)
class Preview:
    """A catalog's own rendering of a photo, read when the original is missing or unreadable."""

    path: str
    orientation: int  # the EXIF orientation that shows it upright


class Catalog(Protocol):
    source: str  # "digikam", "lightroom"
    path: str
    snapshot: bool  # read from a copy, the catalog being locked by its program

    def close(self) -> None: ...

    def photos(self) -> Iterator[CatalogPhoto]: ...

    def preview(self, photo: CatalogPhoto) -> Preview | None: ...


LOCK_WAIT = 3.0  # seconds to wait out another program's write before reading a snapshot


class CatalogLocked(CatalogError):
    """The program holding the catalog keeps readers out (Lightroom Classic does, while it runs)."""


def open_read_only(path: str) -> sqlite3.Connection:
    """A read-only connection that never writes a byte, even while the program has the catalog open."""
    try:
        return connect_read_only(path, timeout=LOCK_WAIT)
    except FileNotFoundError:
        raise CatalogError(f"{path} does not exist") from None
    except sqlite3.DatabaseError as e:
        raise _catalog_error(path, e) from None


def _catalog_error(path: str, e: sqlite3.DatabaseError) -> CatalogError:
    if "not a database" in str(e) or "file is encrypted" in str(e):
        return CatalogError(f"{path} is not an SQLite database")
    if "locked" in str(e) or "busy" in str(e):
        return CatalogLocked(f"{path} is locked by another program; close it or try again")
    return CatalogError(f"cannot read {path}: {e}")


class _Snapshot(sqlite3.Connection):
    """A connection to a private copy of a catalog, deleted with the connection."""

    def close(self) -> None:
        super().close()
        self.cleanup()


def open_catalog(path: str) -> tuple[sqlite3.Connection, bool]:
    """The catalog read-only, or (True) a snapshot of it when its program locks readers out.

    SQLite's locks are advisory: the file's bytes can still be read, and
    between the program's transactions they are a consistent catalog, which
    ``quick_check`` confirms. The catalog itself is never opened for writing.
    """
    try:
        return open_read_only(path), False
    except CatalogLocked:
        pass
    folder = tempfile.mkdtemp(prefix="imagecluster-catalog-")
    try:
        copy = os.path.join(folder, "catalog.db")
        shutil.copyfile(path, copy)
        if os.path.exists(path + "-wal"):
            shutil.copyfile(path + "-wal", copy + "-wal")
        conn = sqlite3.connect(copy, factory=_Snapshot)
        conn.cleanup = weakref.finalize(conn, shutil.rmtree, folder, True)
        if conn.execute("pragma quick_check").fetchone()[0] != "ok":
            conn.close()
            raise CatalogError(f"{path} is locked and was being written; try again in a moment")
        return conn, True
    except OSError as e:
        shutil.rmtree(folder, ignore_errors=True)
        raise CatalogError(f"{path} is locked and cannot be copied: {e.strerror or e}") from None
    except sqlite3.DatabaseError as e:
        shutil.rmtree(folder, ignore_errors=True)
        raise _catalog_error(path, e) from None


def parse_root_maps(values: tuple[str, ...] | list[str]) -> list[tuple[str, str]]:
    """``OLD=NEW`` pairs, longest OLD first, for catalogs made on another machine or mount."""
    maps = []
    for value in values:
        old, sep, new = value.partition("=")
        if not sep or not old:
            raise CatalogError(f"--root-map takes OLD=NEW, not {value!r}")
        maps.append((old.rstrip("/\\") or old, new.rstrip("/\\") or new))
    return sorted(maps, key=lambda m: -len(m[0]))


def map_root(path: str, maps: list[tuple[str, str]]) -> str:
    """Apply the first matching map (at a path boundary); Windows separators become '/'."""
    for old, new in maps:
        if path == old or path.startswith(old.rstrip("/\\") + "/") or path.startswith(old.rstrip("/\\") + "\\"):
            rest = path[len(old.rstrip("/\\")) :].replace("\\", "/")
            return new + rest
    return path


_DATE = re.compile(
    r"^(?P<date>[0-9:\-/.]+[ T]+\d{1,2}:\d{2}(?::\d{2})?)(?:\.(?P<frac>\d+))?\s*"
    r"(?P<zone>Z|[+-]\d{2}:?\d{2})?\s*$"
)


def parse_catalog_datetime(text: str | None) -> tuple[str, float] | None:
    """ISO-like catalog dates: naive local, fractional seconds, ``Z`` or ``+HH:MM`` offsets."""
    if not text:
        return None
    m = _DATE.match(str(text).strip())
    if not m:
        return None
    return parse_exif_datetime(m.group("date"), m.group("frac"), m.group("zone"))


def find_catalog_file(path: str, name: str, suffix: str | None = None) -> str:
    """The catalog file itself, given it or the folder holding it."""
    p = Path(path)
    if p.is_dir():
        candidates = [p / name] if suffix is None else sorted(p.glob(f"*{suffix}"))
        candidates = [c for c in candidates if c.is_file()]
        if not candidates:
            raise CatalogError(f"no {name if suffix is None else '*' + suffix} in {path}")
        return str(candidates[0])
    return str(p)
