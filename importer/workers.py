"""Work that outgrows one machine, on a Dask cluster: ``--dask ADDRESS`` or ``--dask local[:N]``.

A running scheduler (``dask scheduler`` on one machine, ``dask worker ADDRESS``
on each of the others) is given by its address; ``local`` starts a
``LocalCluster`` on this machine with one single-threaded worker process per
core (``local:N`` for N). Dask is imported only here and only when asked for,
so the importer and the plugin never need it otherwise.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager


class DaskError(Exception):
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
def client(spec: str) -> Iterator[object]:
    """A Dask client for ``spec``, closed (with its local cluster) on the way out."""
    address, local = parse(spec)
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise DaskError("--dask needs Dask: pip install 'datasette-imagecluster[dask]'") from None
    cluster = None
    try:
        if address is None:
            cluster = LocalCluster(n_workers=local, threads_per_worker=1, processes=True, dashboard_address=None)
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
