"""The plugin under load from anonymous clients (issue 26): core pages' latency, alone and while clients ask the
cluster page for clusterings at many alphas and give up, and call the SQL functions under a small
sql_time_limit_ms; and how long a user's own clustering then takes, against the same clustering alone.

    python benchmarks/bench_load.py            # 4,000 photos x 64 values, imagecluster's distance, sim 0.2

In-process (Datasette's ASGI client), like the load test in tests/test_hardening.py, with the real build queue.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import machine  # noqa: E402

from tests.test_clustering import make_fingerprint_db  # noqa: E402

PAGE = "/photos/-/cluster.json?distance=imagecluster&method=average&sim=0.2&alpha={}"


def server(db: Path, wait: float):
    from datasette_test import Datasette

    return Datasette(
        [str(db)], plugin_config={"datasette-imagecluster": {"wait_seconds": wait}}, settings={"sql_time_limit_ms": 50}
    )


async def core_latency(ds, count: int = 40) -> list[float]:
    times = []
    for _ in range(count):
        start = time.perf_counter()
        assert (await ds.client.get("/photos/images.json?_size=5")).status_code == 200
        times.append(time.perf_counter() - start)
    return times


async def until_ready(ds, alpha: float) -> float:
    start = time.perf_counter()
    while (await ds.client.get(PAGE.format(alpha))).status_code != 200:
        await asyncio.sleep(0.05)
    return time.perf_counter() - start


async def main() -> None:
    print(f"Machine: {machine()}")
    rng = np.random.default_rng(1)
    n = 4000
    with tempfile.TemporaryDirectory() as folder:
        db = Path(folder) / "photos.db"
        make_fingerprint_db(
            db, rng.random((n, 64)).astype(np.float32), np.sort(rng.uniform(0, 3e7, n)), np.arange(1, n + 1)
        )
        ds = server(db, 0.01)
        await until_ready(ds, 0.97)  # the library read and kept, as on a server already in use
        idle = await core_latency(ds)
        alone = await until_ready(ds, 0.98)
        statuses: list[int] = []

        async def abandon(alpha):
            statuses.append((await ds.client.get(PAGE.format(alpha))).status_code)

        async def query(alpha):
            sql = f"select imagecluster_clusters(0.2, {alpha}, 2, 'average', 'euclidean', null, 'imagecluster') as c"
            statuses.append(
                (await ds.client.get("/photos.json?_shape=array&sql=" + quote(sql), follow_redirects=True)).status_code
            )

        results = await asyncio.gather(
            *(abandon(round(0.10 + k / 100, 2)) for k in range(10)),
            *(query(round(0.50 + k / 100, 2)) for k in range(4)),
            core_latency(ds),
        )
        loaded = results[-1]
        mine = await until_ready(ds, 0.99)
    print(
        f"N = {n:,} x 64, imagecluster's distance, average, sim 0.2 (the full matrix): core page /photos/images.json "
        f"median {statistics.median(idle) * 1000:.1f} ms idle (max {max(idle) * 1000:.1f}), median "
        f"{statistics.median(loaded) * 1000:.1f} ms under load (max {max(loaded) * 1000:.1f}); statuses of the "
        f"abandoning clients and SQL calls: {sorted(set(statuses))}; a clustering alone {alone:.2f} s, a user's "
        f"clustering right after the abandoned ones {mine:.2f} s ({mine / alone:.2f}x)"
    )


if __name__ == "__main__":
    asyncio.run(main())
