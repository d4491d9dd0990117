"""Capture times, orientation, camera and GPS, from generated and real camera files."""

from __future__ import annotations

import csv
import io
import random
from datetime import datetime, timezone

import pytest

from importer.exif import parse_exif_datetime, read_capture_info

from .conftest import save_jpeg, scene, shared_data


@pytest.mark.parametrize(
    "value, subsec, offset, taken, timestamp",
    [
        (
            "2021:06:01 10:00:00",
            None,
            None,
            "2021-06-01T10:00:00",
            datetime(2021, 6, 1, 10, tzinfo=timezone.utc).timestamp(),
        ),
        (
            "2021:06:01 10:00:00",
            "25",
            None,
            "2021-06-01T10:00:00.250000",
            datetime(2021, 6, 1, 10, tzinfo=timezone.utc).timestamp() + 0.25,
        ),
        (
            "2021:06:01 10:00:00",
            None,
            "+02:00",
            "2021-06-01T10:00:00+02:00",
            datetime(2021, 6, 1, 8, tzinfo=timezone.utc).timestamp(),
        ),
        (
            "2021:06:01 10:00:00",
            "5",
            "-05:30",
            "2021-06-01T10:00:00.500000-05:30",
            datetime(2021, 6, 1, 15, 30, tzinfo=timezone.utc).timestamp() + 0.5,
        ),
        (
            "2021-06-01T10:00",
            None,
            "Z",
            "2021-06-01T10:00:00+00:00",
            datetime(2021, 6, 1, 10, tzinfo=timezone.utc).timestamp(),
        ),
    ],
)
def test_parse_dates_with_subseconds_and_offsets(value, subsec, offset, taken, timestamp):
    assert parse_exif_datetime(value, subsec, offset) == (taken, pytest.approx(timestamp))


@pytest.mark.parametrize("value", ["0000:00:00 00:00:00", "    :  :     :  :  ", "2021:13:01 10:00:00", "garbage", ""])
def test_invalid_dates_are_rejected(value):
    assert parse_exif_datetime(value) is None


def test_an_unusable_offset_is_ignored_not_fatal():
    assert parse_exif_datetime("2021:06:01 10:00:00", None, "+99:00")[0] == "2021-06-01T10:00:00"


def _info(tmp_path, **exif):
    path = save_jpeg(tmp_path / "x.jpg", scene(1, (64, 48)), **exif)
    with open(path, "rb") as f:
        return read_capture_info(f, mtime=1_000_000_000.0)


def test_original_wins_over_digitized_and_datetime(tmp_path):
    info = _info(
        tmp_path, taken="2020:01:01 00:00:01", digitized="2019:01:01 00:00:00", datetime_="2024:05:05 12:00:00"
    )
    assert (info.taken, info.timestamp_source) == ("2020-01-01T00:00:01", "exif:DateTimeOriginal")


def test_falls_back_to_digitized_then_datetime_then_mtime(tmp_path):
    info = _info(tmp_path, taken="0000:00:00 00:00:00", digitized="2019:01:01 00:00:00")
    assert info.timestamp_source == "exif:DateTimeDigitized"
    info = _info(tmp_path, datetime_="2024:05:05 12:00:00")
    assert (info.taken, info.timestamp_source) == ("2024-05-05T12:00:00", "exif:DateTime")
    info = _info(tmp_path, orientation=1)
    assert info.timestamp_source == "mtime" and info.timestamp == 1_000_000_000.0
    assert datetime.fromisoformat(info.taken).timestamp() == 1_000_000_000.0


def test_offset_and_subseconds_of_the_original_are_honoured(tmp_path):
    info = _info(tmp_path, taken="2021:06:01 10:00:00", subsec="120", offset="+02:00")
    assert info.taken == "2021-06-01T10:00:00.120000+02:00"
    assert info.timestamp == pytest.approx(datetime(2021, 6, 1, 8, tzinfo=timezone.utc).timestamp() + 0.12)


def test_camera_orientation_and_gps(tmp_path):
    info = _info(
        tmp_path, taken="2021:06:01 10:00:00", orientation=6, make="Canon", model="Canon EOS 5D", gps=(48.8583, -2.2945)
    )
    assert (info.orientation, info.camera_make, info.camera_model) == (6, "Canon", "Canon EOS 5D")
    assert info.latitude == pytest.approx(48.8583, abs=1e-4)
    assert info.longitude == pytest.approx(-2.2945, abs=1e-4)


def test_corrupted_exif_never_raises_and_falls_back(tmp_path):
    """Hundreds of randomly damaged EXIF blocks: a result every time, errors in one line."""
    path = save_jpeg(
        tmp_path / "x.jpg", scene(1, (64, 48)), taken="2021:01:01 00:00:00", orientation=6, gps=(1.5, 2.5), make="X"
    )
    data = path.read_bytes()
    start = data.index(b"Exif") + 6
    rng = random.Random(0)
    errors = 0
    for _ in range(400):
        damaged = bytearray(data)
        for _ in range(3):
            damaged[rng.randrange(start, start + 200)] = rng.randrange(256)
        info = read_capture_info(io.BytesIO(bytes(damaged)), mtime=42.0)
        assert 1 <= info.orientation <= 8
        if info.error:
            errors += 1
            assert "\n" not in info.error and info.error.startswith("unreadable EXIF")
            assert info.timestamp_source == "mtime" and info.timestamp == 42.0
    assert errors > 0  # some damage makes exifread raise: those are caught and reported


def test_real_holidays_dates_match_ground_truth():
    folder = shared_data("holidays_subset")
    with open(folder / "GROUND_TRUTH.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        with open(folder / row["file"], "rb") as f:
            info = read_capture_info(f, mtime=0.0)
        expected = parse_exif_datetime(row["exif_datetime_original"])
        if expected is None:  # the one photo whose camera wrote 0000:00:00
            assert info.timestamp_source != "exif:DateTimeOriginal"
        else:
            assert (info.taken, info.timestamp_source) == (expected[0], "exif:DateTimeOriginal")


@pytest.mark.parametrize("n", range(1, 9))
def test_real_orientation_samples(n):
    folder = shared_data("exif_samples", "recurser_exif-orientation-examples")
    for kind in ("Landscape", "Portrait"):
        with open(folder / f"{kind}_{n}.jpg", "rb") as f:
            assert read_capture_info(f, mtime=0.0).orientation == n
