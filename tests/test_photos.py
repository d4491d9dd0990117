"""The clustering API (``Photos``): what the CLI, the pages and the SQL functions share, for Python users too."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from datasette.app import Datasette

from datasette_imagecluster.api import Photos
from datasette_imagecluster.engine.parameters import SHIPPED
from datasette_imagecluster.errors import ClusterError, NotFoundError
from datasette_imagecluster.library.fingerprints import fingerprint_sets, load_library

from .conftest import connect, invoke
from .test_clustering import make_fingerprint_db
from .test_plugin import get, sql


def test_one_clustering_for_the_api_the_cli_the_page_and_sql(db_path, runner):
    with Photos.open(str(db_path)) as photos:
        clustering = photos.cluster(sim=0.9, alpha=0.5)
        numbers = photos.choose(sim=0.9, alpha=0.5).numbers()
    clusters = clustering.clusters
    assert clusters and all(type(i) is int for members in clusters for i in members)
    assert numbers == {i: n for n, members in enumerate(clusters, start=1) for i in members}
    cli = json.loads(invoke(runner, "cluster", str(db_path), "--sim", "0.9", "--alpha", "0.5", "--json").stdout)
    assert [[image["id"] for image in c["images"]] for c in cli["clusters"]] == clusters
    assert cli == clustering.json()

    async def from_datasette():
        ds = Datasette([str(db_path)])
        page = (await get(ds, "/photos/-/cluster.json?sim=0.9&alpha=0.5")).json()
        found = await sql(ds, "select imagecluster_clusters(0.9, 0.5) as c")
        return page, json.loads(found[0]["c"])

    page, from_sql = asyncio.run(from_datasette())
    assert [[image["id"] for image in c["images"]] for c in page["clusters"]] == clusters == from_sql


def test_parameters_not_given_come_from_the_one_rule(db_path):
    with Photos.open(str(db_path)) as photos:
        assert photos.choose().chosen.origin == "default" and photos.choose().params == SHIPPED
        assert photos.choose(sim=0.7).params.sim == 0.7
    with Photos.open(str(db_path), configured={"alpha": 0.9}) as photos:
        assert photos.choose().params.alpha == 0.9 and photos.choose().chosen.origin == "configured"


def test_save_and_read_a_clustering(db_path):
    with Photos.open(str(db_path)) as photos:
        clustering = photos.cluster(sim=0.9, alpha=0.5)
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            photos.save_clustering("bursts", clustering)  # opened read-only: nothing can be written
    with Photos.open(str(db_path), write=True) as photos:
        saved = photos.save_clustering("bursts", clustering)
    with Photos.open(str(db_path)) as photos:
        assert photos.clusterings() == ["bursts"]
        back = photos.clustering("bursts")
        with pytest.raises(NotFoundError, match=r"no clustering named 'nope' \(saved: bursts\)"):
            photos.clustering("nope")
    assert back.id == saved.id and back.n_clusters == len(clustering.clusters)
    assert back.params["sim"] == 0.9 and back.params["model"] == clustering.selection.fingerprint_set.model
    regrouped: dict[int, list[int]] = {}
    for member in back.members:
        regrouped.setdefault(member.cluster, []).append(member.image_id)
    assert [sorted(regrouped[n]) for n in sorted(regrouped)] == [sorted(c) for c in clustering.clusters]


def test_similar_photos_and_what_is_not_there(db_path, tmp_path):
    with Photos.open(str(db_path)) as photos:
        found = photos.similar(1, k=3)
        assert len(found) == 3 and all(type(i) is int and i != 1 for i, _ in found)
        assert [d for _, d in found] == sorted(d for _, d in found)
        with pytest.raises(NotFoundError, match="Record not found: 99999"):
            photos.similar(99999)
    with pytest.raises(NotFoundError, match="does not exist"):
        Photos.open(str(tmp_path / "missing.db"))
    (tmp_path / "other.db").write_bytes(b"")
    sqlite3.connect(tmp_path / "other.db").execute("create table t (x)").connection.close()
    with pytest.raises(ClusterError, match="is not an imagecluster database"):
        Photos.open(str(tmp_path / "other.db"))


def test_a_library_is_in_image_id_order_whatever_order_its_rows_were_written(db_path):
    """Photos imported again get newer fingerprint rows: the library still lists them by id, each with its own data."""
    conn = connect(db_path)
    first = conn.execute("select image_id from fingerprints order by image_id limit 3").fetchall()
    for (image_id,) in first:  # as a re-import does: the row replaced, so it comes last in the table
        conn.execute("insert or replace into fingerprints select * from fingerprints where image_id = ?", (image_id,))
    conn.commit()
    by_rowid = [i for (i,) in conn.execute("select image_id from fingerprints order by rowid")]
    assert by_rowid != sorted(by_rowid)
    want = {
        i: (np.frombuffer(v, np.float32), path, t)
        for i, v, path, t in conn.execute(
            "select f.image_id, f.vector, i.path, i.timestamp from fingerprints f join images i on i.id = f.image_id"
        )
    }
    conn.close()
    with Photos.open(str(db_path)) as photos:
        library = photos.choose().library
    assert library.ids.tolist() == sorted(want)
    for row, i in enumerate(library.ids.tolist()):
        vector, path, timestamp = want[i]
        assert np.array_equal(library.vectors[row], vector)
        assert library.paths[row] == path and library.timestamps[row] == timestamp


THP = Path("/sys/kernel/mm/transparent_hugepage/enabled")


def huge_pages_allowed(array: np.ndarray) -> bool:
    """Whether the kernel may back the memory that holds ``array`` with transparent huge pages (Linux smaps).

    Its middle: numpy advises from the first page boundary on, which splits the mapping there.
    """
    address, mapping = array.ctypes.data + array.nbytes // 2, None
    for line in Path("/proc/self/smaps").read_text().splitlines():
        first = line.split()[0]
        if "-" in first and not first.endswith(":"):
            start, end = (int(x, 16) for x in first.split("-"))
            mapping = start <= address < end
        elif mapping and line.startswith("THPeligible:"):
            return line.split()[1] == "1"
    raise AssertionError("no mapping holds the array")


@pytest.mark.skipif(
    not THP.exists() or "[madvise]" not in THP.read_text(),
    reason="transparent huge pages are not in madvise mode here: the kernel's own policy decides, not the advice",
)
def test_a_library_is_read_without_numpys_advice_to_use_huge_pages(tmp_path):
    """numpy advises huge pages for large arrays; faulting them in for the fingerprints was slow and erratic on
    virtual machines (0.60-1.37 s against 0.38-0.52 s at 20,000 photos), so the library's matrix goes without."""
    control = np.empty((600, 4096), np.float32)
    if not huge_pages_allowed(control):
        pytest.skip("numpy does not advise huge pages here (NUMPY_MADVISE_HUGEPAGE=0?)")
    vectors = np.random.default_rng(0).random((600, 4096), dtype=np.float32)
    conn = sqlite3.connect(make_fingerprint_db(tmp_path / "photos.db", vectors, np.arange(600.0), np.arange(600)))
    library = load_library(conn, fingerprint_sets(conn)[0])
    assert np.array_equal(library.vectors, vectors)
    library.vectors[0] = 0  # the matrix is the library's own, writable (the plugin permutes rows in place)
    assert not huge_pages_allowed(library.vectors)
