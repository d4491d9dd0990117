"""``imagecluster import-lightroom`` on the real Lightroom Classic catalogs and their photos."""

from __future__ import annotations

import hashlib
import io
import shutil
import sqlite3
import struct
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from .conftest import change, invoke, rows, save_jpeg, scene, shared_data

ARGS = ("--weights", "none", "--workers", "0", "-s")
ROOT = "/Users/thad/Library/CloudStorage/Dropbox/thad/gdrive/src/monorepo/thad/lightroom/db_reader/testdata/test_photos"


def crossfilter(name: str):
    base = shared_data("lightroom_catalogs", "thadd3us_crossfilter")
    catalog = next((base / "test_catalogs" / name).glob("*.lrcat"))
    return catalog, base / "test_photos"


def test_real_catalog_with_keywords_collections_ratings_and_gps(runner, tmp_path):
    catalog, photos = crossfilter("test_catalog_03")
    before = hashlib.sha256(catalog.read_bytes()).hexdigest()
    db = tmp_path / "photos.db"
    result = invoke(runner, "import-lightroom", db, catalog, "--root-map", f"{ROOT}={photos}", *ARGS)
    assert "Imported 7," in result.output and "failed 0" in result.output
    got = {
        r[0]: r[1:]
        for r in rows(
            db,
            "select name, taken, timestamp_source, rating, color_label, caption, "
            "round(latitude, 4), source from images",
        )
    }
    assert len(got) == 7
    assert got["GoldenGateBridge-001.jpg"] == (
        "2007-01-01T16:41:39",
        "catalog",
        None,
        "Red",
        "The Golden Gate Bridge in San Francisco, CA at sunset.  Taken from Marin.",
        37.8275,
        "lightroom",
    )
    assert got["1_Live_Krone_2013_dth_1.jpg"][:3] == ("2013-12-05T22:14:17.720000", "catalog", 3)
    assert got["Hermann_Hesse_2.jpg"][2:4] == (5, "Blue")
    tags = [
        t
        for (t,) in rows(
            db, "select tag from tags join images on id = image_id where name = 'GoldenGateBridge-001.jpg' order by tag"
        )
    ]
    assert tags == ["bridge", "california", "golden gate bridge", "san francisco", "sunset"]
    nobel = [t for (t,) in rows(db, "select tag from tags where tag like 'Nobelpris/%' order by tag")]
    assert "Nobelpris/Nobelpristagare/Fred" in nobel and "Nobelpris/1961-1970/1964" in nobel
    collections = rows(
        db,
        "select a.album, group_concat(i.name, ',') from albums a join images i on i.id = "
        "a.image_id where a.kind = 'collection' group by a.album order by a.album",
    )
    assert [c for c, _ in collections] == ["Helden", "Landmarks"]
    assert hashlib.sha256(catalog.read_bytes()).hexdigest() == before


def test_time_zone_aware_capture_times(runner, tmp_path):
    catalog, photos = crossfilter("test_parse_timezone_aware_timestamps")
    db = tmp_path / "photos.db"
    invoke(runner, "import-lightroom", db, catalog, "--root-map", f"{ROOT}={photos}", *ARGS)
    got = dict(rows(db, "select name, timestamp from images where timestamp_source = 'catalog'"))
    utc = lambda *a: datetime(*a, tzinfo=timezone.utc).timestamp()  # noqa: E731
    assert got["1200px-Rathaus_and_Marienplatz_from_Peterskirche_-_August_2006.jpg"] == utc(2020, 6, 1, 1, 45, 58)
    assert got["Hermann_Hesse_2.jpg"] == utc(2020, 6, 1, 0, 49, 28)  # +01:00
    assert got["Martin_Luther_King,_Jr..jpg"] == utc(2020, 6, 1, 8, 50, 2)  # -07:00
    assert got["GoldenGateBridge-001.jpg"] == utc(2007, 1, 1, 16, 41, 36)  # naive: read as UTC
    # No captureTime at all: the photo's own EXIF or file time is kept.
    assert rows(db, "select timestamp_source from images where name = '1200px-The_Earth_seen_from_Apollo_17.jpg'") != [
        ("catalog",)
    ]


