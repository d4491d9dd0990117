"""Saved clusterings remember: stable cluster numbers across saves, history, and what changed."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import sqlite_utils

from datasette_imagecluster.api import Photos
from datasette_imagecluster.library.changes import diff
from datasette_imagecluster.library.saved import load_version, save, versions
from datasette_imagecluster.library.schema import ensure_schema
from datasette_imagecluster.library.vectors import encode

from .conftest import invoke, shared_data

PARAMS = {"sim": 0.5, "alpha": 0.3, "method": "ward", "metric": "euclidean", "min_csize": 2, "pca": None}
SET = {"model": "vgg16", "layer": "fc2", "weights": "random-seed-0"}

# Time alone, as a share of the library's span: imagecluster's distance, whose cuts these saves were written for.
IMAGECLUSTER = ("--distance", "imagecluster")


def database(path, n: int, timestamps=None) -> sqlite_utils.Database:
    """An imagecluster database with n photos' rows (ids 1..n), no files."""
    db = sqlite_utils.Database(path)
    ensure_schema(db)
    times = [float(i) for i in range(1, n + 1)] if timestamps is None else [float(t) for t in timestamps]
    db["images"].insert_all(
        {
            "id": i,
            "path": f"/p/{i}.jpg",
            "size": 1,
            "mtime": 0.0,
            "sha256": str(i),
            "timestamp": times[i - 1],
            "source": "folder",
        }
        for i in range(1, n + 1)
    )
    return db


def test_a_scripted_sequence_of_saves_keeps_numbers_and_says_what_changed(tmp_path):
    db = database(tmp_path / "photos.db", 30)
    first = [[1, 2, 3], [4, 5], [6, 7, 8, 9, 22], [10, 11, 23], [12, 13], [14, 15, 16], [20, 21]]
    v1 = save(db.conn, "trips", {**PARAMS, **SET}, 30, first)
    assert v1.clusters() == {n: set(c) for n, c in enumerate(first, start=1)} and v1.version == 1
    second = [
        [1, 2, 3],  # unchanged: keeps 1
        [4, 5, 17],  # grew: keeps 2
        [6, 7, 8],  # the larger part of 3's split keeps 3 ...
        [9, 22],  # ... the smaller gets a new number
        [10, 11, 23, 12, 13],  # 4 and 5 merged: the larger overlap keeps 4
        [14, 15],  # shrank: keeps 6
        [18, 19],  # new
    ]  # 7 ({20, 21}) dissolved
    v2 = save(db.conn, "trips", {**PARAMS, **SET}, 30, second)
    expected = {1: {1, 2, 3}, 2: {4, 5, 17}, 3: {6, 7, 8}, 8: {9, 22}, 4: {10, 11, 12, 13, 23}, 6: {14, 15}}
    assert v2.clusters() == {**expected, 9: {18, 19}}  # 5 and 7 are never reused
    changes = diff(v1, v2)
    assert changes.counts() == {
        "unchanged": 1,
        "grew": 1,
        "shrank": 1,
        "changed": 0,
        "split": 1,
        "merged": 1,
        "new": 1,
        "dissolved": 1,
    }
    by_kind = {c.kind: c for c in changes.changes}
    assert (by_kind["grew"].before, by_kind["grew"].added) == ([2], [17])
    assert (by_kind["split"].before, by_kind["split"].after, by_kind["split"].removed) == ([3], [3, 8], [9, 22])
    assert (by_kind["merged"].before, by_kind["merged"].after, by_kind["merged"].added) == ([4, 5], [4], [12, 13])
    assert (by_kind["shrank"].before, by_kind["shrank"].removed) == ([6], [16])
    assert (by_kind["new"].after, by_kind["dissolved"].before) == ([9], [7])
    assert changes.moved() == [9, 12, 13, 16, 17, 18, 19, 20, 21, 22]
    # Saved again unchanged: the same numbers, nothing to report; a new cluster gets a number never used.
    v3 = save(db.conn, "trips", {**PARAMS, **SET}, 30, [*second, [24, 25]])
    assert v3.clusters() == v2.clusters() | {10: {24, 25}}
    assert diff(v2, v3).counts()["unchanged"] == 7 and diff(v2, v3).counts()["new"] == 1
    assert versions(db.conn, "trips") == [1, 2, 3]
    assert load_version(db.conn, "trips", 1).clusters() == v1.clusters()  # history is kept


def test_imagecluster_diff_on_real_saves(db_path, runner):
    once = invoke(runner, "diff", str(db_path), "bursts", ok=False)
    assert once.exit_code == 1 and "no clustering named 'bursts'" in once.output
    invoke(runner, "cluster", str(db_path), *IMAGECLUSTER, "--sim", "0.95", "--alpha", "1", "--save", "bursts")
    once = invoke(runner, "diff", str(db_path), "bursts", ok=False)
    assert once.exit_code == 1 and "was saved once: save it again" in once.output
    again = invoke(runner, "cluster", str(db_path), *IMAGECLUSTER, "--sim", "0.95", "--alpha", "1", "--save", "bursts")
    assert "version 2: see 'imagecluster diff" in again.output
    text = invoke(runner, "diff", str(db_path), "bursts").stdout
    as_json = json.loads(invoke(runner, "diff", str(db_path), "bursts", "--json").stdout)
    assert text.startswith("bursts: version 1 -> 2:") and as_json["changes"] == []
    assert as_json["counts"]["unchanged"] > 0 and sum(as_json["counts"].values()) == as_json["counts"]["unchanged"]
    looser = invoke(runner, "cluster", str(db_path), *IMAGECLUSTER, "--sim", "0.5", "--alpha", "1", "--save", "bursts")
    assert "version 3" in looser.output
    merged = json.loads(invoke(runner, "diff", str(db_path), "bursts", "--json").stdout)
    assert merged["version_before"] == 2 and merged["counts"]["merged"] >= 1
    export = json.loads(invoke(runner, "export", str(db_path), "--clustering", "bursts", "--format", "json").stdout)
    assert export["clustering"]["version"] == 3


