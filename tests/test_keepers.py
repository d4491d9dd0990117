"""Keepers and duplicate tiers: real Holidays photos and copies made as users make them (a byte copy, a metadata
edit by exiftool, a re-encode, a resize), real shots two seconds apart, the offline pretrained model; the
keeper a user chose across a move and a re-import; keepers written into XMP and read back with exiftool; the
page's marks and its keeper choice on both Datasette lines."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image, ImageFilter

from .conftest import ROOT_ACTOR, invoke, rows, shared_data
from .test_export import as_list, exiftool
from .test_verdict_page import page, post

ORIGINAL = "cbir_multiple/105100.jpg"
BURST = ("cbir_multiple/104005.jpg", "cbir_multiple/104006.jpg")  # shot 2 s apart (GROUND_TRUTH.csv)


def _exiftool() -> str:
    found = shutil.which("exiftool")
    if not found:
        pytest.skip("exiftool not installed (apt-get install libimage-exiftool-perl)")
    return found


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """A folder of an original, its byte copy, its metadata-edited copy, a re-encode and a half-size copy,
    and a real two-shot burst; imported with the default (pretrained, offline) model."""
    root = tmp_path_factory.mktemp("keepers")
    photos = root / "photos"
    photos.mkdir()
    original = shared_data("holidays_subset", ORIGINAL)
    shutil.copy(original, photos / "original.jpg")
    shutil.copy(original, photos / "copy.jpg")
    subprocess.run(
        [_exiftool(), "-q", "-Artist=Someone Else", "-o", str(photos / "tagged.jpg"), str(original)], check=True
    )
    img = Image.open(original)
    exif = img.info["exif"]
    img.save(photos / "reencoded.jpg", "JPEG", quality=85, exif=exif)
    img.resize((img.width // 2, img.height // 2), Image.Resampling.LANCZOS).save(
        photos / "half.jpg", "JPEG", quality=92, exif=exif
    )
    for name in BURST:
        shutil.copy(shared_data("holidays_subset", name), photos / name.split("/")[1])
    db = root / "photos.db"
    invoke(CliRunner(), "import", db, photos, "--workers", "0", "-s")
    return db, photos


def own_copy(runner, made, tmp_path):
    """The photos in a folder of the test's own, imported afresh (a test that moves files or writes sidecars)."""
    photos = tmp_path / "photos"
    shutil.copytree(made[1], photos)
    db = tmp_path / "photos.db"
    invoke(runner, "import", db, photos, "--workers", "0", "-s")
    return db, photos


def ids_by_name(db) -> dict[str, int]:
    return {name: image_id for image_id, name in rows(db, "select id, name from images")}


def keepers_json(runner, db, *args) -> list[dict]:
    return json.loads(invoke(runner, "keepers", db, "--json", *args).output)["clusters"]


def cluster_of(found: list[dict], image_id: int) -> dict:
    return next(c for c in found if any(image_id in g["images"] for g in c["groups"]) or c["keeper"] == image_id)


def test_each_tier_is_found_on_copies_users_make(runner, made):
    db, _ = made
    ids = ids_by_name(db)
    found = keepers_json(runner, db)
    copies = cluster_of(found, ids["original.jpg"])
    tiers = {tier: [set(g) for g in groups] for tier, groups in copies["tiers"].items()}
    assert {ids["original.jpg"], ids["copy.jpg"]} in tiers["same file"]
    assert {ids["original.jpg"], ids["copy.jpg"], ids["tagged.jpg"]} in tiers["same pixels"]
    near = next(g for g in tiers["near duplicate"] if ids["original.jpg"] in g)
    assert {ids["reencoded.jpg"], ids["half.jpg"], ids["tagged.jpg"]} <= near
    burst = cluster_of(found, ids["104005.jpg"])
    assert [set(g) for g in burst["tiers"]["burst"]] == [{ids["104005.jpg"], ids["104006.jpg"]}]
    assert "near duplicate" not in burst["tiers"]  # two views: shot apart, not copies
    (group,) = burst["groups"]
    assert group["tier"] == "burst" and group["reason"].startswith("sharpest")
    # The copies' group keeps one of the full-size, finest shots, never the resize; the rest are the others.
    (copies_group,) = copies["groups"]
    assert copies_group["tier"] == "near duplicate" and copies_group["keeper"] != ids["half.jpg"]
    assert sorted(copies_group["rest"] + [copies_group["keeper"]]) == sorted(copies_group["images"])
    # Why the cluster holds: shares that sum to one, a weakest link among its photos.
    why = burst["why"]
    assert abs(why["content_share"] + why["time_share"] - 1) < 1e-9 and why["weakest_seconds"] == 2.0
    assert set(why["weakest_link"]) == {ids["104005.jpg"], ids["104006.jpg"]}


