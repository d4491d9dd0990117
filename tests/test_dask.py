"""Importing and clustering on a Dask cluster: the same fingerprints and partitions as on one machine.

A real LocalCluster of two worker processes. Importing, they decode and
fingerprint Holidays photos with the pretrained model and the client stores
the batches; clustering, the screening is scattered to them once and the
screen's row blocks are shared among them.
"""

from __future__ import annotations

import json
import os
import random
import threading

import numpy as np
import pytest
from click.testing import CliRunner

from datasette_imagecluster.engine import bounds, components
from datasette_imagecluster.engine.clustering import Params, build_tree, cut_tree, group
from datasette_imagecluster.library.fingerprints import fingerprint_sets, load_library
from importer.workers import ROOT_MAP_VARIABLE, DaskError, client, parse

from .conftest import connect, invoke, linked_holidays, rows
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
    monkeypatch.setattr(bounds, "BOUNDS_FROM", 0)
    monkeypatch.setattr(bounds, "K", 16)
    monkeypatch.setattr(bounds, "ROWS", 29)
    monkeypatch.setattr(bounds, "COLS", 61)
    monkeypatch.setattr(components, "CELL", 7)


@pytest.mark.parametrize("method", REDUCIBLE)
def test_the_same_partitions_with_the_screen_on_two_workers(dask_client, small_tiles, method):
    """Both steps of the pass on the workers: every row block, then the tiles set aside for the true cut."""
    from distributed import get_task_stream

    vectors, timestamps, ids = low_rank_bursts(seed=11)
    first_step = min(len(range(0, len(vectors) - 1, bounds.ROWS)), 4 * 2)  # tasks of two workers
    for alpha, sim in ((0.0, 0.9), (0.3, 0.85)):
        params = Params(sim=sim, alpha=alpha, method=method)
        alone = build_tree(vectors, timestamps, alpha=alpha, method=method, sim=sim)
        with get_task_stream(dask_client) as tasks, components.on_dask(dask_client):
            shared = build_tree(vectors, timestamps, alpha=alpha, method=method, sim=sim)
        assert shared.valid_from_sim == sim  # the component path, not the full matrix
        assert sum(str(task["key"]).startswith("_scan_shared") for task in tasks.data) > first_step
        got = partition(group(cut_tree(shared, sim), ids, timestamps, params))
        assert got == partition(group(cut_tree(alone, sim), ids, timestamps, params))
        assert got == reference_partition(vectors, timestamps, ids, sim, alpha, method, "euclidean")


def test_large_components_are_clustered_on_the_workers(dask_client, small_tiles, monkeypatch):
    from distributed import get_task_stream

    monkeypatch.setattr(components, "ON_WORKERS", 4)
    vectors, timestamps, ids = low_rank_bursts(seed=11)
    params = Params(sim=0.85, alpha=0.3, method="average")
    with get_task_stream(dask_client) as tasks, components.on_dask(dask_client):
        tree = build_tree(vectors, timestamps, alpha=0.3, method="average", sim=0.85)
    assert any(str(task["key"]).startswith("_linkage") for task in tasks.data)
    got = partition(group(cut_tree(tree, 0.85), ids, timestamps, params))
    assert got == reference_partition(vectors, timestamps, ids, 0.85, 0.3, "average", "euclidean")


def test_the_cli_clusters_on_a_local_cluster(db_path, small_tiles, runner):
    args = ["cluster", db_path, "--sim", "0.6", "--alpha", "0.3", "--method", "average", "--json"]
    alone = json.loads(invoke(runner, *args).stdout)
    shared = json.loads(invoke(runner, *args, "--dask", "local:2").stdout)
    assert shared["clusters"] == alone["clusters"]


