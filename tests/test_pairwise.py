"""pdist's values on every core: bit for bit what scipy's pdist gives, for every metric the clustering offers."""

from __future__ import annotations

import os
import threading

import numpy as np
import pytest
from scipy.spatial import distance

from datasette_imagecluster.engine import pairwise
from datasette_imagecluster.engine.parameters import METHODS, METRICS

from .test_absolute import partition


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_same_values_as_pdist_for_every_metric(monkeypatch, metric, dtype):
    monkeypatch.setattr(pairwise, "MIN_PAIRS", 0)
    x = np.random.default_rng(3).random((260, 300)).astype(dtype)
    x[7] = x[8]  # a pair at distance 0
    want = distance.pdist(x, metric)
    assert pairwise.pdist(x, metric, threads=2).tobytes() == want.tobytes()
    assert pairwise.pdist(x, metric, threads=3).tobytes() == want.tobytes()


@pytest.mark.parametrize("photos", [2, 3, 5, 31, 64, 257])
@pytest.mark.parametrize("block_bytes", [8, 4096, 2**25])
def test_every_pair_once_whatever_the_blocks(monkeypatch, photos, block_bytes):
    """Blocks of one row each, a few rows, or all rows: each pair lands in its own place in pdist's order."""
    monkeypatch.setattr(pairwise, "MIN_PAIRS", 0)
    monkeypatch.setattr(pairwise, "BLOCK_BYTES", block_bytes)
    x = np.random.default_rng(photos).normal(size=(photos, 16)).astype(np.float32)
    assert pairwise.pdist(x, "euclidean", threads=2).tobytes() == distance.pdist(x, "euclidean").tobytes()


def test_the_work_is_shared_among_threads(monkeypatch):
    """scipy lets go of Python's lock in cdist, so blocks computed on two threads run on two cores."""
    seen: set[int] = set()
    cdist = distance.cdist

    def recording(*args, **kwargs):
        seen.add(threading.get_ident())
        return cdist(*args, **kwargs)

    monkeypatch.setattr(distance, "cdist", recording)
    x = np.random.default_rng(0).random((1200, 64))
    assert pairwise.pdist(x, "euclidean", threads=2).tobytes() == distance.pdist(x, "euclidean").tobytes()
    assert len(seen) == 2 and threading.get_ident() not in seen
    seen.clear()
    pairwise.pdist(x, "euclidean", threads=1)  # a Dask worker's task: pdist itself, on the task's own thread
    pairwise.pdist(x[:20], "euclidean", threads=2)  # too few pairs to be worth threads
    assert not seen


def test_cores_counts_what_this_process_may_use():
    assert 1 <= pairwise.cores() <= (os.cpu_count() or 1)


GRAM_METRICS = pairwise.GRAM_METRICS