def test_the_signals_are_stored_and_backfilled_without_fingerprinting_again(runner, made, tmp_path):
    db = tmp_path / "photos.db"
    shutil.copy(made[0], db)
    signals = rows(db, "select image_id, sharpness, highlights, compression, pixels_sha256 from photo_quality")
    assert len(signals) == len(ids_by_name(db))
    by_id = {r[0]: r for r in signals}
    ids = ids_by_name(db)
    assert by_id[ids["copy.jpg"]][1:] == by_id[ids["original.jpg"]][1:]  # a byte copy: its rows copied
    assert by_id[ids["tagged.jpg"]][4] == by_id[ids["original.jpg"]][4]  # metadata alone: the same pixels
    assert by_id[ids["reencoded.jpg"]][4] != by_id[ids["original.jpg"]][4]
    fingerprinted = rows(db, "select image_id, created_at, vector from fingerprints order by image_id")
    with sqlite3.connect(db) as conn:
        conn.execute("delete from photo_quality where image_id in (?, ?)", (ids["half.jpg"], ids["104005.jpg"]))
    result = invoke(runner, "import", db, made[1], "--workers", "0", "-s")
    assert "Imported 2," in result.output and "2 of them imported before" in result.output
    assert "photos/s on the" not in result.output  # no model ran
    assert rows(db, "select image_id, created_at, vector from fingerprints order by image_id") == fingerprinted
    assert sorted(rows(db, "select image_id, sharpness from photo_quality")) == sorted((r[0], r[1]) for r in signals)


def test_the_keeper_is_the_undegraded_shot_of_a_burst(tmp_path):
    """Through the importer's own decode: the original among defocused, noisy, over-exposed and
    re-compressed copies of itself (benchmarks/bench_keepers.py measures it on every Holidays photo)."""
    from datasette_imagecluster.engine import keepers
    from importer.decode import DecodeRequest, decode

    img = Image.open(shared_data("holidays_subset", ORIGINAL)).convert("RGB")
    noisy = np.asarray(img, np.float32) + np.random.default_rng(0).normal(0, 12, (img.height, img.width, 1))
    brighter = (np.clip((np.asarray(img, np.float32) / 255) ** 2.2 * 2**1.5, 0, 1) ** (1 / 2.2) * 255).astype(np.uint8)
    shots = [
        (img.filter(ImageFilter.GaussianBlur(1.5)), 92),
        (img, 92),
        (Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8)), 92),
        (Image.fromarray(brighter), 92),
        (img, 8),
    ]
    signals = []
    for n, (shot, quality) in enumerate(shots):
        path = tmp_path / f"{n}.jpg"
        shot.save(path, "JPEG", quality=quality)
        s = decode(DecodeRequest(str(path), path.stat().st_size, 0.0, (224, 224))).signals
        signals.append(
            (s.sharpness, s.noise, s.highlights, s.shadows, s.brightness, s.compression, img.width * img.height)
        )
    chosen = keepers.pick(keepers.Quality(*np.array(signals, dtype=np.float64).T))
    assert chosen.keeper == 1 and chosen.reason.startswith("sharpest")
    assert "compressed harder" in chosen.reason and "clipped" in chosen.reason  # the sharper shots passed over


def test_a_chosen_keeper_wins_and_survives_a_move_and_a_re_import(runner, made, tmp_path):
    db, photos = own_copy(runner, made, tmp_path)
    ids = ids_by_name(db)
    suggested = cluster_of(keepers_json(runner, db), ids["104005.jpg"])["keeper"]
    other = ids["104006.jpg"] if suggested == ids["104005.jpg"] else ids["104005.jpg"]
    invoke(runner, "keep", db, str(other))
    chosen = cluster_of(keepers_json(runner, db), other)
    assert chosen["keeper"] == other and chosen["chosen"] and chosen["groups"][0]["reason"] == "your choice"
    name = next(n for n, i in ids.items() if i == other)
    (photos / "moved").mkdir()
    (photos / name).rename(photos / "moved" / name)
    invoke(runner, "import", db, photos, "--workers", "0", "-s", "--prune")
    assert cluster_of(keepers_json(runner, db), other)["keeper"] == other  # moved: the same row
    outside = tmp_path / name
    (photos / "moved" / name).rename(outside)
    invoke(runner, "import", db, photos, "--workers", "0", "-s", "--prune")  # gone: its row pruned
    assert name not in ids_by_name(db)
    outside.rename(photos / name)
    invoke(runner, "import", db, photos, "--workers", "0", "-s")  # back: a new row, the same content
    again = ids_by_name(db)[name]
    assert again != other and cluster_of(keepers_json(runner, db), again)["keeper"] == again
    invoke(runner, "keep", db, str(again), "--forget")
    assert cluster_of(keepers_json(runner, db), again)["keeper"] == suggested