def test_reimport_of_an_edited_catalog_updates_rows(runner, tmp_path):
    first, photos = crossfilter("test_catalog_01")
    later, _ = crossfilter("test_catalog_03")
    db = tmp_path / "photos.db"
    maps = ("--root-map", f"{ROOT}={photos}")
    invoke(runner, "import-lightroom", db, first, *maps, *ARGS)
    assert rows(db, "select count(*) from images") == [(5,)]
    invoke(runner, "import", db, photos, *ARGS)  # the same photos through their folder: no duplicates
    assert rows(db, "select count(*) from images") == [(7,)]
    invoke(runner, "import-lightroom", db, later, *maps, *ARGS)
    assert rows(db, "select count(*), count(distinct path) from images") == [(7, 7)]
    assert rows(db, "select rating from images where name = 'Hermann_Hesse_2.jpg'") == [(5,)]


def test_windows_catalog_through_a_root_map(runner, tmp_path):
    catalog = shared_data("lightroom_catalogs", "Toseris_LITA_Class_Documentation", "Lightroom Catalog.lrcat")
    db = tmp_path / "photos.db"
    missing = invoke(runner, "import-lightroom", db, catalog, *ARGS, ok=False)
    assert missing.exit_code == 1 and "nothing could be read" in missing.output
    ((path, message),) = rows(db, "select path, message from import_errors")
    assert path == "C:/Users/9999999iiioooooooo/Pictures/IMG-20231202-WA0027.jpg"
    assert message.startswith("original not found (lightroom id ")
    pictures = tmp_path / "Pictures"
    save_jpeg(pictures / "IMG-20231202-WA0027.jpg", scene(30))
    result = invoke(
        runner, "import-lightroom", db, catalog, "--root-map", f"C:/Users/9999999iiioooooooo/Pictures={pictures}", *ARGS
    )
    assert "Imported 1," in result.output
    assert rows(db, "select taken, timestamp_source from images") == [("2024-08-21T15:28:08.460000+00:00", "catalog")]
    assert rows(db, "select count(*) from import_errors") == [(0,)]


def test_not_a_lightroom_catalog(runner, tmp_path):
    plain = tmp_path / "x.lrcat"
    sqlite3.connect(plain).execute("create table t (a)").connection.close()
    result = invoke(runner, "import-lightroom", tmp_path / "p.db", plain, *ARGS, ok=False)
    assert result.exit_code == 1 and "is not a Lightroom Classic catalog" in result.output
    empty = tmp_path / "folder"
    empty.mkdir()
    result = invoke(runner, "import-lightroom", tmp_path / "p.db", empty, *ARGS, ok=False)
    assert result.exit_code == 1 and "no *.lrcat in" in result.output


UUID = "3829E5FC-7F3F-4B22-94F3-FB5E2C796026"
DIGEST = "07cc63f155500a902b21fef7be6585b5"


def _jpeg(img) -> bytes:
    out = io.BytesIO()
    img.save(out, "JPEG", quality=90)
    return out.getvalue()


def _block(name: str, data: bytes) -> bytes:
    """One AgHg block: magic, header length, version, data length, padding length, name; data; padding."""
    padding = -len(data) % 16
    header = struct.pack(">4sH2sQQ8s", b"AgHg", 32, b"\0\0", len(data), padding, name.encode())
    return header + data + b"\0" * padding


