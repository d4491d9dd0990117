"""The clustering core against a plain pdist/linkage/fcluster implementation of imagecluster."""

from __future__ import annotations

import json

import numpy as np
import pytest
import sqlite_utils
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import pdist

from datasette_imagecluster.engine.clustering import (
    METHODS,
    Params,
    build_tree,
    cluster,
    cut_tree,
    group,
    pca_project,
)
from datasette_imagecluster.errors import ClusterError
from datasette_imagecluster.library.schema import ensure_schema
from datasette_imagecluster.library.vectors import encode

from .conftest import invoke

REDUCIBLE = ("single", "complete", "average", "weighted", "ward")
SIMS = (0.0, 0.3, 0.5, 0.7, 0.9, 0.99)
ALPHAS = (0.0, 0.3, 0.7, 1.0)


def reference_partition(vectors, timestamps, ids, sim, alpha, method, metric, min_csize=2):
    """imagecluster's algorithm, written plainly: the oracle for every comparison."""
    dfps = pdist(vectors, metric)
    dfps = dfps / dfps.max()
    if alpha == 0:  # time plays no part (and cosine of 1-d times would be NaN)
        d = dfps
    else:
        dts = pdist(np.asarray(timestamps, dtype=float)[:, None], metric)
        dts = dts / dts.max()
        d = dfps * (1 - alpha) + dts * alpha
    z = linkage(d, method=method)
    cut = fcluster(z, t=d.max() * (1.0 - sim), criterion="distance")
    groups: dict[int, list[int]] = {}
    for image_id, label in zip(ids, cut):
        groups.setdefault(int(label), []).append(int(image_id))
    return {frozenset(g) for g in groups.values() if len(g) >= min_csize}


def structured_library(n_groups=12, per_group=4, noise=25, dims=64, seed=7):
    """Groups of near-duplicate fingerprints plus loners, with bursts of timestamps."""
    rng = np.random.default_rng(seed)
    vectors, timestamps = [], []
    for g in range(n_groups):
        centre = rng.normal(0, 1, dims) * rng.uniform(0.5, 3)
        start = 1.6e9 + rng.uniform(0, 3e7)
        for i in range(per_group):
            vectors.append(centre + rng.normal(0, rng.uniform(0.05, 0.6), dims))
            timestamps.append(start + rng.uniform(0, 600))
    for _ in range(noise):
        vectors.append(rng.normal(0, 2, dims))
        timestamps.append(1.6e9 + rng.uniform(0, 3e7))
    ids = np.arange(1, len(vectors) + 1) * 3  # ids need not be dense
    return np.asarray(vectors, dtype=np.float32), np.asarray(timestamps), ids


def partition(result):
    return {frozenset(int(i) for i in members) for members in result.clusters}


@pytest.mark.parametrize("method", METHODS)
def test_every_method_matches_the_reference_on_a_grid(method):
    vectors, timestamps, ids = structured_library()
    for alpha in ALPHAS:
        for sim in SIMS:
            params = Params(sim=sim, alpha=alpha, method=method)
            expected = reference_partition(vectors, timestamps, ids, sim, alpha, method, "euclidean")
            assert partition(cluster(vectors, timestamps, ids, params)) == expected, (sim, alpha)


@pytest.mark.parametrize("metric", ["cityblock", "chebyshev", "sqeuclidean", "braycurtis", "canberra"])
def test_other_metrics_match_the_reference(metric):
    vectors, timestamps, ids = structured_library(seed=3)
    for alpha in (0.0, 0.5):
        for sim in (0.4, 0.8):
            params = Params(sim=sim, alpha=alpha, metric=metric)
            expected = reference_partition(vectors, timestamps, ids, sim, alpha, "average", metric)
            assert partition(cluster(vectors, timestamps, ids, params)) == expected


