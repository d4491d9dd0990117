"""Work that outgrows one machine, on a Dask cluster: ``--dask ADDRESS`` or ``--dask local[:N]``.

A running scheduler (``dask scheduler`` on one machine, ``dask worker ADDRESS``
on each of the others) is given by its address; ``local`` starts a
``LocalCluster`` on this machine with one single-threaded worker per core
(``local:N`` for N): processes for an import, threads of this process for a
clustering. Dask is imported only here and only when asked for, so the
importer and the plugin never need it otherwise.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from itertools import islice
from typing import TYPE_CHECKING

import numpy as np

from datasette_imagecluster.errors import ImageclusterError

from . import devices
from .folders import Problem, display_path

if TYPE_CHECKING:
    from .decode import Decoded, DecodeRequest
    from .models import Fingerprinter


class DaskError(ImageclusterError):
    """Dask is missing or the cluster cannot be reached; the message says what to do."""


def parse(spec: str) -> tuple[str | None, int | None]:
    """(scheduler address, None) or (None, local workers) for a ``--dask`` value."""
    if spec == "local" or spec.startswith("local:"):
        count = spec.partition(":")[2]
        if count and not (count.isdigit() and int(count) > 0):
            raise DaskError(f"--dask {spec!r}: local:N needs a positive number of workers")
        return None, int(count) if count else (os.cpu_count() or 1)
    if not spec or spec.startswith("-"):
        raise DaskError(f"--dask {spec!r}: give a scheduler address (tcp://host:8786) or local[:N]")
    return spec, None


@contextmanager
def client(spec: str, threads: bool = False) -> Iterator[object]:
    """A Dask client for ``spec``, closed (with its local cluster) on the way out.

    With ``threads``, a local cluster's workers are threads of this process.
    A clustering asks for them: its work is numpy's, which runs without the
    GIL, and the workers then share this process's one copy of the
    fingerprints (4 bytes × 4096 per photo: 16 GB for a million), where
    worker processes each hold their own. An import keeps processes: decoding
    and a model's Python hold the GIL.

    A local cluster's nannies set one-thread BLAS and other variables in this
    process's environment for the workers they start; they are put back as
    they were, or every later child process (a benchmark's, a decoder) would
    inherit them.
    """
    address, local = parse(spec)
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise DaskError("--dask needs Dask: pip install 'datasette-imagecluster[dask]'") from None
    with _environment_kept():
        cluster = None
        try:
            if address is None:
                cluster = LocalCluster(
                    n_workers=local,
                    threads_per_worker=1,
                    processes=not threads,
                    # Each worker's limit is its share of the machine; threads would count this whole
                    # process, mostly the fingerprints they share, and pause (16 GB at a million photos)
                    memory_limit=0 if threads else "auto",
                    dashboard_address=None,
                    worker_dashboard_address=None,
                    silence_logs=logging.CRITICAL,  # a task's error comes back to the client, in one line
                )
                connection = Client(cluster)
            else:
                connection = Client(address, timeout="10s")
        except (OSError, TimeoutError) as e:
            if cluster is not None:
                cluster.close()
            raise DaskError(f"cannot reach the Dask scheduler at {spec}: {e}") from None
        try:
            yield connection
        finally:
            connection.close()
            if cluster is not None:
                cluster.close()


@contextmanager
def _environment_kept() -> Iterator[None]:
    kept = dict(os.environ)
    try:
        yield
    finally:
        for key in set(os.environ) - set(kept):
            del os.environ[key]
        os.environ.update(kept)


# -- importing: workers decode and fingerprint, the client writes --------------------

# Set where a worker starts (``IMAGECLUSTER_ROOT_MAP=/home/me/Pictures=/mnt/pictures dask worker ...``)
# when it sees the client's photos under another path; several maps are separated by ``;``.
ROOT_MAP_VARIABLE = "IMAGECLUSTER_ROOT_MAP"


@dataclass(frozen=True)
class ModelSpec:
    """What a worker needs to build the client's model (the model itself does not travel)."""

    model: str
    layer: str
    weights: str  # imagenet, none, or the client's absolute path of a weights file
    seed: int
    device: str
    precision: str


@dataclass
class Fingerprinted:
    """One batch back from a worker: decoded photos without their pixels, problems, and vectors."""

    results: list[Decoded | Problem]
    vectors: np.ndarray  # one row per Decoded in ``results``, in order
    identity: str  # the weights identity the worker's model has
    device: str  # where it ran, e.g. "CPU"


def fingerprint_batch(requests: list[DecodeRequest], spec: ModelSpec) -> Fingerprinted:
    """Decode and fingerprint one batch on a worker; the model is built once per worker process.

    Paths are the client's, read here through the worker's own
    ``IMAGECLUSTER_ROOT_MAP``, and go back as the client's. A path the worker
    cannot see stops the import rather than failing the photo: the file is
    fine, the worker is set up wrong.
    """
    from .catalogs.base import CatalogError, map_root, parse_root_maps
    from .decode import decode

    try:
        maps = parse_root_maps([m for m in os.environ.get(ROOT_MAP_VARIABLE, "").split(";") if m])
    except CatalogError as e:
        raise DaskError(f"{ROOT_MAP_VARIABLE} on a Dask worker: {e}") from None
    results: list[Decoded | Problem] = []
    for request in requests:
        preview = request.preview and replace(request.preview, path=map_root(request.preview.path, maps))
        local = replace(request, path=map_root(request.path, maps), preview=preview)
        needed = local.preview.path if request.original_missing else local.path
        if not os.path.lexists(needed):
            raise DaskError(
                f"a Dask worker cannot see {needed}: workers must see the photos at the paths this machine "
                f"does, or start with {ROOT_MAP_VARIABLE}=THIS_MACHINE_PATH=WORKER_PATH"
            )
        result = decode(local)
        if isinstance(result, Problem):
            result = replace(result, path=display_path(request.path))
        else:
            pixels_path = request.preview.path if result.pixels_path is not None else None
            result = replace(result, path=request.path, pixels_path=pixels_path)
        results.append(result)
    with _loading:
        model, identity = _model(spec)
    decoded = [r for r in results if not isinstance(r, Problem)]
    vectors = model(np.stack([d.pixels for d in decoded])) if decoded else np.zeros((0, 0), np.float32)
    return Fingerprinted(
        [r if isinstance(r, Problem) else replace(r, pixels=None) for r in results],
        np.asarray(vectors, dtype=np.float32),
        identity,
        model.device.describe(),
    )


_loading = threading.Lock()  # a worker with several threads builds its model once


@functools.lru_cache(maxsize=4)
def _model(spec: ModelSpec) -> tuple[Fingerprinter, str]:
    """The worker's model for ``spec`` and its weights identity: once per worker process, not per batch
    (a weights file's identity is its SHA-256, hundreds of MB read)."""
    from .models import load_fingerprinter, resolve_weights
    from .plugins import fingerprinters

    architecture = fingerprinters()[spec.model]
    weights = resolve_weights(architecture, spec.weights, spec.seed)
    model = load_fingerprinter(architecture, spec.layer, weights, spec.seed, spec.device, spec.precision)
    return model, devices.identity(weights.identity, spec.precision)


def fingerprint_on(connection, requests: list[DecodeRequest], spec: ModelSpec, size: int) -> Iterator[Fingerprinted]:
    """Batches of ``size`` fingerprinted on the workers, as they finish, two per worker thread in flight.

    Only the batches in flight are held, so memory stays flat however many
    photos there are, and the caller stores each batch as it comes: an
    interrupted import keeps every batch already stored.
    """
    from distributed import as_completed

    batches = (requests[i : i + size] for i in range(0, len(requests), size))
    ahead = 2 * max(1, sum(w["nthreads"] for w in connection.scheduler_info()["workers"].values()))
    running = as_completed()
    pending = set()  # only these are held: a finished future let go frees its result on the worker

    def submit(batch: list[DecodeRequest]) -> None:
        future = connection.submit(fingerprint_batch, batch, spec, pure=False)
        pending.add(future)
        running.add(future)

    for batch in islice(batches, ahead):
        submit(batch)
    try:
        for future in running:
            pending.discard(future)
            done = future.result()
            following = next(batches, None)
            if following is not None:
                submit(following)
            yield done
    finally:
        connection.cancel(list(pending))
