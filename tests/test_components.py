"""The component-by-component path gives imagecluster's partitions exactly."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial import distance

from datasette_imagecluster.engine import bounds, components
from datasette_imagecluster.engine.clustering import (
    Params,
    build_tree,
    cluster,
    cut_tree,
    group,
    mixed_distances,
)

from .test_clustering import reference_partition, structured_library

REDUCIBLE = ("single", "complete", "average", "weighted", "ward")
SIMS = (0.3, 0.5, 0.7, 0.9, 0.99)
ALPHAS = (0.0, 0.3, 0.7, 1.0)


def too_low(monkeypatch, factor):
    """The estimate of the largest distance falls short of it by ``factor``."""
    screening = components.screening

    def short(*args):
        screened = screening(*args)
        screened.estimate = (screened.estimate[0] * factor, *screened.estimate[1:])
        return screened

    monkeypatch.setattr(components, "screening", short)


def hidden(monkeypatch):
    """The pairs found far apart before the pass are the first two photos, at their own distance: the
    floors of both maxima are low, and the pass's candidates must hold the maxima themselves."""
    screening = components.screening

    def near_only(vectors, timestamps, metric):
        screened = screening(vectors, timestamps, metric)
        i, j = np.array([0]), np.array([1])
        d = screened.exact.pairs(i, j)
        screened.estimate, screened.far = (float(d[0]), 0, 1), (i, j, d)
        return screened

    monkeypatch.setattr(components, "screening", near_only)


@pytest.fixture(
    params=[
        "one pass, k 8",
        "estimate too low, k 8",
        "far pairs hidden, k 8",
        "one pass, k 1",
        "one pass, k = D",
        "loose bounds, k 8",
    ]
)
def always_components(request, monkeypatch):
    """The component path at any size, in many ragged tiles: with bounds from 8 or 1 principal
    directions (and 24 for the tighter ones) or exact ones (k = D), used however loose they are
    on these random fingerprints, or judged too loose and every tile measured in full; in one
    pass, or two when the estimates of the largest distances fall short of them, or with none."""
    monkeypatch.setattr(components, "MIN_PHOTOS", 0)
    monkeypatch.setattr(bounds, "ROWS", 37)
    monkeypatch.setattr(bounds, "COLS", 53)
    monkeypatch.setattr(components, "CELL", 5)  # 11 cells a tile, the last ragged
    monkeypatch.setattr(bounds, "K", {"k 8": 8, "k 1": 1, "k = D": 100_000}[request.param.split(", ")[1]])
    monkeypatch.setattr(bounds, "FINE", 24)
    monkeypatch.setattr(bounds, "TIGHT", 2.0 if request.param.startswith("loose") else 0.0)
    monkeypatch.setattr(bounds, "BOUNDS_FROM", 0)
    if request.param.startswith("estimate too low"):
        too_low(monkeypatch, 0.6)
        monkeypatch.setattr(components, "MIXED_GUESS", -0.4)  # the guess of max(d) too: a pass at the true cut
    if request.param.startswith("far pairs hidden"):
        hidden(monkeypatch)


def bursts(n_groups=60, noise=80, dims=128, seed=1):
    """Non-negative fingerprints like fc2's: bursts of near-duplicates and loners."""
    rng = np.random.default_rng(seed)
    vectors, times = [], []
    for _ in range(n_groups):
        centre = np.maximum(rng.normal(0, 1, dims), 0)
        start = 1.6e9 + rng.uniform(0, 9e7)
        for _ in range(int(rng.integers(2, 6))):
            vectors.append(np.maximum(centre + rng.normal(0, rng.uniform(0.05, 0.5), dims), 0))
            times.append(start + rng.uniform(0, 300))
    for _ in range(noise):
        vectors.append(np.maximum(rng.normal(0, 1, dims), 0))
        times.append(1.6e9 + rng.uniform(0, 9e7))
    return np.asarray(vectors, np.float32), np.asarray(times), np.arange(1, len(vectors) + 1) * 2


def partition(result):
    return {frozenset(int(i) for i in c) for c in result.clusters}


@pytest.mark.parametrize("method", REDUCIBLE)
def test_every_reducible_method_matches_the_reference_on_a_grid(always_components, method):
    vectors, timestamps, ids = bursts()
    by_components = 0
    for alpha in ALPHAS:
        for sim in SIMS:
            tree = build_tree(vectors, timestamps, alpha=alpha, method=method, sim=sim)
            by_components += tree.valid_from_sim == sim  # else too connected: the full matrix
            got = group(cut_tree(tree, sim), ids, timestamps, Params(sim=sim, alpha=alpha, method=method))
            expected = reference_partition(vectors, timestamps, ids, sim, alpha, method, "euclidean")
            assert partition(got) == expected, (sim, alpha)
    assert by_components >= 12  # most of the grid really took the component path


