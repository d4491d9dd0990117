"""``imagecluster import-lightroom`` on the real Lightroom Classic catalogs and their photos."""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone

import pytest

from .conftest import invoke, rows, save_jpeg, scene, shared_data

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
    got = {r[0]: r[1:] for r in rows(db, "select name, taken, timestamp_source, rating, color_label, caption, "
                                          "round(latitude, 4), source from images")}
    assert len(got) == 7
    assert got["GoldenGateBridge-001.jpg"] == (
        "2007-01-01T16:41:39", "catalog", None, "Red",
        "The Golden Gate Bridge in San Francisco, CA at sunset.  Taken from Marin.", 37.8275, "lightroom")
    assert got["1_Live_Krone_2013_dth_1.jpg"][:3] == ("2013-12-05T22:14:17.720000", "catalog", 3)
    assert got["Hermann_Hesse_2.jpg"][2:4] == (5, "Blue")
    tags = [t for (t,) in rows(db, "select tag from tags join images on id = image_id "
                                   "where name = 'GoldenGateBridge-001.jpg' order by tag")]
    assert tags == ["bridge", "california", "golden gate bridge", "san francisco", "sunset"]
    nobel = [t for (t,) in rows(db, "select tag from tags where tag like 'Nobelpris/%' order by tag")]
    assert "Nobelpris/Nobelpristagare/Fred" in nobel and "Nobelpris/1961-1970/1964" in nobel
    collections = rows(db, "select a.album, group_concat(i.name, ',') from albums a join images i on i.id = "
                           "a.image_id where a.kind = 'collection' group by a.album order by a.album")
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
    assert rows(db, "select timestamp_source from images where name = '1200px-The_Earth_seen_from_Apollo_17.jpg'"
                ) != [("catalog",)]


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
    (path, message), = rows(db, "select path, message from import_errors")
    assert path == "C:/Users/9999999iiioooooooo/Pictures/IMG-20231202-WA0027.jpg"
    assert message.startswith("original not found (lightroom id ")
    pictures = tmp_path / "Pictures"
    save_jpeg(pictures / "IMG-20231202-WA0027.jpg", scene(30))
    result = invoke(runner, "import-lightroom", db, catalog, "--root-map",
                    f"C:/Users/9999999iiioooooooo/Pictures={pictures}", *ARGS)
    assert "Imported 1," in result.output
    assert rows(db, "select taken, timestamp_source from images") == [("2024-08-21T15:28:08.460000+00:00",
                                                                        "catalog")]
    assert rows(db, "select count(*) from import_errors") == [(0,)]


def test_not_a_lightroom_catalog(runner, tmp_path):
    plain = tmp_path / "x.lrcat"
    import sqlite3

    sqlite3.connect(plain).execute("create table t (a)").connection.close()
    result = invoke(runner, "import-lightroom", tmp_path / "p.db", plain, *ARGS, ok=False)
    assert result.exit_code == 1 and "is not a Lightroom Classic catalog" in result.output
    empty = tmp_path / "folder"
    empty.mkdir()
    result = invoke(runner, "import-lightroom", tmp_path / "p.db", empty, *ARGS, ok=False)
    assert result.exit_code == 1 and "no *.lrcat in" in result.output
