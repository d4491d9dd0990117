"""Real photo managers' catalogs built over given photos: a real digiKam database and a real Lightroom
catalog, emptied and filled the way each program writes them, with groups (digiKam) or stacks
(Lightroom). Both are written as made on another machine, so imports map their root.
"""

from __future__ import annotations

import shutil
import sqlite3
import uuid
from pathlib import Path

from .conftest import shared_data

DIGIKAM_ROOT = "/home/alice/Pictures"
LIGHTROOM_ROOT = "/Users/alice/Pictures/"


def digikam_catalog(path: Path, files: list[str], groups: list[list[str]]) -> Path:
    """A digiKam v16 catalog of ``files`` (paths relative to its root), each group's first file its leader."""
    empty = shared_data("digikam_db_samples", "rcw-2_python-digikamdb", "empty-16", "digikam4.db")
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(empty, path)
    conn = sqlite3.connect(path)
    conn.execute(
        "insert into AlbumRoots (id, label, status, type, identifier, specificPath) "
        "values (1, 'Pictures', 0, 1, 'volumeid:?uuid=0000-not-mounted', ?)",
        (DIGIKAM_ROOT,),
    )
    albums: dict[str, int] = {}
    ids: dict[str, int] = {}
    for number, rel in enumerate(files, start=1):
        folder, _, name = ("/" + rel).rpartition("/")
        if folder not in albums:
            albums[folder] = len(albums) + 1
            conn.execute(
                "insert into Albums (id, albumRoot, relativePath) values (?, 1, ?)", (albums[folder], folder or "/")
            )
        conn.execute(
            "insert into Images (id, album, name, status, category) values (?, ?, ?, 1, 1)",
            (number, albums[folder], name),
        )
        ids[rel] = number
    for group in groups:
        leader, *members = group
        conn.executemany(
            "insert into ImageRelations (subject, object, type) values (?, ?, 2)",
            [(ids[m], ids[leader]) for m in members],
        )
    conn.commit()
    conn.close()
    return path


def lightroom_catalog(path: Path, files: list[str], stacks: list[list[str]]) -> Path:
    """A Lightroom Classic 14 catalog of ``files`` (relative to its root folder), stacked as given."""
    source = next(
        shared_data("lightroom_catalogs", "thadd3us_crossfilter", "test_catalogs", "test_catalog_03").glob("*.lrcat")
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):  # the catalog's last changes may still be in its WAL
        if Path(f"{source}{suffix}").exists():
            shutil.copy(f"{source}{suffix}", f"{path}{suffix}")
    conn = sqlite3.connect(path)
    for table in (
        "AgLibraryKeywordImage",
        "AgLibraryCollectionImage",
        "AgLibraryIPTC",
        "AgHarvestedExifMetadata",
        "AgLibraryFolderStackImage",
        "AgLibraryFolderStack",
        "Adobe_images",
        "AgLibraryFile",
        "AgLibraryFolder",
        "AgLibraryRootFolder",
    ):
        conn.execute(f"delete from {table}")
    conn.execute(
        "insert into AgLibraryRootFolder (id_local, id_global, absolutePath, name) values (1, ?, ?, 'Pictures')",
        (str(uuid.uuid4()).upper(), LIGHTROOM_ROOT),
    )
    folders: dict[str, int] = {}
    ids: dict[str, int] = {}
    for number, rel in enumerate(files, start=1):
        folder, _, name = rel.rpartition("/")
        folder = folder + "/" if folder else ""
        if folder not in folders:
            folders[folder] = len(folders) + 1
            conn.execute(
                "insert into AgLibraryFolder (id_local, id_global, pathFromRoot, rootFolder) values (?, ?, ?, 1)",
                (folders[folder], str(uuid.uuid4()).upper(), folder),
            )
        base, _, extension = name.rpartition(".")
        conn.execute(
            "insert into AgLibraryFile (id_local, id_global, baseName, extension, folder, idx_filename, "
            "lc_idx_filename, lc_idx_filenameExtension, originalFilename) values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                number,
                str(uuid.uuid4()).upper(),
                base,
                extension,
                folders[folder],
                name,
                name.lower(),
                extension.lower(),
                name,
            ),
        )
        conn.execute(
            "insert into Adobe_images (id_local, id_global, rootFile, fileFormat, orientation) "
            "values (?, ?, ?, 'JPG', 'AB')",
            (1000 + number, str(uuid.uuid4()).upper(), number),
        )
        ids[rel] = 1000 + number
    for number, stack in enumerate(stacks, start=1):
        conn.execute(
            "insert into AgLibraryFolderStack (id_local, id_global) values (?, ?)", (number, str(uuid.uuid4()).upper())
        )
        conn.executemany(
            "insert into AgLibraryFolderStackImage (image, position, stack) values (?, ?, ?)",
            [(ids[rel], float(position), number) for position, rel in enumerate(stack, start=1)],
        )
    conn.commit()
    conn.execute("pragma wal_checkpoint(truncate)")
    conn.close()
    return path
