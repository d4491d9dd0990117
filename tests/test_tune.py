"""``imagecluster tune`` and ``imagecluster verdict``: labels from every source, the search, saved defaults.

Generated photos with known groups (random weights: the model doesn't matter
for the mechanics) and real catalogs; the quality on real photos with the
pretrained model is in test_quality.py.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from bs4 import BeautifulSoup

from datasette_imagecluster.engine.labels import Labels, merge
from datasette_imagecluster.engine.quality import LabelIndex
from datasette_imagecluster.errors import LabelError
from datasette_imagecluster.library.known_labels import load_labels

from .catalogs import DIGIKAM_ROOT, LIGHTROOM_ROOT, digikam_catalog, lightroom_catalog
from .conftest import change, connect, invoke, rows, save_jpeg, scene
from .test_plugin import get, make_ds

ARGS = ("--weights", "none", "--workers", "0", "-s")


@pytest.fixture(scope="module")
def bursts(tmp_path_factory):
    """Eight bursts of three shots (one day each) and six loners, imported with random weights."""
    root = tmp_path_factory.mktemp("bursts")
    photos = root / "photos"
    groups: dict[str, str] = {}
    for burst in range(8):
        for shot in range(3):
            path = save_jpeg(
                photos / f"burst{burst}" / f"shot{shot}.jpg",
                scene(10 + burst, variant=shot),
                taken=f"2021:0{1 + burst % 9}:1{burst % 9} 10:00:{10 * shot:02d}",
            )
            groups[str(path)] = f"burst{burst}"
    for loner in range(6):
        path = save_jpeg(photos / f"loner{loner}.jpg", scene(50 + loner), taken=f"2019:0{1 + loner}:05 05:05:05")
        groups[str(path)] = f"loner{loner}"
    db = root / "photos.db"
    from click.testing import CliRunner

    invoke(CliRunner(), "import", db, photos, *ARGS)
    return db, photos, groups


@pytest.fixture
def db(bursts, tmp_path):
    path = tmp_path / "photos.db"
    shutil.copy(bursts[0], path)
    return path


def write_csv(path: Path, header: tuple[str, str], items) -> Path:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(items)
    return path


def test_tune_recovers_known_groups_and_reports_every_candidate(runner, db, bursts, tmp_path):
    _, _, groups = bursts
    labels = write_csv(tmp_path / "labels.csv", ("path", "group"), groups.items())
    result = invoke(runner, "tune", db, "--labels-csv", labels, "--json")
    report = json.loads(result.stdout)
    assert report["labels"]["positive_pairs"] == 8 * 3 and report["labels"]["groups"] == 14
    assert report["chosen"]["f1"] >= 0.9, report["chosen"]
    assert report["cross_validated"]["f1"] > 0
    methods = {c["method"] for c in report["candidates"]}
    assert methods == {"ward", "average", "complete", "weighted", "single"}
    assert {"precision", "recall", "f1", "clusters", "clustered", "sim", "alpha", "tau"} <= set(report["candidates"][0])
    # The chosen parameters really cluster the photos that way.
    clusters = json.loads(
        invoke(
            runner,
            "cluster",
            db,
            "--json",
            "--sim",
            report["chosen"]["sim"],
            "--alpha",
            report["chosen"]["alpha"],
            "--method",
            report["chosen"]["method"],
            "--tau",
            report["chosen"]["tau"],
        ).stdout
    )
    found = {frozenset(i["path"] for i in c["images"]) for c in clusters["clusters"]}
    bursts_found = sum(1 for b in range(8) if frozenset(p for p, g in groups.items() if g == f"burst{b}") in found)
    assert bursts_found >= 6
    table = invoke(runner, "tune", db, "--labels-csv", labels).stdout
    assert table.splitlines()[1].split()[:5] == ["method", "alpha", "tau", "pca", "sim"]
    assert "Chosen:" in table and "Defaults:" in table


def test_saved_parameters_are_everyones_defaults_and_explicit_ones_win(runner, db, bursts, tmp_path):
    _, _, groups = bursts
    labels = write_csv(tmp_path / "labels.csv", ("path", "group"), groups.items())
    report = json.loads(invoke(runner, "tune", db, "--labels-csv", labels, "--json", "--save").stdout)
    chosen = report["chosen"]
    saved = rows(db, "select method, alpha, sim, labels, labelled_pairs from tuned_params")
    assert saved == [(chosen["method"], chosen["alpha"], chosen["sim"], "24 labelled pairs from labels.csv", 24)]
    result = invoke(runner, "cluster", db, "--json")
    params = json.loads(result.stdout)["params"]
    assert (params["method"], params["alpha"], params["sim"]) == (chosen["method"], chosen["alpha"], chosen["sim"])
    assert "tuned on 24 labelled pairs from labels.csv" in result.stderr
    explicit = json.loads(invoke(runner, "cluster", db, "--json", "--sim", "0.9").stdout)["params"]
    assert explicit["sim"] == 0.9 and explicit["method"] == chosen["method"]


@pytest.mark.asyncio
async def test_the_page_and_the_functions_use_saved_parameters_and_show_agreement(runner, db, bursts, tmp_path):
    _, _, groups = bursts
    # The labels as a table in the database, so the page can show how the sliders agree with them.
    conn = connect(db)
    conn.execute('create table my_labels (path text, "group" text)')
    conn.executemany("insert into my_labels values (?, ?)", groups.items())
    conn.commit()
    conn.close()
    report = json.loads(invoke(runner, "tune", db, "--labels-table", "my_labels", "--json", "--save").stdout)
    invoke(runner, "verdict", db, "same", "1", "2")  # a label source the page reads itself
    # Verdicts also shape every clustering (so they always agree with it): add a catalog group of every
    # photo as well, which the sliders put together or apart.
    change(db, "update images set group_leader = 1")
    ds = make_ds(db)
    page = BeautifulSoup((await get(ds, "/photos/-/cluster")).text, "html.parser")
    assert "tuned on 24 labelled pairs from table my_labels" in page.select_one(".imagecluster-params-from").text
    assert page.select_one("input[name=sim]")["value"] == str(report["chosen"]["sim"])
    agreement = page.select_one(".imagecluster-agreement").text
    assert "verdicts" in agreement and "precision" in agreement
    low = BeautifulSoup((await get(ds, "/photos/-/cluster?sim=0.01")).text, "html.parser")
    high = BeautifulSoup((await get(ds, "/photos/-/cluster?sim=0.99")).text, "html.parser")
    # moving a slider changes the agreement
    assert low.select_one(".imagecluster-agreement").text != high.select_one(".imagecluster-agreement").text
    page_json = (await get(ds, "/photos/-/cluster.json")).json()
    functions = (await get(ds, "/photos.json?_shape=array&sql=select+imagecluster_clusters()+as+c")).json()
    assert json.loads(functions[0]["c"]) == [[i["id"] for i in c["images"]] for c in page_json["clusters"]]
    label = (await get(ds, "/photos.json?_shape=array&sql=select+imagecluster_label(1)+as+l")).json()[0]["l"]
    assert label == next(
        (n for n, c in enumerate(page_json["clusters"], 1) if 1 in [i["id"] for i in c["images"]]), None
    )


def test_min_precision_chooses_the_highest_recall_at_that_precision(runner, db, bursts, tmp_path):
    _, _, groups = bursts
    labels = write_csv(tmp_path / "labels.csv", ("path", "group"), groups.items())
    report = json.loads(invoke(runner, "tune", db, "--labels-csv", labels, "--json", "--min-precision", "0.99").stdout)
    assert report["chosen"]["precision"] >= 0.99
    reaching = [c["recall"] for c in report["candidates"] if c["precision"] >= 0.99]
    assert report["chosen"]["recall"] >= max(reaching) - 0.15  # the best, or a neighbour on its plateau


def test_too_few_labels_says_so_and_saves_nothing(runner, db, bursts, tmp_path):
    _, _, groups = bursts
    few = [(p, g) for p, g in groups.items() if g in ("burst0", "burst1")]  # 6 positive pairs
    labels = write_csv(tmp_path / "few.csv", ("path", "group"), few)
    result = invoke(runner, "tune", db, "--labels-csv", labels, "--save", ok=False)
    assert result.exit_code == 1 and "too few labels to tune on: 6 positive pairs" in result.output
    assert (
        rows(db, "select count(*) from tuned_params") == [(0,)]
        if rows(db, "select 1 from sqlite_master where name = 'tuned_params'")
        else True
    )


@pytest.mark.parametrize(
    "header, items, message",
    [
        (("path", "group"), [("/nowhere/a.jpg", "x")], "line 2: no imported photo has path '/nowhere/a.jpg'"),
        (("image_id", "group"), [("1", "x"), ("99999", "x")], "line 3: no imported photo has image_id '99999'"),
        (("image_id", "group"), [("one", "x")], "image_id must be a whole number"),
        (("image_id", "group"), [("1", "")], "line 2: no group"),
        (("image_id", "group"), [], "no labels (an empty file or table)"),
        (("name", "label"), [("a", "b")], "needs the columns path,group or image_id,group"),
        ((), [], "empty file"),
    ],
)
def test_bad_label_files_are_one_line_errors(runner, db, tmp_path, header, items, message):
    path = tmp_path / "labels.csv"
    if header:
        write_csv(path, header, items)
    else:
        path.write_text("")
    result = invoke(runner, "tune", db, "--labels-csv", path, ok=False)
    assert result.exit_code == 1 and message in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output


def test_one_photo_groups_are_allowed_and_noted(runner, db, bursts, tmp_path):
    _, _, groups = bursts
    labels = write_csv(tmp_path / "labels.csv", ("path", "group"), groups.items())
    result = invoke(runner, "tune", db, "--labels-csv", labels)
    assert "Note: 6 label groups have one photo" in result.stderr


@pytest.mark.parametrize(
    "commands, message",
    [
        ([("same", "1")], "'same' needs at least two different photos"),
        ([("different", "1", "2", "3")], "'different' takes exactly two different photos"),
        ([("same", "1", "99999")], "no imported photo has id 99999"),
        (
            [("same", "1", "2"), ("same", "2", "3"), ("different", "1", "3")],
            "conflicting labels: photos 1 and 3 are marked different",
        ),
        ([("different", "1", "2"), ("same", "2", "1")], "conflicting labels: photos 1 and 2 are marked different"),
    ],
)
def test_bad_verdicts_are_one_line_errors_and_change_nothing(runner, db, commands, message):
    *first, last = commands
    for command in first:
        invoke(runner, "verdict", db, *command)
    before = rows(db, "select * from verdicts") if first else []
    result = invoke(runner, "verdict", db, *last, ok=False)
    assert result.exit_code == 1 and message in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1
    if first:
        assert rows(db, "select * from verdicts") == before


def test_label_sources_in_the_database(runner, tmp_path):
    photos = tmp_path / "photos"
    save_jpeg(photos / "a" / "IMG_1.jpg", scene(1), taken="2021:06:01 10:00:00")
    scene(1, variant=1).save(photos / "a" / "IMG_1.png")  # the same shot in another format: siblings
    save_jpeg(photos / "a" / "IMG_2.jpg", scene(2), taken="2021:06:01 11:00:00")
    save_jpeg(photos / "b" / "IMG_1.jpg", scene(3), taken="2021:06:02 10:00:00")  # same stem, other folder
    shutil.copy(photos / "a" / "IMG_2.jpg", photos / "b" / "copy.jpg")  # an exact duplicate
    db = tmp_path / "photos.db"
    invoke(runner, "import", db, photos, *ARGS)
    ids = {path.split(str(photos) + "/")[1]: i for i, path in rows(db, "select id, path from images")}
    invoke(runner, "verdict", db, "different", ids["a/IMG_1.jpg"], ids["b/IMG_1.jpg"])
    conn = connect(db)
    siblings = load_labels(conn, ["siblings"])
    duplicates = load_labels(conn, ["duplicates"])
    everything = load_labels(conn)
    conn.close()
    assert siblings.groups == (frozenset({ids["a/IMG_1.jpg"], ids["a/IMG_1.png"]}),)
    assert duplicates.groups == (frozenset({ids["a/IMG_2.jpg"], ids["b/copy.jpg"]}),)
    assert everything.different == {tuple(sorted((ids["a/IMG_1.jpg"], ids["b/IMG_1.jpg"])))}
    assert everything.sources == ("same-shot siblings", "exact duplicates", "verdicts")


def test_digikam_groups_and_lightroom_stacks_are_labels(runner, tmp_path):
    photos = tmp_path / "Pictures"
    files = [f"trip/shot{i}.jpg" for i in range(6)]
    for i, rel in enumerate(files):
        save_jpeg(photos / rel, scene(20 + i // 3, variant=i % 3), taken=f"2021:06:01 10:0{i}:00")
    db = tmp_path / "photos.db"
    dk = digikam_catalog(tmp_path / "dk" / "digikam4.db", files, [files[:3], files[3:5]])
    invoke(runner, "import-digikam", db, dk, "--root-map", f"{DIGIKAM_ROOT}={photos}", *ARGS)
    lr = lightroom_catalog(tmp_path / "lr" / "Catalog.lrcat", files, [files[1:4]])
    db2 = tmp_path / "photos2.db"
    invoke(runner, "import-lightroom", db2, lr, "--root-map", f"{LIGHTROOM_ROOT}={photos}", *ARGS)
    for path, expected in ((db, [files[:3], files[3:5]]), (db2, [files[1:4]])):
        conn = connect(path)
        names = dict(conn.execute("select id, substr(path, ?) from images", (len(str(photos)) + 2,)))
        got = sorted(sorted(names[i] for i in g) for g in load_labels(conn, ["groups"]).groups)
        assert load_labels(conn, ["groups"]).sources == ("catalog groups and stacks",)
        conn.close()
        assert got == sorted(sorted(g) for g in expected)


def test_verdicts_survive_a_move_and_a_reimport(runner, tmp_path):
    photos = tmp_path / "photos"
    for i in range(4):
        save_jpeg(photos / f"p{i}.jpg", scene(30 + i), taken=f"2021:06:0{i + 1} 10:00:00")
    db = tmp_path / "photos.db"
    invoke(runner, "import", db, photos, *ARGS)
    ids = {Path(p).name: i for i, p in rows(db, "select id, path from images")}
    invoke(runner, "verdict", db, "same", ids["p0.jpg"], ids["p1.jpg"])
    invoke(runner, "verdict", db, "different", ids["p2.jpg"], ids["p3.jpg"])
    moved = tmp_path / "moved"
    shutil.move(photos, moved)  # a move: the rows follow their files
    invoke(runner, "import", db, moved, "--prune", *ARGS)
    shutil.move(moved / "p1.jpg", tmp_path / "away.jpg")  # gone and pruned, then back: a new row
    invoke(runner, "import", db, moved, "--prune", *ARGS)
    shutil.move(tmp_path / "away.jpg", moved / "again.jpg")
    invoke(runner, "import", db, moved, *ARGS)
    now = {Path(p).name: i for i, p in rows(db, "select id, path from images")}
    assert now["again.jpg"] != ids["p1.jpg"]
    conn = connect(db)
    labels = load_labels(conn, ["verdicts"])
    conn.close()
    assert labels.groups == (frozenset({now["p0.jpg"], now["again.jpg"]}),)
    assert labels.different == {tuple(sorted((now["p2.jpg"], now["p3.jpg"])))}
    invoke(runner, "verdict", db, "forget", now["p2.jpg"], now["p3.jpg"])
    assert rows(db, "select verdict from verdicts") == [("same",)]


def test_scores_count_only_pairs_of_known_status():
    """Pairwise precision and recall by hand, on a labelling with groups, a singleton and a difference."""
    labels = merge([{1, 2, 3}, {4, 5}, {6}], [(7, 8)])
    ids = np.arange(1, 10)
    flat = np.array([1, 1, 2, 1, 1, 3, 4, 4, 0])  # photos 1..9: {1,2,4,5}, {3}, {6}, {7,8}, 9 alone
    score = LabelIndex(labels, ids).score(flat)
    # positives: 3 + 1 = 4; claimed: pairs in {1,2,4,5} (6, all known) + (7,8) (a difference) = 7
    # true: (1,2) and (4,5) = 2
    assert (score.true_pairs, score.claimed_pairs, score.positive_pairs) == (2, 7, 4)
    assert score.precision == pytest.approx(2 / 7) and score.recall == pytest.approx(0.5)
    assert isinstance(labels, Labels) and labels.positive_pairs == 4
    with pytest.raises(LabelError, match="photos 1 and 2 are marked different"):
        merge([{1, 2}], [(1, 2)])


def test_default_parameters_have_one_source():
    from datasette_imagecluster.engine.parameters import SHIPPED, choose_params
    from datasette_imagecluster.web.config import DEFAULTS
    from importer.cli import DEFAULT

    assert DEFAULT is SHIPPED and not {"sim", "alpha", "method"} & set(DEFAULTS)
    assert choose_params({}, {}, None).params == SHIPPED
    # A metric ward can't use, given alone, brings a method that can.
    assert choose_params({"metric": "cosine"}, {}, None).params.method == "average"


def test_the_python_api_tunes_saves_and_records_verdicts(db, bursts, tmp_path):
    """What the commands do, as Python users call it: Photos.tune, save_tuned and record_verdict."""
    from datasette_imagecluster.api import Photos
    from datasette_imagecluster.errors import ImageclusterError, LabelError

    _, _, groups = bursts
    labels = write_csv(tmp_path / "labels.csv", ("path", "group"), groups.items())
    with Photos.open(str(db)) as photos:
        result = photos.tune(labels_csv=str(labels))
        assert result.labels.positive_pairs == 24 and result.tuning.best[1].f1 >= 0.9
        with pytest.raises(LabelError, match="needs the columns"):
            photos.tune(labels_csv=str(write_csv(tmp_path / "bad.csv", ("name", "group"), [("a", "b")])))
    with Photos.open(str(db), write=True) as photos:
        photos.save_tuned(result)
        chosen = photos.choose()
        assert chosen.chosen.origin == "tuned" and chosen.params == result.params
        first, second, third = next(members for members in photos.cluster().clusters if len(members) >= 3)[:3]
        photos.record_verdict("different", [first], apart_from=[second, third])
        assert all(first not in members or second not in members for members in photos.cluster().clusters)
        with pytest.raises(ImageclusterError, match="conflicting"):
            photos.record_verdict("same", [first, second])
        photos.record_verdict("forget", [first, second])