def test_cosine_content_distance_matches_the_reference_without_time():
    vectors, timestamps, ids = structured_library(seed=5)
    for sim in (0.3, 0.6, 0.9):
        expected = reference_partition(vectors, timestamps, ids, sim, 0.0, "average", "cosine")
        got = cluster(vectors, timestamps, ids, Params(sim=sim, alpha=0.0, metric="cosine"))
        assert partition(got) == expected


def test_cosine_with_time_uses_absolute_time_difference():
    # imagecluster would produce NaN here (cosine of 1-d timestamps).
    vectors, timestamps, ids = structured_library(seed=5)
    got = cluster(vectors, timestamps, ids, Params(sim=0.9, alpha=0.5, metric="cosine"))
    content = pdist(vectors, "cosine")
    time = pdist(timestamps[:, None], "cityblock")
    d = content / content.max() * 0.5 + time / time.max() * 0.5
    cut = fcluster(linkage(d, "average"), d.max() * 0.1, "distance")
    groups: dict[int, set] = {}
    for i, label in zip(ids, cut):
        groups.setdefault(label, set()).add(int(i))
    assert partition(got) == {frozenset(g) for g in groups.values() if len(g) >= 2}


def test_alpha_one_recovers_time_bursts():
    vectors, timestamps, ids = structured_library(noise=0)
    result = cluster(vectors, timestamps, ids, Params(sim=0.9999, alpha=1.0))
    assert sorted(len(c) for c in result.clusters) == [4] * 12


def test_min_csize_filters_and_one_keeps_singletons():
    vectors, timestamps, ids = structured_library()
    result = cluster(vectors, timestamps, ids, Params(sim=0.9, alpha=0.0, min_csize=1))
    assert result.n_clustered == len(ids)
    big = cluster(vectors, timestamps, ids, Params(sim=0.9, alpha=0.0, min_csize=3))
    assert all(len(c) >= 3 for c in big.clusters)
    assert {frozenset(c.tolist()) for c in big.clusters} <= {frozenset(c.tolist()) for c in result.clusters}


def test_order_is_by_size_then_earliest_then_id():
    vectors, timestamps, ids = structured_library()
    result = cluster(vectors, timestamps, ids, Params(sim=0.8, alpha=0.3))
    ts = dict(zip(ids.tolist(), timestamps.tolist()))
    keys = [(-len(c), ts[int(c[0])], int(c[0])) for c in result.clusters]
    assert keys == sorted(keys)
    for members in result.clusters:
        member_keys = [(ts[int(i)], int(i)) for i in members]
        assert member_keys == sorted(member_keys)
        assert ts[int(members[0])] == min(ts[int(i)] for i in members)


def test_stats_are_imagecluster_table():
    vectors, timestamps, ids = structured_library(noise=0)
    result = cluster(vectors, timestamps, ids, Params(sim=0.9999, alpha=1.0))
    assert result.stats() == [(4, 12)]
    assert result.n_clustered == 48


def test_recutting_a_tree_equals_clustering_from_scratch():
    vectors, timestamps, ids = structured_library()
    tree = build_tree(vectors, timestamps, alpha=0.3, method="average", metric="euclidean")
    for sim in SIMS:
        params = Params(sim=sim, alpha=0.3)
        recut = group(cut_tree(tree, sim), ids, timestamps, params)
        assert partition(recut) == partition(cluster(vectors, timestamps, ids, params))


def test_pca_keeps_distances_with_all_components_and_reduces_with_fewer():
    vectors, timestamps, ids = structured_library()
    full = pca_project(vectors, vectors.shape[1])
    np.testing.assert_allclose(pdist(full), pdist(vectors.astype(np.float64)), rtol=1e-6, atol=1e-6)
    assert pca_project(vectors, 5).shape == (len(ids), 5)
    fraction = pca_project(vectors, 0.9)
    s = np.linalg.svd(vectors - vectors.mean(axis=0), compute_uv=False) ** 2
    ratio = np.cumsum(s) / s.sum()
    k = fraction.shape[1]
    assert ratio[k - 1] >= 0.9 and (k == 1 or ratio[k - 2] < 0.9)


