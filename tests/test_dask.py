"""Clustering on a Dask cluster (``--dask local:2``): the same partitions as on one machine.

A real LocalCluster of two worker processes: the screening is scattered to
them once and the screen's row blocks are shared among them.
"""

from __future__ import annotations

import json

import pytest

from datasette_imagecluster import components, screen
from datasette_imagecluster.clustering import Params, build_tree, cut_tree, group
from importer.workers import DaskError, client, parse

from .conftest import invoke
from .test_clustering import reference_partition
from .test_components import REDUCIBLE, low_rank_bursts, partition


@pytest.fixture(scope="module")
def dask_client():
    with client("local:2") as connection:
        yield connection


@pytest.fixture
def small_tiles(monkeypatch):
    """The component path and the bounds at any size, in tiles small enough for many row blocks."""
    monkeypatch.setattr(components, "MIN_PHOTOS", 0)
    monkeypatch.setattr(screen, "BOUNDS_FROM", 0)
    monkeypatch.setattr(screen, "K", 16)
    monkeypatch.setattr(screen, "ROWS", 29)
    monkeypatch.setattr(screen, "COLS", 61)


@pytest.mark.parametrize("method", REDUCIBLE)
def test_the_same_partitions_with_the_screen_on_two_workers(dask_client, small_tiles, method):
    vectors, timestamps, ids = low_rank_bursts(seed=11)
    for alpha, sim in ((0.0, 0.9), (0.3, 0.85)):
        params = Params(sim=sim, alpha=alpha, method=method)
        alone = build_tree(vectors, timestamps, alpha=alpha, method=method, sim=sim)
        with components.on_dask(dask_client):
            shared = build_tree(vectors, timestamps, alpha=alpha, method=method, sim=sim)
        assert shared.valid_from_sim == sim  # the component path, not the full matrix
        got = partition(group(cut_tree(shared, sim), ids, timestamps, params))
        assert got == partition(group(cut_tree(alone, sim), ids, timestamps, params))
        assert got == reference_partition(vectors, timestamps, ids, sim, alpha, method, "euclidean")


def test_the_cli_clusters_on_a_local_cluster(db_path, small_tiles, runner):
    args = ["cluster", db_path, "--sim", "0.6", "--alpha", "0.3", "--method", "average", "--json"]
    alone = json.loads(invoke(runner, *args).stdout)
    shared = json.loads(invoke(runner, *args, "--dask", "local:2").stdout)
    assert shared["clusters"] == alone["clusters"]


@pytest.mark.parametrize(
    "spec, expected",
    [("local:3", (None, 3)), ("tcp://10.0.0.5:8786", ("tcp://10.0.0.5:8786", None))],
)
def test_dask_specs(spec, expected):
    assert parse(spec) == expected


@pytest.mark.parametrize("spec", ["local:0", "local:x", ""])
def test_bad_dask_specs_are_one_line(spec):
    with pytest.raises(DaskError):
        parse(spec)


def test_an_unreachable_scheduler_is_one_line(db_path, runner):
    result = invoke(runner, "cluster", db_path, "--dask", "tcp://127.0.0.1:1", ok=False)
    assert result.exit_code == 1
    assert (
        result.output.strip().splitlines()[-1].startswith("Error: cannot reach the Dask scheduler at tcp://127.0.0.1:1")
    )
