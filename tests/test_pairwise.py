"""pdist's values on every core: bit for bit what scipy's pdist gives, for every metric the clustering offers."""

from __future__ import annotations

import os
import threading

import numpy as np
import pytest
from scipy.spatial import distance

from datasette_imagecluster import pairwise
from datasette_imagecluster.parameters import METRICS


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