def test_a_local_cluster_for_clustering_shares_this_process_copy(small_tiles, monkeypatch):
    """Its workers are threads of this process, and each task gets a name for the one screening, not a copy
    (``scatter`` would copy it for every worker, in-process too); the partitions are those of one process."""
    vectors, timestamps, ids = low_rank_bursts(seed=5)
    seen = []
    scan = components._scan_tiles
    monkeypatch.setattr(
        components, "_scan_tiles", lambda screened, *args: seen.append(screened) or scan(screened, *args)
    )
    alone = build_tree(vectors, timestamps, alpha=0.3, method="average", sim=0.85)
    seen.clear()
    with client("local:2", threads=True) as connection, components.on_dask(connection):
        assert set(connection.run(os.getpid).values()) == {os.getpid()}
        # no memory limit: one would count this process's library as each worker's and pause them
        assert set(connection.run(lambda dask_worker: dask_worker.memory_manager.memory_limit).values()) == {None}
        shared = build_tree(vectors, timestamps, alpha=0.3, method="average", sim=0.85)
    assert len(seen) > 2 and all(screened is seen[0] for screened in seen)
    assert components._IN_PROCESS == {}  # let go after the pass
    params = Params(sim=0.85, alpha=0.3, method="average")
    got = partition(group(cut_tree(shared, 0.85), ids, timestamps, params))
    assert got == partition(group(cut_tree(alone, 0.85), ids, timestamps, params))
    assert got == reference_partition(vectors, timestamps, ids, 0.85, 0.3, "average", "euclidean")


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


def test_a_local_cluster_leaves_this_process_environment_as_it_found_it():
    """Its nannies set one-thread BLAS here for their workers: not for what this process starts later."""
    before = dict(os.environ)
    with client("local:1"):
        pass
    assert dict(os.environ) == before


def test_an_unreachable_scheduler_is_one_line(db_path, runner):
    result = invoke(runner, "cluster", db_path, "--dask", "tcp://127.0.0.1:1", ok=False)
    assert result.exit_code == 1
    assert (
        result.output.strip().splitlines()[-1].startswith("Error: cannot reach the Dask scheduler at tcp://127.0.0.1:1")
    )


# The pretrained model, decoded and fingerprinted by the workers (no --workers: they decode).
ON_WORKERS = ("--model", "efficientnet-lite0", "-s")


def _fingerprints(db) -> dict[str, np.ndarray]:
    conn = connect(db)
    try:
        sets = fingerprint_sets(conn)
        assert len(sets) == 1
        library = load_library(conn, sets[0])
        paths = dict(conn.execute("select id, path from images"))
    finally:
        conn.close()
    return {paths[i]: v for i, v in zip(library.ids, library.vectors)}


IMAGE_COLUMNS = "path, size, sha256, format, width, height, orientation, taken, timestamp, camera_model, pixels_from"


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """Twelve Holidays photos and a file that is not one."""
    folder = linked_holidays(tmp_path_factory.mktemp("holidays"), 12)
    (folder / "broken.jpg").write_bytes(b"not a photo")
    return folder


@pytest.fixture(scope="module")
def here(tmp_path_factory, photos):
    db = tmp_path_factory.mktemp("here") / "photos.db"
    invoke(CliRunner(), "import", db, photos, *ON_WORKERS)
    return db


def test_import_on_two_workers_stores_what_one_machine_does(dask_client, here, photos, tmp_path, runner):
    db = tmp_path / "photos.db"
    result = invoke(runner, "import", db, photos, *ON_WORKERS, "--dask", dask_client.scheduler.address)
    assert "Imported 12, unchanged 0" in result.output and "on the CPU of 2 Dask workers" in result.output
    local, shared = _fingerprints(here), _fingerprints(db)
    assert sorted(local) == sorted(shared) and len(local) == 12
    for path, vector in local.items():
        np.testing.assert_allclose(shared[path], vector, atol=1e-4)
    for query in (
        f"select {IMAGE_COLUMNS} from images order by path",
        "select path, stage, message from import_errors",
    ):
        assert rows(db, query) == rows(here, query)
    assert rows(db, "select count(*) from thumbnails") == [(12,)]