def _previews(catalog, image_id: int, look, orientation: str = "AB", layout: str = "lrprev"):
    """A copy of the catalog with a ``Previews.lrdata`` holding one photo's preview in ``layout``."""
    lrdata = catalog.parent / f"{catalog.stem} Previews.lrdata"
    bucket = lrdata / UUID[0] / UUID[:4]
    bucket.mkdir(parents=True)
    conn = sqlite3.connect(lrdata / "previews.db")
    conn.executescript("""
        create table ImageCacheEntry (imageId NOT NULL, uuid NOT NULL, digest NOT NULL, orientation);
        create table Pyramid (uuid NOT NULL, digest NOT NULL, colorProfile NOT NULL, fileTimeStamp,
            quality NOT NULL, croppedWidth NOT NULL, croppedHeight NOT NULL, pyramidFileTimeStamp,
            fingerprint, fromProxy);
    """)
    conn.execute("insert into ImageCacheEntry values (?, ?, ?, ?)", (float(image_id), UUID, DIGEST[:16], orientation))
    conn.execute("insert into Pyramid values (?, ?, 'AdobeRGB', 0, 1.0, ?, ?, 0, null, 0)", (UUID, DIGEST, *look.size))
    conn.commit()
    conn.close()
    levels = [look.resize((look.width // f, look.height // f)) for f in (8, 4, 1)]
    if layout == "lrprev":
        header = f'pyramid = {{ digest = "{DIGEST}", uuid = "{UUID}", levels = {{ ... }} }}'.encode()
        data = _block("header", header) + b"".join(
            _block(f"level_{n}", _jpeg(level)) for n, level in enumerate(levels, 1)
        )
        (bucket / f"{UUID}-{DIGEST}.lrprev").write_bytes(data)
        # A stale rendering (older develop settings) must not be picked.
        (bucket / f"{UUID}-{'0' * 32}.lrprev").write_bytes(_block("level_1", _jpeg(scene(99))))
    else:  # one file per level, named by its long edge, a header before the JPEG
        for level in levels:
            (bucket / f"{UUID}-{DIGEST}_{max(level.size)}").write_bytes(b"AdobeHeader\0" * 3 + _jpeg(level))
    return lrdata


@pytest.fixture
def windows_catalog(tmp_path):
    """The real Windows catalog, copied, whose one original (id 422) is not on this machine."""
    real = shared_data("lightroom_catalogs", "Toseris_LITA_Class_Documentation", "Lightroom Catalog.lrcat")
    catalog = tmp_path / "lr" / "Lightroom Catalog.lrcat"
    catalog.parent.mkdir()
    shutil.copy(real, catalog)
    return catalog


@pytest.mark.parametrize("layout", ["lrprev", "levels"])
def test_a_preview_stands_in_for_a_missing_original(runner, tmp_path, windows_catalog, layout):
    look = scene(31, (600, 400))
    lrdata = _previews(windows_catalog, 422, look, orientation="BC", layout=layout)
    change(
        windows_catalog,
        "insert into AgInternedExifCameraModel (id_local, searchIndex, value) values (9001, '', 'Pixel 7')",
    )
    change(windows_catalog, "update AgHarvestedExifMetadata set cameraModelRef = 9001 where image = 422")
    before = hashlib.sha256((lrdata / "previews.db").read_bytes()).hexdigest()
    db = tmp_path / "photos.db"
    result = invoke(runner, "import-lightroom", db, windows_catalog, *ARGS)
    assert "Imported 1," in result.output and "failed 0" in result.output
    assert "1 photo(s) were fingerprinted from Lightroom's previews" in result.output
    ((path, fmt, pixels_from, pixels_path, taken, orientation, width, height),) = rows(
        db, "select path, format, pixels_from, pixels_path, taken, orientation, width, height from images"
    )
    assert path == "C:/Users/9999999iiioooooooo/Pictures/IMG-20231202-WA0027.jpg" and fmt == "JPG"
    assert pixels_from == "lightroom-preview"
    assert pixels_path.startswith(str(lrdata / UUID[0] / UUID[:4] / f"{UUID}-{DIGEST}"))
    assert taken == "2024-08-21T15:28:08.460000+00:00"
    assert (orientation, width, height) == (6, 400, 600)  # BC: turned upright, portrait
    assert rows(db, "select camera_model from images") == [("Pixel 7",)]  # the preview has no EXIF: the catalog's
    ((thumb,),) = rows(db, "select jpeg from thumbnails")
    upright = look.transpose(Image.Transpose.ROTATE_270).resize((213, 320))
    shown = Image.open(io.BytesIO(thumb)).convert("RGB")
    assert shown.size == (213, 320)
    assert np.abs(np.asarray(shown, float) - np.asarray(upright, float)).mean() < 10
    assert rows(db, "select count(*) from import_errors") == [(0,)]
    assert hashlib.sha256((lrdata / "previews.db").read_bytes()).hexdigest() == before

    again = invoke(runner, "import-lightroom", db, windows_catalog, *ARGS)
    assert "Imported 0, unchanged 1," in again.output

    # The original turns up: its own pixels replace the preview's.
    pictures = tmp_path / "Pictures"
    save_jpeg(pictures / "IMG-20231202-WA0027.jpg", scene(32))
    found = invoke(
        runner,
        "import-lightroom",
        db,
        windows_catalog,
        "--root-map",
        f"C:/Users/9999999iiioooooooo/Pictures={pictures}",
        *ARGS,
    )
    assert "Imported 1," in found.output
    assert rows(db, "select pixels_from, pixels_path, format from images") == [("file", None, "JPEG")]
    assert rows(db, "select count(*) from fingerprints") == [(1,)]


def test_a_preview_stands_in_for_an_undecodable_original(runner, tmp_path, windows_catalog):
    _previews(windows_catalog, 422, scene(33))
    pictures = tmp_path / "Pictures"
    pictures.mkdir()
    (pictures / "IMG-20231202-WA0027.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 500)
    db = tmp_path / "photos.db"
    maps = ("--root-map", f"C:/Users/9999999iiioooooooo/Pictures={pictures}")
    invoke(runner, "import-lightroom", db, windows_catalog, *maps, *ARGS)
    ((pixels_from, sha256),) = rows(db, "select pixels_from, sha256 from images")
    assert pixels_from == "lightroom-preview"
    assert sha256 == hashlib.sha256((pictures / "IMG-20231202-WA0027.jpg").read_bytes()).hexdigest()
    assert "unchanged 1," in invoke(runner, "import-lightroom", db, windows_catalog, *maps, *ARGS).output


def test_an_unreadable_preview_is_a_clear_error(runner, tmp_path, windows_catalog):
    lrdata = _previews(windows_catalog, 422, scene(34))
    lrprev = lrdata / UUID[0] / UUID[:4] / f"{UUID}-{DIGEST}.lrprev"
    lrprev.write_bytes(lrprev.read_bytes()[:300])  # cut inside a block
    db = tmp_path / "photos.db"
    invoke(runner, "import-lightroom", db, windows_catalog, *ARGS, ok=False)
    ((message,),) = rows(db, "select message from import_errors")
    assert (
        message == "original not found; its Lightroom preview is unreadable too: truncated Lightroom preview "
        "(block 'level_1')"
    )


def test_a_moved_library_keeps_its_rows_without_decoding_again(runner, tmp_path):
    catalog, photos = crossfilter("test_catalog_03")
    db = tmp_path / "photos.db"
    invoke(runner, "import-lightroom", db, catalog, "--root-map", f"{ROOT}={photos}", *ARGS)
    before = rows(db, "select id, catalog_id, sha256 from images order by id")
    moved = tmp_path / "new-disk" / "photos"
    shutil.copytree(photos, moved)  # copies keep their mtimes
    result = invoke(runner, "import-lightroom", db, catalog, "--root-map", f"{ROOT}={moved}", *ARGS)
    assert "Imported 0, unchanged 7," in result.output
    assert rows(db, "select id, catalog_id, sha256 from images order by id") == before
    assert all(path.startswith(str(moved)) for (path,) in rows(db, "select path from images"))


def test_a_catalog_lightroom_has_locked_is_read_from_a_snapshot(runner, tmp_path):
    """Lightroom keeps its catalog under an exclusive lock while it runs: readers get a copy."""
    real, photos = crossfilter("test_catalog_03")
    catalog = tmp_path / "lr" / real.name
    catalog.parent.mkdir()
    shutil.copy(real, catalog)
    lightroom = sqlite3.connect(catalog, isolation_level=None)
    lightroom.execute("pragma locking_mode = exclusive")
    lightroom.execute("begin exclusive")
    lightroom.execute("update Adobe_images set rating = rating")
    lightroom.execute("commit")  # the exclusive lock stays until Lightroom quits
    try:
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            sqlite3.connect(f"file:{catalog}?mode=ro", uri=True, timeout=0.1).execute(
                "select count(*) from sqlite_master"
            )
        before = hashlib.sha256(catalog.read_bytes()).hexdigest()
        snapshots = set(Path(tempfile.gettempdir()).glob("imagecluster-catalog-*"))
        result = invoke(runner, "import-lightroom", tmp_path / "p.db", catalog, "--root-map", f"{ROOT}={photos}", *ARGS)
        assert "is locked by the program using it: reading a snapshot copy" in result.output
        assert "Imported 7," in result.output
        assert rows(tmp_path / "p.db", "select rating from images where name = 'Hermann_Hesse_2.jpg'") == [(5,)]
        assert hashlib.sha256(catalog.read_bytes()).hexdigest() == before
        assert set(Path(tempfile.gettempdir()).glob("imagecluster-catalog-*")) == snapshots  # copy removed
    finally:
        lightroom.close()


def test_lightroom_orientation_codes_turn_the_photo(runner, tmp_path):
    real, photos = crossfilter("test_catalog_03")
    catalog = tmp_path / real.name
    shutil.copy(real, catalog)
    change(
        catalog,
        "update Adobe_images set orientation = 'BC' where rootFile = "
        "(select id_local from AgLibraryFile where baseName = 'GoldenGateBridge-001')",
    )
    db = tmp_path / "photos.db"
    invoke(runner, "import-lightroom", db, catalog, "--root-map", f"{ROOT}={photos}", *ARGS)
    ((orientation, width, height),) = rows(
        db, "select orientation, width, height from images where name = 'GoldenGateBridge-001.jpg'"
    )
    with Image.open(photos / "GoldenGateBridge-001.jpg") as original:
        assert original.width > original.height
        assert (orientation, width, height) == (6, original.height, original.width)


def test_ratings_a_catalog_could_not_hold_are_left_out_not_a_traceback(runner, tmp_path):
    """Issue 26, item 14: a rating of 1e300 (or any beyond Lightroom's 1 to 5 stars) stopped the import with an
    OverflowError; the photo is imported without a rating, the others with theirs."""
    original, photos = crossfilter("test_catalog_03")
    catalog = tmp_path / "catalog.lrcat"
    shutil.copy(original, catalog)
    change(catalog, "update Adobe_images set rating = 1e300 where rating = 5")
    change(catalog, "update Adobe_images set rating = 'many', pick = 1e300 where rating = 3")
    db = tmp_path / "photos.db"
    result = invoke(runner, "import-lightroom", db, catalog, "--root-map", f"{ROOT}={photos}", *ARGS)
    assert "Imported 7," in result.output and "failed 0" in result.output
    assert rows(db, "select rating from images where name = 'Hermann_Hesse_2.jpg'") == [(None,)]
    assert rows(db, "select rating, pick from images where name = '1_Live_Krone_2013_dth_1.jpg'") == [(None, None)]


def test_a_folder_that_climbs_out_of_its_root_is_reported_not_imported(runner, tmp_path):
    """Issue 26, item 17: a folder '../outside/' would put photos (and their sidecars) outside the catalog's
    root: each is an import error, and the folders that stay inside import as before."""
    original, photos = crossfilter("test_catalog_03")
    catalog = tmp_path / "catalog.lrcat"
    shutil.copy(original, catalog)
    change(
        catalog,
        "insert into AgLibraryFolder (id_local, id_global, pathFromRoot, rootFolder) select 999, 'OUTSIDE', "
        "'../outside/', rootFolder from AgLibraryFolder where id_local = "
        "(select folder from AgLibraryFile where baseName = 'Hermann_Hesse_2')",
    )
    change(catalog, "update AgLibraryFile set folder = 999 where baseName = 'Hermann_Hesse_2'")
    db = tmp_path / "photos.db"
    result = invoke(runner, "import-lightroom", db, catalog, "--root-map", f"{ROOT}={photos}", *ARGS)
    assert "Imported 6," in result.output and "failed 1" in result.output
    errors = rows(db, "select path, message from import_errors")
    assert len(errors) == 1 and errors[0][0].endswith("/../outside/Hermann_Hesse_2.jpg")
    assert errors[0][1].startswith("its folder leaves the catalog's root (lightroom id ")
    assert rows(db, "select count(*) from images where name = 'Hermann_Hesse_2.jpg'") == [(0,)]
