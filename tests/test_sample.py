"""``imagecluster sample``: a first run without photos of one's own and without internet, ready for Datasette.

The real pretrained model (EfficientNet-Lite0, the default) on scikit-image's
real photographs: the sample's bursts and its stereo pair are its clusters.
"""

from __future__ import annotations

import json

import pytest

from importer.sample import BURSTS, LONERS

from .conftest import invoke, rows

pytest.importorskip("skimage", reason="the sample photos come with scikit-image (the importer extra)")


def test_the_sample_imports_offline_and_its_bursts_are_its_clusters(runner, tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))  # nothing downloaded, nothing at hand
    db = tmp_path / "photos.db"
    result = invoke(runner, "sample", db, "--workers", "0")
    assert "Sample: 26 photos in" in result.output and "Imported 26, unchanged 0" in result.output
    assert f"Browse them: datasette {db}" in result.output and "random weights" not in result.output
    assert rows(db, "select count(*), count(distinct date(taken)) from images where timestamp_source like 'exif%'") == [
        (26, 9)
    ]
    report = json.loads(invoke(runner, "cluster", db, "--json").stdout)  # the shipped defaults
    found = sorted(sorted(image["path"].rsplit("/", 1)[-1] for image in c["images"]) for c in report["clusters"])
    expected = sorted(
        [[f"{name}-{k}.jpg" for k in (1, 2, 3)] for name, _ in BURSTS] + [["motorcycle-1.jpg", "motorcycle-2.jpg"]]
    )
    assert found == expected and report["n_images"] == 26 and report["n_clustered"] == 26 - len(LONERS)
    again = invoke(runner, "sample", db, "--workers", "0")  # the same files again: nothing to do
    assert "Imported 0, unchanged 26" in again.output


def test_a_folder_that_holds_other_files_is_left_alone(runner, tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "holiday.jpg").write_bytes(b"my own photo")
    result = invoke(runner, "sample", tmp_path / "p.db", "--folder", folder, ok=False)
    assert result.exit_code == 1 and len(result.output.strip().splitlines()) == 1
    assert "holds other files (holiday.jpg" in result.output
    assert (folder / "holiday.jpg").read_bytes() == b"my own photo" and len(list(folder.iterdir())) == 1
