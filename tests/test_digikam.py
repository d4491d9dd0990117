"""``imagecluster import-digikam`` on catalogs built from a real digiKam database."""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3

import pytest

from importer.catalogs.digikam import mount_point, root_path

from .conftest import change, invoke, rows, save_jpeg, scene, shared_data

ARGS = ("--weights", "none", "--workers", "0", "-s")


@pytest.fixture
def catalog(tmp_path):
    """A digiKam v15 catalog (a real empty one, filled) made on another machine.

    Nested albums, tags with digiKam's internal labels, a trashed, a hidden and a
    removed image, a video, a group, a photo whose original is missing.
    """
    empty = shared_data("digikam_db_samples", "rcw-2_python-digikamdb", "empty-15", "digikam4.db")
    path = tmp_path / "catalog" / "digikam4.db"
    path.parent.mkdir()
    shutil.copy(empty, path)
    photos = tmp_path / "Pictures"
    files = {
        "/Trips/burst1.jpg": (1, 0, "2021:06:01 10:00:00"),
        "/Trips/burst2.jpg": (1, 1, "2021:06:01 10:00:05"),
        "/Trips/Normandy/sea.jpg": (2, 0, "2022:01:10 18:30:00"),
        "/home.jpg": (3, 0, "2023:03:03 03:03:03"),
        "/Trips/trashed.jpg": (4, 0, None),
        "/Trips/hidden.jpg": (5, 0, None),
    }
    for rel, (seed, variant, taken) in files.items():
        save_jpeg(photos / rel.lstrip("/"), scene(seed, variant=variant), **({"taken": taken} if taken else {}))
    conn = sqlite3.connect(path)
    conn.executescript("""
        insert into AlbumRoots (id, label, status, type, identifier, specificPath)
            values (1, 'Pictures', 0, 1, 'volumeid:?uuid=0000-not-mounted', '/home/alice/Pictures');
        insert into Albums (id, albumRoot, relativePath) values (1, 1, '/'), (2, 1, '/Trips'),
            (3, 1, '/Trips/Normandy');
        insert into Images (id, album, name, status, category) values
            (1, 2, 'burst1.jpg', 1, 1), (2, 2, 'burst2.jpg', 1, 1), (3, 3, 'sea.jpg', 1, 1),
            (4, 1, 'home.jpg', 1, 1), (5, 2, 'trashed.jpg', 3, 1), (6, 2, 'hidden.jpg', 2, 1),
            (7, null, 'removed.jpg', 3, 1), (8, 2, 'clip.mp4', 1, 2), (9, 2, 'missing.jpg', 1, 1);
        insert into ImageInformation (imageid, rating, creationDate, orientation) values
            (1, 5, '2021-06-01T10:00:00.000', 1), (2, -1, '2021-06-01T10:00:05.500', 1),
            (3, 3, '2022-01-10T18:30:00.000', 1), (4, 0, '1999-12-31T23:59:59.000', 1);
        insert into Tags (id, pid, name) values (100, 0, 'Places'), (101, 100, 'France'),
            (102, 101, 'Normandy'), (103, 0, 'Family'),
            (200, (select id from Tags where name = '_Digikam_Internal_Tags_'), 'Color Label Red'),
            (201, (select id from Tags where name = '_Digikam_Internal_Tags_'), 'Pick Label Accepted');
        insert into ImageTags (imageid, tagid) values (3, 102), (3, 103), (1, 103),
            (1, (select id from Tags where name = 'Color Label Red')),
            (1, (select id from Tags where name = 'Pick Label Accepted'));
        insert into ImageComments (imageid, type, language, comment) values
            (3, 1, 'x-default', 'Waves at dusk'), (3, 3, 'x-default', 'The sea');
        insert into ImagePositions (imageid, latitudeNumber, longitudeNumber) values (3, 49.36, 0.07);
        insert into ImageRelations (subject, object, type) values (2, 1, 2);
    """)
    conn.commit()
    conn.close()
    return path, photos


