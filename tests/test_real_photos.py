"""Real camera files from ../shared/data (skipped with a reason when absent)."""

from __future__ import annotations

import csv
import os

from importer.exif import parse_exif_datetime
from importer.pipeline import ImportOptions, run_import

from .conftest import connect, invoke, shared_data


def test_holidays_import_every_photo_with_its_date_and_rerun_recomputes_nothing(runner, tmp_path):
    folder = shared_data("holidays_subset")
    with open(folder / "GROUND_TRUTH.csv", newline="") as f:
        truth = {os.path.basename(r["file"]): r for r in csv.DictReader(f)}
    db = tmp_path / "holidays.db"
    first = run_import(str(db), [str(folder)], ImportOptions(weights="none", workers=1))
    assert (first.imported, first.failed) == (69, 0)
    conn = connect(db)
    rows = conn.execute(
        "select name, taken, timestamp_source, camera_model, width, height, sha256 from images"
    ).fetchall()
    assert len(rows) == 69 == len(truth)
    for name, taken, source, camera, width, height, sha256 in rows:
        expected = parse_exif_datetime(truth[name]["exif_datetime_original"])
        if expected is not None:
            assert (taken, source) == (expected[0], "exif:DateTimeOriginal"), name
        else:  # its camera wrote DateTimeOriginal 0000:00:00 00:00:00
            assert source != "exif:DateTimeOriginal"
        assert camera == truth[name]["camera_model"]
        assert {width, height} == {int(truth[name]["stored_width"]), int(truth[name]["stored_height"])}
    conn.close()

    second = run_import(str(db), [str(folder)], ImportOptions(weights="none", workers=1))
    assert (second.imported, second.unchanged, second.model_loaded) == (0, 69, False)

    # Time alone (alpha = 1), photos within an hour of each other (half of tau), recovers most ground-truth bursts.
    out = invoke(runner, "cluster", db, "--alpha", "1", "--tau", "2h", "--sim", "0.5", "--json").output
    import json

    report = json.loads(out[out.index("{") : out.rindex("}") + 1])
    found = {frozenset(os.path.basename(i["path"]) for i in c["images"]) for c in report["clusters"]}
    groups: dict[str, set] = {}
    for name, row in truth.items():
        groups.setdefault(row["group"], set()).add(name)
    expected = {frozenset(g) for g in groups.values() if len(g) > 1}
    assert len(found & expected) >= 0.85 * len(expected)


def test_odd_files_import_or_are_recorded_with_a_reason(tmp_path):
    folder = shared_data("odd_images")
    db = tmp_path / "odd.db"
    summary = run_import(str(db), [str(folder)], ImportOptions(weights="none", workers=1))
    conn = connect(db)
    imported = {os.path.basename(p) for (p,) in conn.execute("select path from images")}
    errors = dict(conn.execute("select path, message from import_errors").fetchall())
    conn.close()
    files = [p for p in folder.rglob("*") if p.is_file()]
    not_ours = [
        p
        for p in files
        if p.suffix.lower()
        not in (".jpg", ".jpeg", ".png", ".gif", ".webp", ".tif", ".tiff", ".bmp", ".mpo", ".avif", ".heif")
    ]
    # Every photo-like file is either a row in images or one in import_errors.
    for path in files:
        if path in not_ours:
            continue
        assert path.name in imported or str(path) in errors, path.name
    assert summary.imported == len(imported) and summary.failed == len(errors)
    assert all(m and "\n" not in m for m in errors.values())
    assert "decompression_bomb.gif" in {os.path.basename(p) for p in errors}