def kept_share(before, after) -> tuple[int, int]:
    """(clusters whose members didn't change, how many of them kept their number)."""
    old = {frozenset(m): n for n, m in before.clusters().items()}
    same = [(old[frozenset(m)], n) for n, m in after.clusters().items() if frozenset(m) in old]
    return len(same), sum(1 for a, b in same if a == b)


def test_numbers_survive_an_incremental_import_of_ten_percent_more_photos(tmp_path):
    """2,000 generated photos: bursts of near-duplicates seconds apart; 1,800 first, then 200 more."""
    rng = np.random.default_rng(7)
    n, dims = 2000, 64
    centres = rng.random((500, dims)).astype(np.float32)
    burst = rng.integers(0, 500, n)
    vectors = centres[burst] + rng.normal(0, 0.02, (n, dims)).astype(np.float32)
    timestamps = burst * 86400.0 + rng.random(n) * 60
    db = database(tmp_path / "photos.db", n, timestamps)

    def add(ids):
        db["fingerprints"].insert_all(
            {"image_id": int(i) + 1, **SET, "dims": dims, "vector": encode(vectors[i])} for i in ids
        )

    add(range(1800))
    results = []
    for step in (1, 2):
        with Photos.open(str(tmp_path / "photos.db"), write=True) as photos:
            clustering = photos.cluster(sim=0.8, alpha=0.5, method="average")
            results.append(photos.save_clustering("bursts", clustering))
        if step == 1:
            add(range(1800, 2000))
    unchanged, kept = kept_share(*results)
    assert unchanged >= 100 and kept / unchanged >= 0.9, (unchanged, kept)


def test_numbers_survive_an_incremental_import_of_real_photos(tmp_path, runner):
    """INRIA Holidays with the pretrained model: 90 % of the photos imported and saved, then the rest."""
    photos = shared_data("holidays_subset")
    files = sorted(p for p in photos.rglob("*.jpg"))
    first, rest = files[: int(len(files) * 0.9)], files[int(len(files) * 0.9) :]
    folder = tmp_path / "library"
    db = tmp_path / "photos.db"
    saves = []
    for batch in (first, rest):
        for path in batch:
            target = folder / path.relative_to(photos)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(path, target)
        invoke(runner, "import", str(db), str(folder), "--model", "efficientnet-lite0", "--workers", "1", "-s")
        invoke(runner, "cluster", str(db), "--save", "holidays")
        with Photos.open(str(db)) as library:
            saves.append(library.clustering("holidays"))
    unchanged, kept = kept_share(*saves)
    assert saves[1].version == 2 and unchanged >= 5 and kept / unchanged >= 0.9, (unchanged, kept)
    with Photos.open(str(db)) as library:
        changes = library.diff("holidays")
    assert changes.counts()["unchanged"] == kept


@pytest.mark.asyncio
async def test_the_changes_page_and_json_match_imagecluster_diff(db_path, runner):
    from bs4 import BeautifulSoup
    from datasette.app import Datasette

    from .test_datasette_native import assert_extends_base, instance

    for sim in ("0.95", "0.5"):
        invoke(runner, "cluster", str(db_path), *IMAGECLUSTER, "--sim", sim, "--alpha", "1", "--save", "bursts")
    expected = json.loads(invoke(runner, "diff", str(db_path), "bursts", "--json").stdout)
    ds = Datasette([str(db_path)])
    assert (await ds.client.get("/photos/-/cluster/changes/bursts.json")).json() == expected
    page = await ds.client.get("/photos/-/cluster/changes/bursts")
    assert page.status_code == 200
    assert_extends_base(page.text)
    soup = BeautifulSoup(page.text, "html.parser")
    shown = {int(a["href"].rsplit("/", 1)[-1]) for a in soup.select(".imagecluster-change .imagecluster-thumbs a")}
    moved = {i for c in expected["changes"] for i in (*c["added"], *c["removed"])}
    assert moved and shown == moved
    missing = await ds.client.get("/photos/-/cluster/changes/nope.json")
    assert missing.status_code == 404 and "no clustering named 'nope'" in missing.json()["error"]
    rules = {"databases": {"photos": {"tables": {"cluster_members": {"allow": {"id": "root"}}}}}}
    denied = await instance(db_path, rules).client.get("/photos/-/cluster/changes/bursts")
    assert denied.status_code == 403


def test_a_cluster_that_goes_on_with_less_than_half_of_itself_is_renumbered_and_reported(tmp_path):
    db = database(tmp_path / "photos.db", 12)
    v1 = save(db.conn, "trips", {**PARAMS, **SET}, 12, [[1, 2, 3, 4, 5]])
    v2 = save(db.conn, "trips", {**PARAMS, **SET}, 12, [[1, 2, 6, 7, 8, 9]])  # 3, 4, 5 left; 4 photos joined
    assert v2.clusters() == {2: {1, 2, 6, 7, 8, 9}}
    (change,) = diff(v1, v2).changes
    assert (change.kind, change.before, change.after) == ("changed", [1], [2])
    assert (change.added, change.removed) == ([6, 7, 8, 9], [3, 4, 5])