def test_catalog_imports_visible_photos_with_their_metadata(runner, tmp_path, catalog):
    path, photos = catalog
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    db = tmp_path / "photos.db"
    result = invoke(runner, "import-digikam", db, path, "--root-map", f"/home/alice/Pictures={photos}", *ARGS)
    assert "Imported 4," in result.output and "failed 1" in result.output
    got = {
        r[0]: r[1:]
        for r in rows(
            db,
            "select name, source, catalog_id, taken, timestamp_source, rating, "
            "pick, color_label, title, caption, latitude from images",
        )
    }
    assert set(got) == {"burst1.jpg", "burst2.jpg", "sea.jpg", "home.jpg"}
    assert got["home.jpg"][2:4] == ("1999-12-31T23:59:59", "catalog")  # digiKam's date beats EXIF's
    assert got["burst2.jpg"][2] == "2021-06-01T10:00:05.500000"
    assert got["burst1.jpg"][4:7] == (5, 1, "Red")
    assert got["burst2.jpg"][4] is None  # rating -1: not rated
    assert got["sea.jpg"][7:10] == ("The sea", "Waves at dusk", 49.36)
    assert all(r[0] == "digikam" for r in got.values())
    tags = rows(db, "select i.name, t.tag from tags t join images i on i.id = t.image_id order by 1, 2")
    assert tags == [("burst1.jpg", "Family"), ("sea.jpg", "Family"), ("sea.jpg", "Places/France/Normandy")]
    albums = dict(rows(db, "select i.name, a.album from albums a join images i on i.id = a.image_id"))
    assert albums == {"burst1.jpg": "Trips", "burst2.jpg": "Trips", "sea.jpg": "Trips/Normandy", "home.jpg": "/"}
    assert rows(db, "select m.name, l.name from images m join images l on l.id = m.group_leader") == [
        ("burst2.jpg", "burst1.jpg")
    ]
    errors = rows(db, "select path, message from import_errors")
    assert errors == [(str(photos / "Trips" / "missing.jpg"), "original not found (digikam id 9)")]
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before


def test_reimport_updates_rows_and_a_folder_import_is_the_same_photo(runner, tmp_path, catalog):
    path, photos = catalog
    db = tmp_path / "photos.db"
    maps = ("--root-map", f"/home/alice/Pictures={photos}")
    invoke(runner, "import", db, photos, *ARGS)  # the folder first: six files
    invoke(runner, "import-digikam", db, path, *maps, *ARGS)
    assert rows(db, "select count(*) from images") == [(6,)]  # trashed and hidden stay folder photos
    conn = sqlite3.connect(path)
    conn.execute("update ImageInformation set rating = 2 where imageid = 3")
    conn.execute("delete from ImageTags where imageid = 3 and tagid = 103")
    conn.commit()
    conn.close()
    again = invoke(runner, "import-digikam", db, path, *maps, *ARGS)
    assert "Imported 0, unchanged 4" in again.output
    assert rows(db, "select rating from images where name = 'sea.jpg'") == [(2,)]
    assert rows(db, "select tag from tags join images on id = image_id where name = 'sea.jpg'") == [
        ("Places/France/Normandy",)
    ]
    assert rows(db, "select count(*), count(distinct path) from images") == [(6, 6)]


def test_a_catalog_open_in_digikam_is_read_and_left_alone(runner, tmp_path, catalog):
    path, photos = catalog
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("begin immediate")  # digiKam in the middle of writing
    writer.execute("update Settings set value = value where keyword = 'DBVersion'")
    try:
        result = invoke(
            runner, "import-digikam", tmp_path / "p.db", path, "--root-map", f"/home/alice/Pictures={photos}", *ARGS
        )
        assert "Imported 4," in result.output
    finally:
        writer.execute("rollback")
        writer.close()


@pytest.mark.parametrize(
    "problem, message",
    [
        ("jpeg", "is not an SQLite database"),
        ("plain", "is not a digiKam database"),
        ("version", "digiKam schema version 9 is not supported"),
        ("folder", "no digikam4.db in"),
        ("root-map", "--root-map takes OLD=NEW"),
    ],
)
def test_bad_catalogs_are_one_line_errors(runner, tmp_path, catalog, problem, message):
    path, photos = catalog
    args = []
    if problem == "jpeg":
        path = save_jpeg(tmp_path / "digikam4.db", scene(1, (64, 64)))
    elif problem == "plain":
        path = tmp_path / "plain.db"
        sqlite3.connect(path).execute("create table t (a)").connection.close()
    elif problem == "version":
        change(path, "update Settings set value = '9' where keyword = 'DBVersion'")
    elif problem == "folder":
        path = tmp_path / "empty-folder"
        path.mkdir()
    else:
        args = ["--root-map", "nonsense"]
    result = invoke(runner, "import-digikam", tmp_path / "p.db", path, *args, *ARGS, ok=False)
    assert result.exit_code == 1 and message in result.output
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output


