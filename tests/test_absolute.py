"""Distances on absolute scales: exact against a plain pdist/linkage/fcluster reference of the same distance,
on the full matrix and one component at a time (bounds tight, loose, and on Dask), stable as a library grows."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import pdist, squareform

from datasette_imagecluster.api import Photos
from datasette_imagecluster.engine import absolute, bounds, components, nearby
from datasette_imagecluster.engine.clustering import METHODS, build_tree, cut_tree
from datasette_imagecluster.engine.parameters import (
    SHIPPED,
    Params,
    choose_params,
    format_duration,
    parse_duration,
)
from datasette_imagecluster.errors import ClusterError
from datasette_imagecluster.library import scales

from .conftest import invoke
from .test_clustering import add_photos, make_fingerprint_db

REDUCIBLE = ("single", "complete", "average", "weighted", "ward")
HOUR = 3600.0


def reference_tree(vectors, timestamps, timed, alpha, tau, scale, method, metric="euclidean"):
    """The absolute distance written out with scipy alone, as docs/quality.md defines it, and its linkage."""
    dc = pdist(vectors, metric)
    dt = pdist(np.asarray(timestamps, np.float64)[:, None], "cityblock")
    d = dc / scale * (1 - alpha) + np.minimum(dt / tau, 1.0) * alpha
    untimed = squareform(np.logical_or.outer(~timed, ~timed).astype(np.int8), checks=False) > 0
    d[untimed] = (dc / scale)[untimed]  # a photo without a capture time: content alone
    return linkage(d, method)


def reference(vectors, timestamps, timed, sim, alpha, tau, scale, method, metric="euclidean", min_csize=2):
    """The reference's clusters of at least ``min_csize`` photos, cut at ``1 - sim``."""
    z = reference_tree(vectors, timestamps, timed, alpha, tau, scale, method, metric)
    return partition(fcluster(z, 1 - sim, "distance"), min_csize)


def partition(labels, min_csize=2):
    found: dict[int, set[int]] = {}
    for k, label in enumerate(labels):
        found.setdefault(int(label), set()).add(k)
    return {frozenset(m) for m in found.values() if len(m) >= min_csize}


def events(n=1200, dims=48, seed=3, untimed_share=0.04):
    """Photos in outings of 5-60 over an hour or two, outings days apart over years, a few near-duplicates
    far apart in time, and a few photos with no capture time."""
    rng = np.random.default_rng(seed)
    vectors, times = [], []
    start = 1.2e9
    while sum(map(len, vectors)) < n:
        size = int(rng.integers(5, 60))
        place = rng.standard_normal(dims) * 3
        scenes = place + rng.standard_normal((4, dims))
        members = scenes[rng.integers(0, 4, size)] + 0.45 * rng.standard_normal((size, dims))
        vectors.append(members)
        times.append(start + np.sort(rng.uniform(0, rng.uniform(0.2, 2) * HOUR, size)))
        start += rng.uniform(1, 30) * 86400
    v = np.concatenate(vectors)[:n].astype(np.float32)
    t = np.concatenate(times)[:n]
    for a, b in zip(rng.integers(0, n, 8), rng.integers(0, n, 8)):  # a copy of a photo, years away
        v[b] = v[a] + 0.01 * rng.standard_normal(dims).astype(np.float32)
    timed = rng.random(n) >= untimed_share
    return v, t, timed


def _check(vectors, times, timed, method, alphas, sims, taus, metric="euclidean"):
    scale = absolute.content_scale(vectors[absolute.sample_rows(np.arange(len(vectors)))], metric)
    for alpha in alphas:
        for tau in taus if alpha else taus[:1]:
            z = reference_tree(vectors, times, timed, alpha, tau, scale, method, metric)
            for sim in sims:
                tree = build_tree(
                    vectors,
                    times,
                    alpha=alpha,
                    method=method,
                    metric=metric,
                    sim=sim,
                    distance="absolute",
                    tau=tau,
                    scale=scale,
                    timed=timed,
                )
                expected = partition(fcluster(z, 1 - sim, "distance"))
                assert partition(cut_tree(tree, sim)) == expected, (alpha, tau, sim)
    return tree