def features(n=700, dims=256, seed=5):
    """Photos in groups of a few, with a spectrum that falls off as CNN features' does, one exact copy, and
    capture times in outings: what the full matrices of thousands of photos hold."""
    rng = np.random.default_rng(seed)
    spectrum = 1.0 / np.sqrt(np.arange(1, dims + 1))
    centres = rng.standard_normal((n // 5, dims)) * spectrum * 3
    x = centres[rng.integers(0, len(centres), n)] + rng.standard_normal((n, dims)) * spectrum
    x += 20.0  # far from the origin, as ReLU features are: the products must not lose the distances
    x[11] = x[10]
    times = 1.2e9 + np.sort(rng.uniform(0, 3e7, n))
    return x.astype(np.float32), times


@pytest.mark.parametrize("metric", GRAM_METRICS)
def test_gram_is_within_the_tolerance_of_pdist(monkeypatch, metric):
    monkeypatch.setattr(pairwise, "GRAM_BYTES", 8 * 3000)  # blocks of a few rows
    x, _ = features()
    want = distance.pdist(x, metric)
    got = pairwise.gram(x, metric)
    assert got.shape == want.shape
    assert np.abs(got - want).max() <= pairwise.TOLERANCE * want.max()
    copy = 10 * len(x) - 10 * 11 // 2  # the pair (10, 11) in pdist's order
    if metric in ("euclidean", "sqeuclidean"):
        assert got[copy] == 0.0  # an exact copy is at 0, as pdist has it: measured directly
    assert abs(got[copy]) <= 1e-12


def test_distances_are_pdists_own_below_the_threshold_and_from_blas_above(monkeypatch):
    x, _ = features(n=300)
    assert pairwise.distances(x, "euclidean").tobytes() == distance.pdist(x, "euclidean").tobytes()
    monkeypatch.setattr(pairwise, "BLAS_FROM", 1000)
    assert pairwise.distances(x, "cityblock").tobytes() == distance.pdist(x, "cityblock").tobytes()
    blas = pairwise.distances(x, "euclidean")
    assert blas.tobytes() == pairwise.gram(x, "euclidean").tobytes()
    assert blas.tobytes() != distance.pdist(x, "euclidean").tobytes()  # not pdist's values: BLAS's own rounding


def _reference(monkeypatch, distance_kind, x, times, alpha, tau):
    """The reference's condensed distances (pdist's own values) and build_tree's arguments for that distance."""
    from datasette_imagecluster.engine import absolute
    from datasette_imagecluster.engine.clustering import mixed_distances

    if distance_kind == "absolute":
        scale = absolute.content_scale(x, "euclidean")
        dc = distance.pdist(x, "euclidean")
        d = dc / scale * (1 - alpha) + np.minimum(distance.pdist(times[:, None], "cityblock") / tau, 1) * alpha
        return d, {"distance": "absolute", "tau": tau, "scale": scale}
    with monkeypatch.context() as plain:
        plain.setattr(pairwise, "BLAS_FROM", 10**12)
        return mixed_distances(x, times, alpha, "euclidean"), {"distance": "imagecluster"}


def _separated_cuts(heights, tolerance, count=40):
    """Cuts between the reference's merge heights, none within the tolerance of one (the definition's cuts)."""
    h = np.unique(heights)
    middles = (h[:-1] + h[1:]) / 2
    gaps = np.diff(h)
    chosen = middles[gaps > 2 * tolerance]
    return chosen[np.linspace(0, len(chosen) - 1, min(count, len(chosen))).astype(int)]


@pytest.mark.parametrize("distance_kind", ["absolute", "imagecluster"])
@pytest.mark.parametrize("method", METHODS)
def test_the_full_matrix_on_blas_partitions_as_the_reference(monkeypatch, distance_kind, method):
    """Equivalence as the module defines it: merge heights within the tolerance of the reference's, and equal
    partitions at every cut that is not within the tolerance of a height, where no two heights are."""
    from scipy.cluster.hierarchy import fcluster, linkage

    from datasette_imagecluster.engine.clustering import build_tree

    monkeypatch.setattr(pairwise, "BLAS_FROM", 1000)
    x, times = features()
    d, extra = _reference(monkeypatch, distance_kind, x, times, alpha=0.4, tau=3600.0)
    want = linkage(d, method)
    tree = build_tree(x, times, alpha=0.4, method=method, **extra)
    tolerance = pairwise.TOLERANCE * float(np.abs(want[:, 2]).max())
    assert np.abs(np.sort(tree.linkage[:, 2]) - np.sort(want[:, 2])).max() <= tolerance
    cuts = _separated_cuts(want[:, 2], tolerance)
    assert len(cuts) >= 30
    for cut in cuts:
        expected = partition(fcluster(want, cut, "distance"), 1)
        assert partition(fcluster(tree.linkage, cut, "distance"), 1) == expected, cut


@pytest.mark.parametrize("distance_kind", ["absolute", "imagecluster"])
@pytest.mark.parametrize("method", ["average", "ward"])
def test_a_large_component_on_blas_partitions_as_the_reference(monkeypatch, distance_kind, method):
    """A component over the threshold is clustered from BLAS's distances: the same partition as the reference's
    at the cut it was built for, and at cuts above it (none within the tolerance of a merge height)."""
    from scipy.cluster.hierarchy import fcluster, linkage

    from datasette_imagecluster.engine import components
    from datasette_imagecluster.engine.clustering import build_tree, cut_tree

    monkeypatch.setattr(components, "MIN_PHOTOS", 0)
    monkeypatch.setattr(pairwise, "BLAS_FROM", 1000)
    measured = []
    gram = pairwise.gram
    monkeypatch.setattr(pairwise, "gram", lambda x, metric: measured.append(len(x)) or gram(x, metric))
    x, times = features()
    times = times[0] + (times - times[0]) / 2000  # a day shot continuously: large components
    alpha = 0.4
    d, extra = _reference(monkeypatch, distance_kind, x, times, alpha, tau=3600.0)
    sims = (0.42, 0.5, 0.58) if distance_kind == "absolute" else (0.7, 0.75, 0.8)
    want = linkage(d, method)
    top = 1.0 if distance_kind == "absolute" else float(d.max())
    tolerance = pairwise.TOLERANCE * float(want[:, 2].max())
    for sim in sims:
        tree = build_tree(x, times, alpha=alpha, method=method, sim=sim, **extra)
        assert tree.valid_from_sim == sim  # the component path
        cut = top * (1 - sim)
        assert np.abs(want[:, 2] - cut).min() > tolerance
        labels = cut_tree(tree, sim)
        assert partition(labels, 1) == partition(fcluster(want, cut, "distance"), 1)
    assert measured and min(measured) >= 50, measured  # components large enough for BLAS