def test_pca_option_clusters_the_projected_vectors():
    vectors, timestamps, ids = structured_library()
    projected = pca_project(vectors, 10)
    expected = reference_partition(projected, timestamps, ids, 0.7, 0.2, "average", "euclidean")
    assert partition(cluster(vectors, timestamps, ids, Params(sim=0.7, alpha=0.2, pca=10))) == expected


def test_identical_times_and_identical_content_are_well_defined():
    vectors = np.ones((5, 8), dtype=np.float32)
    timestamps = np.full(5, 1.6e9)
    result = cluster(vectors, timestamps, np.arange(5), Params(sim=0.5, alpha=0.5))
    assert [sorted(c.tolist()) for c in result.clusters] == [[0, 1, 2, 3, 4]]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"sim": 1.5}, "sim must be between 0 and 1"),
        ({"sim": -0.1}, "sim must be between 0 and 1"),
        ({"sim": "nan"}, "sim must be between 0 and 1"),
        ({"sim": "abc"}, "sim must be a number"),
        ({"alpha": 2}, "alpha must be between 0 and 1"),
        ({"alpha": "inf"}, "alpha must be between 0 and 1"),
        ({"method": "kmeans"}, "unknown method 'kmeans'"),
        ({"metric": "hamming-ish"}, "unknown metric"),
        ({"method": "ward", "metric": "cityblock"}, "only defined for the euclidean metric"),
        ({"method": "centroid", "metric": "cosine"}, "only defined for the euclidean metric"),
        ({"min_csize": 0}, "min_csize must be at least 1"),
        ({"min_csize": "two"}, "min_csize must be a whole number"),
        ({"pca": "1.5"}, "variance fraction must be between 0 and 1"),
        ({"pca": "lots"}, "pca must be a number of components"),
    ],
)
def test_bad_parameters_get_clear_messages(kwargs, message):
    with pytest.raises(ClusterError, match=message):
        Params(**kwargs)


def test_too_few_fingerprints():
    with pytest.raises(ClusterError, match="at least 2 fingerprints, found 1"):
        cluster(np.ones((1, 4), np.float32), np.zeros(1), np.arange(1), Params())


def test_cosine_of_zero_vector_is_refused_not_nan():
    vectors = np.array([[0, 0], [1, 0], [0, 1]], dtype=np.float32)
    with pytest.raises(ClusterError, match="undefined"):
        cluster(vectors, np.arange(3.0), np.arange(3), Params(metric="cosine", alpha=0))


# -- the CLI on a database of structured fingerprints ------------------------


def make_fingerprint_db(path, vectors, timestamps, ids, model="vgg16", layer="fc2", weights="imagenet"):
    db = sqlite_utils.Database(path)
    ensure_schema(db)
    db.conn.close()
    return add_photos(path, vectors, timestamps, ids, model, layer, weights)


def add_photos(path, vectors, timestamps, ids, model="vgg16", layer="fc2", weights="imagenet"):
    """Rows for these photos and their fingerprints, as an import writes them (no files)."""
    db = sqlite_utils.Database(path)
    db["images"].insert_all(
        {
            "id": int(i),
            "path": f"/photos/{i}.jpg",
            "size": 1,
            "mtime": 0.0,
            "sha256": str(i),
            "timestamp": float(t),
            "taken": str(t),
            "source": "folder",
        }
        for i, t in zip(ids, timestamps)
    )
    db["fingerprints"].insert_all(
        {
            "image_id": int(i),
            "model": model,
            "layer": layer,
            "weights": weights,
            "dims": vectors.shape[1],
            "vector": encode(v),
        }
        for i, v in zip(ids, vectors)
    )
    db.conn.close()
    return path