def test_bad_keeper_choices_are_one_line_errors(runner, made, tmp_path):
    db = tmp_path / "photos.db"
    shutil.copy(made[0], db)
    ids = ids_by_name(db)
    clustered = {i for c in keepers_json(runner, db) for g in c["groups"] for i in g["images"]}
    before = rows(db, "select * from keepers")
    cases = [
        ([str(ids["104005.jpg"]), str(ids["104006.jpg"])], "are both in cluster"),
        (["987654"], "no imported photo has id 987654"),
    ]
    loner = next((i for i in ids.values() if i not in clustered), None)
    if loner is not None:
        cases.append(([str(loner)], "is in no cluster of this clustering"))
    cases.append(([str(ids["104005.jpg"]), "--sim", "2"], "sim"))
    for args, words in cases:
        result = invoke(runner, "keep", db, *args, ok=False)
        assert result.exit_code != 0 and words in result.output and "Traceback" not in result.output
        assert len(result.output.strip().splitlines()) == 1
    # Away from every cluster (a clustering of single photos), a keeper can't be chosen at all.
    result = invoke(runner, "keep", db, str(ids["104005.jpg"]), "--sim", "1", ok=False)
    assert "is in no cluster of this clustering" in result.output
    assert rows(db, "select * from keepers") == before


def test_keepers_go_into_xmp_keeping_every_field_and_the_users_rating(runner, made, tmp_path):
    db, photos = own_copy(runner, made, tmp_path)
    invoke(runner, "cluster", db, "--save", "trip")
    found = keepers_json(runner, db, "--clustering", "trip")
    ids = ids_by_name(db)
    names = {i: n for n, i in ids.items()}
    kept = {c["keeper"] for c in found} | {g["keeper"] for c in found for g in c["groups"]}
    rated, unrated = sorted(kept)[:2]
    sidecar = photos / f"{names[rated]}.xmp"  # digiKam names it photo.jpg.xmp, Lightroom photo.xmp
    shutil.copy(shared_data("xmp_samples", "digikam_tests", "_27A1434.JPG.xmp"), sidecar)
    subprocess.run([_exiftool(), "-q", "-overwrite_original", "-XMP-xmp:Rating=2", str(sidecar)], check=True)
    before = exiftool(sidecar)
    result = invoke(runner, "export-xmp", db, "--clustering", "trip", "--keeper-rating", "4")
    assert "Traceback" not in result.output
    after = exiftool(sidecar)
    ours = ("XMP-lr:HierarchicalSubject", "XMP-digiKam:TagsList", "XMP-dc:Subject")
    assert {k: v for k, v in after.items() if k not in ours} == {k: v for k, v in before.items() if k not in ours}
    assert after["XMP-xmp:Rating"] == 2  # the user's rating stays
    assert "imagecluster|trip|keeper" in as_list(after["XMP-lr:HierarchicalSubject"])
    for kept_before in as_list(before.get("XMP-lr:HierarchicalSubject", [])):
        assert kept_before in as_list(after["XMP-lr:HierarchicalSubject"])
    fresh = exiftool(photos / f"{names[unrated]}.xmp")
    assert fresh["XMP-xmp:Rating"] == 4 and "imagecluster|trip|keeper" in as_list(fresh["XMP-lr:HierarchicalSubject"])
    rest = [i for c in found for g in c["groups"] for i in g["rest"] if i not in kept]
    for image_id in rest:
        tags = exiftool(photos / f"{names[image_id]}.xmp")
        assert "imagecluster|trip|keeper" not in as_list(tags["XMP-lr:HierarchicalSubject"])
        assert "XMP-xmp:Rating" not in tags
    # The saved clustering keeps each photo's part in its cluster, for SQL.
    roles = dict(rows(db, "select image_id, role from cluster_members"))
    assert {roles[i] for i in kept} <= {"keeper", "cluster keeper"} and all(roles[i] == "rest" for i in rest)
    # Another shot chosen: the keeper no more loses the rating the export wrote; chosen back, the shot that was
    # kept in between keeps the rating the user changed it to, and loses only the export's record of it.
    group = next(g for c in found for g in c["groups"] if g["keeper"] != rated and g["rest"])
    old, new = group["keeper"], group["rest"][0]

    def choose_and_export(image_id: int) -> None:
        invoke(runner, "keep", db, str(image_id), "--clustering", "trip")
        invoke(runner, "cluster", db, "--save", "trip")
        invoke(runner, "export-xmp", db, "--clustering", "trip", "--keeper-rating", "4")

    choose_and_export(new)
    dropped = exiftool(photos / f"{names[old]}.xmp")
    assert "XMP-xmp:Rating" not in dropped
    assert "imagecluster|trip|keeper" not in as_list(dropped["XMP-lr:HierarchicalSubject"])
    assert exiftool(photos / f"{names[new]}.xmp")["XMP-xmp:Rating"] == 4
    subprocess.run(
        [_exiftool(), "-q", "-overwrite_original", "-XMP-xmp:Rating=5", str(photos / f"{names[new]}.xmp")], check=True
    )
    choose_and_export(old)
    changed = exiftool(photos / f"{names[new]}.xmp")
    assert changed["XMP-xmp:Rating"] == 5 and not any(k.startswith("XMP-imagecluster") for k in changed)
    assert exiftool(photos / f"{names[old]}.xmp")["XMP-xmp:Rating"] == 4