@pytest.mark.parametrize("method", METHODS)
def test_full_matrix_matches_the_reference_for_every_method(method):
    vectors, times, timed = events(n=300)
    _check(vectors, times, timed, method, (0.0, 0.3, 0.5, 0.8, 1.0), (0.2, 0.48, 0.7, 0.95), (900.0, HOUR, 86400.0))


@pytest.fixture(params=["k-d tree and bounds", "tiles and bounds", "loose bounds: every tile in full"])
def bounds_kind(request, monkeypatch):
    """The component path in many ragged tiles, its bounds used (from 8 directions, whatever their
    tightness) with far pairs found from the near-duplicate search or tile by tile, or the bounds judged
    too loose, so every tile it searches is measured in full."""
    monkeypatch.setattr(bounds, "K", 8)
    monkeypatch.setattr(bounds, "ROWS", 97)
    monkeypatch.setattr(bounds, "COLS", 211)
    monkeypatch.setattr(nearby, "BAND_ROWS", 61)
    monkeypatch.setattr(nearby, "SETTLE", 1000)
    monkeypatch.setattr(nearby, "NEAR_SHARE", 10.0 if request.param.startswith("k-d") else -1.0)
    monkeypatch.setattr(bounds, "TIGHT", 2.0 if request.param.startswith("loose") else 0.0)
    searches = []
    search = nearby._near_duplicates
    monkeypatch.setattr(nearby, "_near_duplicates", lambda *args: searches.append(search(*args)) or searches[-1])
    yield request.param
    used = [g is not None for g in searches]
    assert all(used) if request.param.startswith("k-d") else not any(used)


@pytest.mark.parametrize("method", REDUCIBLE)
def test_components_match_the_reference(method, bounds_kind):
    vectors, times, timed = events()
    tree = _check(vectors, times, timed, method, (0.0, 0.5, 0.8), (0.3, 0.48, 0.8), (HOUR, 6 * HOUR))
    assert tree.valid_from_sim == 0.8  # built one component at a time


@pytest.mark.parametrize("metric", ["sqeuclidean", "cosine"])
def test_components_match_the_reference_for_the_other_screened_metrics(metric, bounds_kind):
    """The near-duplicate radius is in the metric's units: a squared distance or a cosine's is not a length."""
    vectors, times, timed = events()
    vectors += 2.0  # away from the origin, as features are: cosine distances of a few hundredths
    scale = absolute.content_scale(vectors[absolute.sample_rows(np.arange(len(vectors)))], metric)
    near = 0.8 * (0.52 - 0.5) / 0.5 * scale  # within the radius of near-duplicates at alpha 0.5, sim 0.48
    rng = np.random.default_rng(9)
    for a, b in ((3, 1100), (40, 900), (200, 1150)):  # photos years apart, near the edge of that radius
        u = rng.standard_normal(vectors.shape[1])
        u -= u @ vectors[a] / (vectors[a] @ vectors[a]) * vectors[a]
        u /= np.linalg.norm(u)
        step = (
            np.sqrt(near) if metric == "sqeuclidean" else np.sqrt(1 / (1 - near) ** 2 - 1) * np.linalg.norm(vectors[a])
        )
        vectors[b] = vectors[a] + step * u
        timed[[a, b]] = True
    tree = _check(vectors, times, timed, "single", (0.5, 0.8), (0.48, 0.8), (HOUR,), metric)  # each edge counts
    assert tree.valid_from_sim == 0.8