def test_the_real_digikam_testdb_with_a_root_map(runner, tmp_path):
    """The real catalog of three photos; their originals, re-created under its names, via --root-map."""
    real = shared_data("digikam_db_samples", "rcw-2_python-digikamdb", "testdb", "digikam4.db")
    copy = tmp_path / "digikam4.db"
    shutil.copy(real, copy)
    before = copy.read_bytes()
    photos = tmp_path / "Pictures"
    for seed, rel in enumerate(
        ["Calvados_Drouin/20210806_165143.jpg", "Calvados_Drouin/20210806_165416.jpg", "Deauville/IMG39991.JPG"]
    ):
        save_jpeg(photos / rel, scene(seed + 20))
    db = tmp_path / "photos.db"
    invoke(runner, "import-digikam", db, copy, "--root-map", f"/home/testuser/Pictures={photos}", *ARGS)
    got = rows(db, "select name, taken, timestamp_source, rating, caption, title from images order by catalog_id")
    assert got == [
        (
            "20210806_165143.jpg",
            "2021-08-06T16:51:44",
            "catalog",
            None,
            "At the distillery Christian Drouin",
            "The Distillery",
        ),
        (
            "20210806_165416.jpg",
            "2021-08-06T16:54:17",
            "catalog",
            None,
            "At the distillery Christian Drouin",
            "Bottles and Barrels",
        ),
        ("IMG39991.JPG", "2021-08-06T19:29:02", "catalog", 0, "With lots of beautiful boats...", "Deauville Marina"),
    ]
    tags = rows(db, "select group_concat(tag, ',') from tags group by image_id order by image_id")
    assert tags == [("Calvados,France,Normandy",), ("Calvados,France,Normandy",), ("France,Marina,Normandy",)]
    assert copy.read_bytes() == before


@pytest.mark.parametrize(
    "identifier, specific, expected",
    [
        ("volumeid:?path=/srv/My%20Photos", "/", "/srv/My Photos"),
        ("volumeid:?path=/srv/a+b%2541", "/", "/srv/a+b%41"),
        ("volumeid:?mountpath=/media/alice/CARD", "/DCIM", "/media/alice/CARD/DCIM"),
        ("volumeid:?mountpath=/media/alice/CARD", "/", "/media/alice/CARD"),
        ("networkshareid:?mountpath=/nonexistent/nas&mountpath=/tmp/", "/", "/tmp"),  # the first readable one
        ("networkshareid:?mountpath=/nonexistent/a&mountpath=/nonexistent/b", "/", "/nonexistent/a"),
        # A volume that is not mounted here: its path inside the volume, from "/" (map it with --root-map).
        ("volumeid:?uuid=0000-not-mounted", "/home/alice/Pictures", "/home/alice/Pictures"),
        ("volumeid:?label=NOT%20HERE&directoryhash=abc", "/Photos", "/Photos"),
    ],
)
def test_album_root_identifiers(identifier, specific, expected):
    assert root_path(identifier, specific) == expected


@pytest.fixture
def disks(tmp_path):
    """A /dev/disk tree and a mount table as udev and the kernel write them, for two volumes."""
    dev = tmp_path / "dev"
    dev.mkdir()
    for name in ("sdb1", "sdc1"):
        (dev / name).touch()  # stands for the block device
    for kind, name, target in (
        ("uuid", "722b9c6f-0249-4fc2-8acf-d9926bb2995a", "sdb1"),
        ("label", "My\\x20Photos", "sdc1"),
        ("label", "BACKUP", "sdb1"),
    ):
        (dev / "disk" / f"by-{kind}").mkdir(parents=True, exist_ok=True)
        (dev / "disk" / f"by-{kind}" / name).symlink_to(f"../../{target}")
    mounts = tmp_path / "mounts"
    mounts.write_text(
        f"proc /proc proc rw 0 0\n{dev}/sdb1 /mnt/data ext4 rw 0 0\n{dev}/sdc1 /media/alice/My\\040Photos vfat rw 0 0\n"
    )
    return dev / "disk", mounts


@pytest.mark.parametrize(
    "kind, value, expected",
    [
        ("uuid", "722b9c6f-0249-4fc2-8acf-d9926bb2995a", "/mnt/data"),
        ("label", "My Photos", "/media/alice/My Photos"),  # udev's \x20, the kernel's \040
        ("label", "BACKUP", "/mnt/data"),
        ("uuid", "0000-not-mounted", None),
    ],
)
def test_volume_mount_points(disks, kind, value, expected):
    assert mount_point(kind, value, *map(str, disks)) == expected


def test_the_root_filesystem_is_found_by_its_uuid():
    """On this machine, through the real /dev/disk and /proc/self/mounts, when udev made them."""
    by_uuid = "/dev/disk/by-uuid"
    if not os.path.isdir(by_uuid):
        pytest.skip("this machine has no /dev/disk/by-uuid (no udev, e.g. a container)")
    root = os.stat("/").st_dev
    for uuid in os.listdir(by_uuid):
        device = os.path.realpath(os.path.join(by_uuid, uuid))
        if os.path.exists(device) and os.stat(device).st_rdev == root:
            assert mount_point("uuid", uuid) == "/"
            return
    pytest.skip("the root filesystem has no UUID link")