@pytest.mark.asyncio
async def test_the_page_marks_keepers_and_tiers_and_takes_a_choice(writable, db_path):
    ds = writable
    response, soup, _ = await page(ds, ROOT_ACTOR)
    assert response.status_code == 200
    keeper = soup.select_one(".imagecluster-keeper")
    assert keeper is not None and keeper["title"]  # its reason in words
    assert soup.select_one(".imagecluster-card small").text.endswith("· near duplicate")  # its tiers
    assert soup.select(".imagecluster-why") and "weakest link" in soup.select_one(".imagecluster-why").text
    button = soup.select_one("button.imagecluster-keep")
    assert button is not None and button["formaction"].endswith("/-/cluster/keep")
    choice = button["value"]
    answer = await post(ds, ROOT_ACTOR, [("keep", choice)], action=button["formaction"])
    assert answer.status_code == 302
    sha = rows(db_path, "select sha256 from images where id = ?", (int(choice),))[0][0]
    assert rows(db_path, "select sha256 from keepers") == [(sha,)]
    _, soup, _ = await page(ds, ROOT_ACTOR)
    cell = soup.select_one(f'.imagecluster-photo-cell[data-id="{choice}"]')
    assert cell["data-role"] == "cluster keeper" and "your choice" in cell.select_one(".imagecluster-keeper")["title"]
    # Bad input: a 400 with its reason, never a 500; nothing written.
    for fields, words in ((("keep", "x"),), "whole number"), ((("keep", "999999"),), "no imported photo"):
        bad = await post(ds, ROOT_ACTOR, list(fields), action=button["formaction"])
        assert bad.status_code in (302, 400)
        if bad.status_code == 400:
            assert words in bad.text
    assert rows(db_path, "select sha256 from keepers") == [(sha,)]
    # Others may not choose: no button, and a forged POST is refused.
    _, soup, _ = await page(ds)
    assert soup.select_one("button.imagecluster-keep") is None
    refused = await post(ds, None, [("keep", choice)], action=button["formaction"])
    assert refused.status_code == 403


def test_the_weakest_link_is_single_linkages_last_merge_on_the_same_distances():
    """Against a plain reference: scipy's pdist and single linkage on the mixed distance written out."""
    from scipy.cluster.hierarchy import linkage
    from scipy.spatial.distance import pdist

    from datasette_imagecluster.engine.absolute import Mix
    from datasette_imagecluster.engine.cohesion import cohesion

    rng = np.random.default_rng(3)
    vectors = rng.normal(size=(40, 16))
    vectors[5] = vectors[4]  # a copy: a zero content distance is a link like any other
    times = rng.uniform(0, 7200, 40)
    times[7] = np.nan  # no capture time: content alone
    mix = Mix(alpha=0.4, scale=5.0, tau=3600.0)
    dt = pdist(times[:, None], lambda a, b: abs(a[0] - b[0]))
    content = pdist(vectors) / mix.scale
    reference = np.where(np.isnan(dt), content, content * 0.6 + np.minimum(dt / mix.tau, 1) * 0.4)
    found = cohesion(vectors, times, mix, "euclidean")
    assert found.distance == pytest.approx(linkage(reference, "single")[-1, 2], rel=1e-12)
    i, j = found.weakest
    assert reference[40 * i - i * (i + 1) // 2 + (j - i - 1)] == pytest.approx(found.distance, rel=1e-12)
    assert 0 < found.content_share < 1