def test_components_hold_no_more_than_an_event(bounds_kind):
    """At the shipped defaults the graph is local in time: no component is larger than the largest outing
    plus the near-duplicates that join it."""
    vectors, times, timed = events()
    scale = absolute.content_scale(vectors[absolute.sample_rows(np.arange(len(vectors)))], "euclidean")
    mix = absolute.Mix(SHIPPED.alpha, scale, SHIPPED.tau)
    screened = nearby.screening(vectors, times, timed, "euclidean")
    i, j = nearby.edges(screened, absolute.clock(times, timed), mix, 1 - SHIPPED.sim)
    n = len(vectors)
    assert len(i) < 0.05 * n * (n - 1) / 2
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    _, labels = connected_components(coo_matrix((np.ones(len(i)), (i, j)), shape=(n, n)), directed=False)
    assert np.bincount(labels).max() <= 120  # two outings at most, glued by a copy


def test_components_on_dask_match_the_reference(monkeypatch):
    """Components large enough for the workers are clustered there, with the same partitions."""
    from dask.distributed import Client, LocalCluster

    monkeypatch.setattr(components, "ON_WORKERS", 20)
    vectors, times, timed = events()
    scale = absolute.content_scale(vectors[absolute.sample_rows(np.arange(len(vectors)))], "euclidean")
    expected = reference(vectors, times, timed, 0.48, 0.5, HOUR, scale, "ward")
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as cluster:
        with Client(cluster) as client, components.on_dask(client):
            tree = build_tree(
                vectors,
                times,
                alpha=0.5,
                method="ward",
                sim=0.48,
                distance="absolute",
                tau=HOUR,
                scale=scale,
                timed=timed,
            )
    assert partition(cut_tree(tree, 0.48)) == expected


def test_verdicts_are_honoured_on_absolute_distances():
    from datasette_imagecluster.engine.constraints import Constraints

    vectors, times, timed = events(n=1100)
    loose = build_tree(vectors, times, alpha=0.5, method="average", sim=0.48, distance="absolute", timed=timed)
    groups = [sorted(g) for g in partition(cut_tree(loose, 0.48)) if len(g) >= 2]
    a, b = groups[0][:2]
    far = groups[1][0]
    constraints = Constraints(same=((a, far),), different=((a, b),))
    tree = build_tree(
        vectors, times, alpha=0.5, method="average", sim=0.48, distance="absolute", timed=timed, constraints=constraints
    )
    labels = cut_tree(tree, 0.48)
    assert labels[a] == labels[far] and labels[a] != labels[b]


def test_the_scale_is_the_median_of_a_sample_and_no_outlier_moves_it():
    vectors, _, _ = events(n=1500)
    rows = absolute.sample_rows(np.arange(1, 1501))
    assert len(rows) == absolute.SAMPLE and np.all(np.diff(rows) > 0)
    scale = absolute.content_scale(vectors[rows], "euclidean")
    assert scale == pytest.approx(float(np.median(pdist(vectors[rows].astype(np.float64)))), rel=1e-9)
    far = np.vstack([vectors, np.full((1, vectors.shape[1]), 1e4, np.float32)])
    moved = absolute.content_scale(far[absolute.sample_rows(np.arange(1, 1502))], "euclidean")
    assert abs(moved / scale - 1) < 0.01
    assert absolute.content_scale(np.ones((3, 4), np.float32), "euclidean") == 1.0  # all the same: defined


@pytest.mark.parametrize(
    "text, seconds",
    [
        ("3600", 3600),
        ("90 s", 90),
        ("15 min", 900),
        ("15m", 900),
        ("1h", 3600),
        ("1 h 30 min", 5400),
        ("1.5 hours", 5400),
        ("2 days", 172800),
        ("1w", 604800),
    ],
)
def test_durations_in_words(text, seconds):
    assert parse_duration("tau", text) == seconds
    assert parse_duration("tau", format_duration(seconds)) == seconds


@pytest.mark.parametrize("text", ["", "soon", "1 fortnight", "-1h", "0", "1e10 d", "nan", "1h later"])
def test_bad_durations_are_clear(text):
    with pytest.raises(ClusterError, match="tau"):
        Params(tau=text)