def test_the_catalogs_orientation_wins_and_a_rotation_there_is_picked_up(runner, tmp_path, catalog):
    """Rotating a photo in digiKam (without writing the file) turns its thumbnail and fingerprint."""
    path, photos = catalog
    db = tmp_path / "p.db"
    args = ("import-digikam", db, path, "--root-map", f"/home/alice/Pictures={photos}", *ARGS)

    def rotate(orientation: int) -> None:
        change(path, "update ImageInformation set orientation = ? where imageid = 3", (orientation,))

    def sea() -> tuple:
        (row,) = rows(
            db,
            "select i.orientation, i.width, i.height, t.width, t.height, f.vector from images i "
            "join thumbnails t on t.image_id = i.id join fingerprints f on f.image_id = i.id "
            "where name = 'sea.jpg'",
        )
        return row

    rotate(6)
    invoke(runner, *args)
    turned = sea()
    assert turned[:5] == (6, 360, 480, 240, 320)  # the file says 1 (landscape): digiKam's 6 wins
    assert "Imported 0, unchanged 4," in invoke(runner, *args).output
    rotate(1)
    assert "Imported 1, unchanged 3," in invoke(runner, *args).output
    upright = sea()
    assert upright[:5] == (1, 480, 360, 320, 240) and upright[5] != turned[5]


def test_the_catalogs_camera_fills_in_where_the_file_has_none(runner, tmp_path, catalog):
    path, photos = catalog
    save_jpeg(photos / "Trips" / "burst1.jpg", scene(1), taken="2021:06:01 10:00:00", make="SONY", model="ILCE-7M3")
    change(
        path, "insert into ImageMetadata (imageid, make, model) values (1, 'Sony', 'A7 III'), (3, 'Canon', 'EOS R5')"
    )
    db = tmp_path / "p.db"
    invoke(runner, "import-digikam", db, path, "--root-map", f"/home/alice/Pictures={photos}", *ARGS)
    got = dict(
        (name, (make, model)) for name, make, model in rows(db, "select name, camera_make, camera_model from images")
    )
    assert got["sea.jpg"] == ("Canon", "EOS R5")  # no EXIF camera: digiKam's
    assert got["burst1.jpg"] == ("SONY", "ILCE-7M3")  # the file's own wins
    assert got["home.jpg"] == (None, None)


def test_a_tag_that_is_its_own_parent_does_not_loop(runner, tmp_path, catalog):
    """Issue 26, item 13: a tag with id 0 and pid 0 (or any loop of parents) made the recursive tag query
    endless, its temporary file growing at half a gigabyte a second; the loop's tags are left out, the rest
    read as before."""
    path, photos = catalog
    change(path, "insert into Tags (id, pid, name) values (0, 0, 'Loop')")
    change(path, "insert into Tags (id, pid, name) values (300, 301, 'A'), (301, 300, 'B')")
    change(path, "insert into ImageTags (imageid, tagid) values (3, 0), (3, 300)")
    db = tmp_path / "photos.db"
    result = invoke(runner, "import-digikam", db, path, "--root-map", f"/home/alice/Pictures={photos}", *ARGS)
    assert "Imported 4," in result.output
    tags = [t for (t,) in rows(db, "select tag from tags join images on id = image_id where name = 'sea.jpg'")]
    assert sorted(tags) == ["Family", "Places/France/Normandy"]


def test_an_album_that_climbs_out_of_its_root_is_reported_not_imported(runner, tmp_path, catalog):
    """Issue 26, item 17: an album '/../outside' is normalised, and a photo it would place outside the
    catalog's root is an import error naming it, never a row whose sidecar would be written there."""
    path, photos = catalog
    outside = tmp_path / "outside"
    save_jpeg(outside / "escaped.jpg", scene(40))
    change(path, "insert into Albums (id, albumRoot, relativePath) values (9, 1, '/../outside')")
    change(path, "insert into Albums (id, albumRoot, relativePath) values (10, 1, '/Trips/../Trips/Normandy/..')")
    change(path, "insert into Images (id, album, name, status, category) values (20, 9, 'escaped.jpg', 1, 1)")
    change(path, "insert into Images (id, album, name, status, category) values (21, 10, 'burst1.jpg', 1, 1)")
    db = tmp_path / "photos.db"
    result = invoke(runner, "import-digikam", db, path, "--root-map", f"/home/alice/Pictures={photos}", *ARGS)
    assert "failed 2" in result.output  # the missing original, and the photo outside
    assert rows(db, "select count(*), count(distinct path) from images") == [(4, 4)]  # the normalised album is /Trips
    assert rows(db, "select count(*) from images where path like '%escaped%'") == [(0,)]
    errors = rows(db, "select path, message from import_errors where message like '%leaves%'")
    message = "its folder leaves the catalog's root (digikam id 20): not imported"
    assert errors == [(f"{photos}/../outside/escaped.jpg", message)]
    assert all(".." not in p for (p,) in rows(db, "select path from images"))