@pytest.mark.parametrize("method", METHODS)
def test_cli_json_matches_the_reference(runner, tmp_path, method):
    vectors, timestamps, ids = structured_library(seed=11)
    db = make_fingerprint_db(tmp_path / "f.db", vectors, timestamps, ids)
    for alpha in (0.0, 0.3, 1.0):
        for sim in (0.2, 0.5, 0.8, 0.95):
            args = ("--sim", sim, "--alpha", alpha, "--method", method, "--distance", "imagecluster", "--json")
            out = invoke(runner, "cluster", db, *args).output
            report = json.loads(out[out.index("{") :])
            got = {frozenset(img["id"] for img in c["images"]) for c in report["clusters"]}
            assert got == reference_partition(vectors, timestamps, ids, sim, alpha, method, "euclidean")
            assert report["params"]["method"] == method and report["params"]["sim"] == sim
            assert all(c["size"] == len(c["images"]) for c in report["clusters"])


def test_cli_clusters_the_largest_fingerprint_set_unless_told(runner, tmp_path):
    vectors, timestamps, ids = structured_library(seed=2)
    db = make_fingerprint_db(tmp_path / "f.db", vectors, timestamps, ids)
    sqlite_db = sqlite_utils.Database(db)
    sqlite_db["fingerprints"].insert_all(
        {
            "image_id": int(i),
            "model": "vgg16",
            "layer": "fc1",
            "weights": "imagenet",
            "dims": 3,
            "vector": encode(np.ones(3)),
        }
        for i in ids[:5]
    )
    sqlite_db.conn.close()
    result = invoke(runner, "cluster", db, "--json")
    assert _json(result.output)["n_images"] == len(ids)
    assert "also has vgg16/fc1 (weights imagenet)" in result.output
    ambiguous = invoke(runner, "cluster", db, "--model", "vgg16", ok=False)
    assert ambiguous.exit_code == 1 and "several fingerprint sets" in ambiguous.output
    assert len(ambiguous.output.strip().splitlines()) == 1
    ok = invoke(runner, "cluster", db, "--layer", "fc1", "--json").output
    assert _json(ok)["n_images"] == 5


def _json(output: str) -> dict:
    return json.loads(output[output.index("{") : output.rindex("}") + 1])


@pytest.mark.parametrize(
    "args, message",
    [
        (["--sim", "2"], "sim must be between 0 and 1"),
        (["--alpha", "x"], "alpha must be a number"),
        (["--method", "ward", "--metric", "cosine"], "only defined for the euclidean metric"),
        (["--min-csize", "0"], "min_csize must be at least 1"),
        (["--model", "resnet"], "no fingerprints match"),
    ],
)
def test_cli_bad_parameters_are_one_line_errors(runner, tmp_path, args, message):
    vectors, timestamps, ids = structured_library(seed=2)
    db = make_fingerprint_db(tmp_path / "f.db", vectors, timestamps, ids)
    result = invoke(runner, "cluster", db, *args, ok=False)
    assert result.exit_code == 1
    assert message in result.output
    assert "Traceback" not in result.output


def test_cli_names_the_images_whose_fingerprints_are_not_finite(runner, tmp_path):
    vectors, timestamps, ids = structured_library(seed=2)
    vectors[[3, 8], 0] = [np.nan, np.inf]
    db = make_fingerprint_db(tmp_path / "f.db", vectors, timestamps, ids)
    result = invoke(runner, "cluster", db, ok=False)
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert f"the fingerprints of images {ids[3]}, {ids[8]} hold NaN or infinite values: re-import them" in result.output


def test_cli_on_files_that_are_not_imagecluster_databases(runner, tmp_path):
    empty = tmp_path / "empty.db"
    sqlite_utils.Database(empty)["t"].insert({"a": 1})
    result = invoke(runner, "cluster", empty, ok=False)
    assert result.exit_code == 1 and "not an imagecluster database" in result.output
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not sqlite" * 100)
    result = invoke(runner, "cluster", junk, ok=False)
    assert result.exit_code == 1 and "not a readable SQLite database" in result.output
    result = invoke(runner, "cluster", tmp_path / "missing.db", ok=False)
    assert result.exit_code == 2 and "does not exist" in result.output