@pytest.mark.parametrize("method", REDUCIBLE)
def test_an_alpha_change_within_the_span_skips_the_pass(always_components, monkeypatch, method):
    """The plugin's alpha change: a pass keeps the edge candidates of alpha ± SPAN, so another alpha
    there seeks only the largest mixed distance again; outside the span, or at another sim, a new pass."""
    vectors, timestamps, ids = bursts(seed=7)
    screened = components.screening(vectors, timestamps, "euclidean")
    passes = []
    full_pass = components._pass
    monkeypatch.setattr(components, "_pass", lambda *a: passes.append(a[4]) or full_pass(*a))
    steps = [(0.7, 0.3), (0.7, 0.35), (0.7, 0.4), (0.7, 0.22), (0.7, 0.5), (0.7, 0.45), (0.9, 0.45)]
    for sim, alpha in steps:
        tree = build_tree(vectors, timestamps, alpha=alpha, method=method, sim=sim, screening=lambda *_: screened)
        assert tree.valid_from_sim == sim
        got = group(cut_tree(tree, sim), ids, timestamps, Params(sim=sim, alpha=alpha, method=method))
        assert partition(got) == reference_partition(vectors, timestamps, ids, sim, alpha, method, "euclidean")
    assert passes == ([0.3, 0.5, 0.45] if screened.projection.tight else [alpha for _, alpha in steps])


@pytest.mark.parametrize("metric", ["cosine", "sqeuclidean"])
def test_screened_metrics_match_the_reference(always_components, metric):
    vectors, timestamps, ids = bursts(seed=4)
    for alpha in (0.0, 0.5) if metric != "cosine" else (0.0,):
        for sim in (0.5, 0.8, 0.95):
            got = cluster(vectors, timestamps, ids, Params(sim=sim, alpha=alpha, metric=metric))
            assert partition(got) == reference_partition(vectors, timestamps, ids, sim, alpha, "average", metric)


def test_a_tree_built_for_one_sim_cuts_exactly_at_higher_sims(always_components):
    vectors, timestamps, ids = bursts(seed=2)
    tree = build_tree(vectors, timestamps, alpha=0.3, sim=0.6)
    assert not tree.can_cut(0.5) and tree.can_cut(0.6) and tree.can_cut(0.95)
    for sim in (0.6, 0.75, 0.9, 0.99):
        got = group(cut_tree(tree, sim), ids, timestamps, Params(sim=sim, alpha=0.3))
        assert partition(got) == reference_partition(vectors, timestamps, ids, sim, 0.3, "average", "euclidean")


def test_structured_library_of_the_full_path_tests(always_components):
    vectors, timestamps, ids = structured_library()
    for method in REDUCIBLE:
        for sim in (0.5, 0.9):
            got = cluster(vectors, timestamps, ids, Params(sim=sim, alpha=0.3, method=method))
            assert partition(got) == reference_partition(vectors, timestamps, ids, sim, 0.3, method, "euclidean")


def test_low_sim_falls_back_to_the_full_matrix(always_components):
    vectors, timestamps, ids = bursts(seed=3)
    tree = build_tree(vectors, timestamps, alpha=0.3, sim=0.0)
    assert tree.valid_from_sim == 0.0  # everything is connected: imagecluster's own path
    got = group(cut_tree(tree, 0.0), ids, timestamps, Params(sim=0.0))
    assert partition(got) == reference_partition(vectors, timestamps, ids, 0.0, 0.3, "average", "euclidean")


def test_non_reducible_methods_keep_the_full_matrix(always_components):
    vectors, timestamps, ids = bursts(seed=5)
    for method in ("centroid", "median"):
        tree = build_tree(vectors, timestamps, alpha=0.3, method=method, sim=0.8)
        assert tree.valid_from_sim == 0.0


def test_screen_is_close_to_pdist():
    from scipy.spatial.distance import pdist

    vectors, _, _ = bursts(seed=6, dims=512)
    for metric in ("euclidean", "sqeuclidean", "cosine"):
        exact = pdist(vectors, metric)
        full = bounds.Exact(vectors, metric)
        n = len(vectors)
        approx = np.concatenate([full.between(slice(r, r + 1), slice(r + 1, n))[0] for r in range(n - 1)])
        scale = exact.max()
        assert np.abs(approx - exact).max() / scale < 1e-4, metric
        i, j = np.triu_indices(n, 1)
        assert np.abs(full.pairs(i, j) - exact).max() / scale < 1e-4, metric
        projection = bounds.project(full.x, np.arange(n), full.norms)
        found = bounds.far_pairs(projection, full)[2].max()  # by bounds or in full: the ends are extremes here
        assert abs(found - scale) / scale < 1e-4, (metric, projection.tight)