def test_defaults_follow_the_distance_and_old_tunings_keep_theirs():
    assert choose_params({}, {}, None).params == SHIPPED
    imagecluster = choose_params({"distance": "imagecluster"}, {}, None).params
    assert imagecluster.distance == "imagecluster" and imagecluster.sim == 0.55
    old = {"method": "average", "metric": "euclidean", "alpha": 0.2, "sim": 0.7, "min_csize": 2, "pca": None}
    chosen = choose_params({}, {}, old)  # tuned before distances had a choice: imagecluster's
    assert chosen.origin == "tuned" and chosen.params.distance == "imagecluster" and chosen.params.sim == 0.7
    asked = choose_params({"distance": "absolute"}, {}, old)  # a sim tuned for the other distance means nothing
    assert asked.params == SHIPPED and asked.origin == "default"


def _library(n):
    rng = np.random.default_rng(5)
    vectors, times, timed = events(n=n, seed=5, untimed_share=0.0)
    return vectors, times, np.arange(1, n + 1), rng


def test_clusters_no_new_photo_joined_keep_members_and_numbers(tmp_path):
    """After an import of 10 % more photos, among them one far outlier and one photo dated a year wrong,
    every cluster no new photo joined keeps its photos and its number."""
    vectors, times, ids, rng = _library(1320)
    old = 1200
    path = make_fingerprint_db(tmp_path / "grow.db", vectors[:old], times[:old], ids[:old])
    import sqlite3

    def refresh():  # what every import does at its end
        conn = sqlite3.connect(path)
        with conn:
            for found in Photos(conn).fingerprint_sets():
                scales.refresh(conn, found)
        conn.close()

    refresh()
    with Photos.open(str(path), write=True) as photos:
        before = photos.save_clustering("trips", photos.cluster())
    added_vectors, added_times = vectors[old:].copy(), times[old:].copy()
    added_vectors[0] = 50 * np.abs(rng.standard_normal(vectors.shape[1]))  # farther from everything than any
    added_times[1] -= 365.25 * 86400  # a camera clock a year off
    add_photos(path, added_vectors, added_times, ids[old:])
    refresh()
    with Photos.open(str(path), write=True) as photos:
        after = photos.save_clustering("trips", photos.cluster())
    new = set(ids[old:].tolist())
    before_clusters, after_clusters = before.clusters(), after.clusters()
    untouched = {number: members for number, members in after_clusters.items() if not members & new}
    kept = {number: members for number, members in before_clusters.items() if members in untouched.values()}
    assert len(untouched) >= 0.8 * len(before_clusters)
    for number, members in untouched.items():
        assert before_clusters.get(number) == members, number
    assert len(kept) == len(untouched)


def test_cli_and_saved_clusterings_carry_tau_and_the_distance(runner, tmp_path):
    vectors, times, timed = events(n=200)
    ids = np.arange(1, 201)
    db = make_fingerprint_db(tmp_path / "cli.db", vectors, times, ids)
    out = invoke(runner, "cluster", db, "--tau", "2h", "--alpha", "0.5", "--sim", "0.5", "--json").output
    report = json.loads(out[out.index("{") :])
    assert report["params"]["distance"] == "absolute" and report["params"]["tau"] == 7200
    with Photos.open(str(db)) as photos:
        selection = photos.choose(tau="2h", alpha=0.5, sim=0.5)
        expected = reference(vectors, times, np.ones(200, bool), 0.5, 0.5, 7200, selection.scale, "ward")
    got = {frozenset(int(img["id"]) - 1 for img in c["images"]) for c in report["clusters"]}
    assert got == expected
    text = invoke(runner, "cluster", db, "--tau", "2h", "--save", "trips").output
    assert "tau 2 h" in text
    with Photos.open(str(db)) as photos:
        saved = photos.clustering("trips")
    assert saved.params["distance"] == "absolute" and saved.params["tau"] == 7200
    out = invoke(runner, "cluster", db, "--tau", "soon", ok=False).output
    assert "tau must be a duration" in out and "Traceback" not in out