def test_an_interrupted_import_goes_on_on_the_workers(dask_client, photos, tmp_path, runner):
    """Half imported here (as if interrupted), the rest on the workers, then nothing left to do."""
    folder = tmp_path / "photos"
    folder.mkdir()
    names = sorted(p.name for p in photos.iterdir())
    for name in names[:6]:
        (folder / name).symlink_to(photos / name)
    db = tmp_path / "photos.db"
    invoke(runner, "import", db, folder, *ON_WORKERS)
    for name in names[6:]:
        (folder / name).symlink_to(photos / name)
    address = dask_client.scheduler.address
    assert "Imported 6, unchanged 6" in invoke(runner, "import", db, folder, *ON_WORKERS, "--dask", address).output
    again = invoke(runner, "import", db, folder, *ON_WORKERS, "--dask", address).output
    assert "Imported 0, unchanged 12" in again and "Dask" not in again  # no batch was sent
    assert rows(db, "select count(*), count(distinct path) from images") == [(12, 12)]
    assert rows(db, "select count(*) from fingerprints") == [(12,)]


def _set_root_map(value: str | None) -> None:
    if value is None:
        os.environ.pop(ROOT_MAP_VARIABLE, None)
    else:
        os.environ[ROOT_MAP_VARIABLE] = value


@pytest.fixture
def worker_root_map(dask_client):
    """Set IMAGECLUSTER_ROOT_MAP on the running workers, as if they had started with it."""
    yield lambda value: dask_client.run(_set_root_map, value)
    dask_client.run(_set_root_map, None)


def test_workers_read_the_photos_where_their_root_map_says(dask_client, worker_root_map, here, photos, tmp_path):
    elsewhere = tmp_path / "worker-mount"
    elsewhere.symlink_to(photos)
    worker_root_map(f"{photos}={elsewhere}")
    db = tmp_path / "photos.db"
    invoke(CliRunner(), "import", db, photos, *ON_WORKERS, "--dask", dask_client.scheduler.address)
    local, shared = _fingerprints(here), _fingerprints(db)
    assert sorted(shared) == sorted(local)  # the paths are this machine's
    for path, vector in local.items():
        np.testing.assert_allclose(shared[path], vector, atol=1e-4)


def test_a_worker_that_cannot_see_the_photos_stops_the_import(dask_client, worker_root_map, photos, tmp_path):
    worker_root_map(f"{photos}={tmp_path / 'not-mounted'}")
    db = tmp_path / "photos.db"
    result = invoke(CliRunner(), "import", db, photos, *ON_WORKERS, "--dask", dask_client.scheduler.address, ok=False)
    assert result.exit_code == 1
    last = result.output.strip().splitlines()[-1]
    assert last.startswith(f"Error: a Dask worker cannot see {tmp_path / 'not-mounted'}/")
    assert last.endswith(f"or start with {ROOT_MAP_VARIABLE}=THIS_MACHINE_PATH=WORKER_PATH")
    assert rows(db, "select count(*) from images") == [(0,)]
    assert rows(db, "select path from import_errors") == [(str(photos / "broken.jpg"),)]  # no photo is blamed


@pytest.mark.parametrize(
    "args, message",
    [
        (("--dask", "local:0"), "local:N needs a positive number of workers"),
        (("--dask", "local", "--workers", "2"), "with --dask the workers decode"),
    ],
)
def test_bad_dask_imports_are_usage_errors(photos, tmp_path, runner, args, message):
    result = invoke(runner, "import", tmp_path / "p.db", photos, "--weights", "none", *args, ok=False)
    assert result.exit_code == 2 and message in result.output
    assert not (tmp_path / "p.db").exists()


def test_random_weights_depend_on_the_seed_alone():
    """A Dask worker's event loop draws from Python's global random while a task builds the model."""
    from importer.models import resolve_weights
    from importer.plugins import fingerprinters

    architecture = fingerprinters()["mobilenetv3small"]
    weights = resolve_weights(architecture, "none", 3)
    pixels = np.random.default_rng(0).integers(0, 256, (2, 224, 224, 3), dtype=np.uint8)
    quiet = architecture.build(architecture.default_layer, weights, 3)(pixels)
    stop = threading.Event()

    def draw():
        while not stop.wait(0.001):
            random.random()

    other = threading.Thread(target=draw)
    other.start()
    try:
        busy = architecture.build(architecture.default_layer, weights, 3)(pixels)
    finally:
        stop.set()
        other.join()
    np.testing.assert_array_equal(busy, quiet)