@pytest.mark.parametrize("short, passes", [(None, 1), ("content", 2), ("mixed", 2)])
def test_one_pass_unless_the_estimate_falls_short(monkeypatch, short, passes):
    """One pass where the estimates of max(d_c) and max(d) before it hold (the far pairs find both here)."""
    monkeypatch.setattr(components, "MIN_PHOTOS", 0)
    if short == "content":
        too_low(monkeypatch, 0.6)
    if short == "mixed":
        monkeypatch.setattr(components, "MIXED_GUESS", -0.4)
    scans, scan = [], components._Scan
    monkeypatch.setattr(components, "_Scan", lambda *a: scans.append(a) or scan(*a))
    vectors, timestamps, ids = bursts(seed=7)
    got = cluster(vectors, timestamps, ids, Params(sim=0.7, alpha=0.3))
    assert len(scans) == passes
    assert partition(got) == reference_partition(vectors, timestamps, ids, 0.7, 0.3, "average", "euclidean")


def bounded_tiles(monkeypatch, rows: int, cols: int, cell: int) -> None:
    """The component path with bounds from 16 directions at any size, in tiles of rows x cols photos."""
    monkeypatch.setattr(components, "MIN_PHOTOS", 0)
    monkeypatch.setattr(bounds, "BOUNDS_FROM", 0)
    monkeypatch.setattr(bounds, "K", 16)
    monkeypatch.setattr(bounds, "ROWS", rows)
    monkeypatch.setattr(bounds, "COLS", cols)
    monkeypatch.setattr(components, "CELL", cell)


def low_rank_bursts(seed=8, dims=256, rank=12):
    """Bursts whose variance lies mostly in a few directions, as real CNN fingerprints' does."""
    vectors, timestamps, ids = bursts(seed=seed, dims=rank, noise=150)
    rng = np.random.default_rng(seed)
    mixing = rng.normal(0, 1, (rank, dims))
    return (vectors @ mixing + rng.normal(0, 0.05, (len(vectors), dims))).astype(np.float32), timestamps, ids


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_far_pairs_chosen_by_their_bounds_hold_the_diameter(monkeypatch, metric):
    """Where the bounds are tight, the far pairs are chosen by their lower bounds and then measured."""
    monkeypatch.setattr(bounds, "BOUNDS_FROM", 0)
    vectors, timestamps, _ = low_rank_bursts()
    exact = bounds.Exact(vectors, metric)
    projection = bounds.project(exact.x, timestamps, exact.norms)
    assert projection.tight
    i, j, d = bounds.far_pairs(projection, exact)
    assert np.array_equal(d, exact.pairs(i, j))
    largest = distance.pdist(vectors, metric).max()
    assert abs(d.max() - largest) / largest < 1e-5


@pytest.mark.parametrize("alpha, sim", [(0.0, 0.9), (0.3, 0.8), (0.6, 0.8)])
def test_the_pass_alone_finds_both_maxima_in_its_last_tile(monkeypatch, alpha, sim):
    """With no far pairs to start from, the two photos farthest apart, taken last, are found by the last
    tile the pass bounds, after many tiles with edge candidates: max(d_c) and max(d) are pdist's."""
    bounded_tiles(monkeypatch, 64, 128, 16)
    hidden(monkeypatch)
    made, screening = [], components.screening
    monkeypatch.setattr(components, "screening", lambda *args: made.append(screening(*args)) or made[-1])
    vectors, timestamps, ids = low_rank_bursts()
    centre, spread = vectors.mean(axis=0), vectors[np.argmax(np.linalg.norm(vectors - vectors.mean(axis=0), axis=1))]
    ends = np.stack([centre + 1.5 * (spread - centre), centre - 1.5 * (spread - centre)]).astype(np.float32)
    vectors, timestamps = np.vstack([vectors, ends]), np.append(timestamps, timestamps.max() + [1.0, 2.0])
    ids = np.append(ids, [ids.max() + 2, ids.max() + 4])
    _, d_max = components.build(vectors, timestamps, alpha, "average", "euclidean", sim)
    assert made[-1].stats["edge candidates"] > 0
    assert made[-1].dc_max == distance.pdist(vectors).max()
    assert d_max == mixed_distances(vectors, timestamps, alpha, "euclidean").max()
    got = cluster(vectors, timestamps, ids, Params(sim=sim, alpha=alpha))
    assert partition(got) == reference_partition(vectors, timestamps, ids, sim, alpha, "average", "euclidean")


@pytest.mark.parametrize("second_step", ["bounded again", "measured in full"])
@pytest.mark.parametrize("method", REDUCIBLE)
def test_the_bounds_prune_and_stay_exact(monkeypatch, method, second_step):
    """Tiles set aside for the true cut are bounded again on the FINE directions, or measured in full."""
    bounded_tiles(monkeypatch, 128, 256, 48)
    monkeypatch.setattr(components, "FINER_FROM", 0.0 if second_step == "bounded again" else np.inf)
    vectors, timestamps, ids = low_rank_bursts()
    screened = components.screening(vectors, timestamps, "euclidean")
    assert screened.projection.tight and screened.projection.has_fine
    steps = {"pairs in tiles set aside for the true cut": 0, "pairs in tiles bounded again with more directions": 0}
    for alpha in (0.0, 0.3, 0.7):
        for sim in (0.75, 0.85, 0.9, 0.95):
            try:
                components.build(vectors, timestamps, alpha, method, "euclidean", sim, screened=screened)
            except components.TooConnected:  # alpha 0.7, sim 0.75: the time term links most photos
                assert (alpha, sim) == (0.7, 0.75)
            stats = screened.stats
            steps = {key: count + stats[key] for key, count in steps.items()}
            measured = stats["pairs in tiles measured in full"] + stats.get("measured in doubt", 0)
            if sim >= 0.9 and alpha <= 0.3:  # where edges are few (measuring the rest in full is cheaper)
                assert measured < 0.3 * stats["pairs"], (alpha, sim, stats)
            tree = build_tree(vectors, timestamps, alpha=alpha, method=method, sim=sim)
            got = group(cut_tree(tree, sim), ids, timestamps, Params(sim=sim, alpha=alpha, method=method))
            assert partition(got) == reference_partition(vectors, timestamps, ids, sim, alpha, method, "euclidean")
    assert screened.dc_max is not None  # settled once, reused by every alpha after the first
    assert steps["pairs in tiles set aside for the true cut"] > 0
    assert (steps["pairs in tiles bounded again with more directions"] > 0) == (second_step == "bounded again")


def test_random_fingerprints_are_measured_in_full(monkeypatch):
    monkeypatch.setattr(components, "MIN_PHOTOS", 0)
    monkeypatch.setattr(bounds, "K", 8)  # 8 of 512 random dimensions: the bounds say little
    monkeypatch.setattr(bounds, "BOUNDS_FROM", 0)
    vectors, timestamps, ids = bursts(seed=9, dims=512)
    screened = components.screening(vectors, timestamps, "euclidean")
    assert not screened.projection.tight and not screened.projection.has_fine
    got = cluster(vectors, timestamps, ids, Params(sim=0.7, alpha=0.3))
    assert partition(got) == reference_partition(vectors, timestamps, ids, 0.7, 0.3, "average", "euclidean")


@pytest.mark.parametrize("metric", sorted({components.TIME_METRIC.get(m, m) for m in components.SCREENED_METRICS}))
def test_time_distances_are_pdists_bit_for_bit(metric):
    from scipy.spatial.distance import pdist

    rng = np.random.default_rng(3)
    times = np.concatenate([1.6e9 + rng.uniform(0, 9.5e7, 300), [1.6e9, 1.6e9], rng.uniform(0, 1, 20)])
    assert np.array_equal(components._time_pdist(times, metric), pdist(times[:, None], metric))


@pytest.mark.parametrize("photos", ["low rank", "few distinct photos", "one photo over and over"])
def test_directions_are_orthonormal_and_the_bounds_hold_for_every_pair(photos):
    """Whatever the sample spans, the fitted directions are orthonormal (or zero where it spans fewer
    than k), so the lemma's bounds hold for every pair: lower ≤ distance ≤ upper, within EPS."""
    vectors, timestamps, _ = low_rank_bursts()
    if photos != "low rank":
        distinct = vectors[:5] if photos == "few distinct photos" else vectors[:1]
        vectors = distinct[np.arange(len(vectors)) % len(distinct)]
    k = 16
    directions = bounds._directions(vectors, vectors.mean(axis=0, dtype=np.float64).astype(np.float32), k, 0)
    assert directions.shape == (vectors.shape[1], k) and directions.dtype == np.float32
    used = np.flatnonzero(np.abs(directions).max(axis=0) > 0)
    assert len(used) == {"low rank": k, "few distinct photos": 4, "one photo over and over": 0}[photos]
    gram = directions[:, used].T.astype(np.float64) @ directions[:, used]
    assert np.abs(gram - np.eye(len(used))).max(initial=0.0) < 1e-6
    norms = np.einsum("ij,ij->i", vectors, vectors, dtype=np.float64)
    p = bounds.project(vectors, timestamps, norms, k=k)
    lower2 = p.lower(0, p.size, 0, p.size).astype(np.float64)
    i, j = np.triu_indices(p.size, 1)
    lower2, upper2 = lower2[i, j], lower2[i, j] + p.upper_gap(i, j)
    true2 = distance.pdist(vectors[p.order].astype(np.float64), "sqeuclidean")
    slack = bounds.EPS * (p.n[i] + p.n[j])
    assert np.all(lower2 <= true2 + slack) and np.all(true2 <= upper2 + slack)
