"""Run every benchmark and print absolute figures, ratios, peak memory and the machine.

    python benchmarks/run.py            # the full set (about 15 minutes)
    python benchmarks/run.py --quick    # smaller sizes (about 5 minutes)
    python benchmarks/run.py --only cluster

Generated data is kept in benchmarks/.data (IMAGECLUSTER_BENCH_DATA moves it).
Figures are medians or marginal rates measured in this run, against baselines
measured in the same run; see docs/benchmarks.md for the method.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_cluster  # noqa: E402
import bench_import  # noqa: E402
import bench_models  # noqa: E402
import bench_rescan  # noqa: E402
import bench_screen  # noqa: E402
import bench_startup  # noqa: E402
import bench_verdicts  # noqa: E402
from common import machine  # noqa: E402


def table(title: str, rows: list[tuple[str, str]]) -> None:
    print(f"\n{title}")
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"  {name:<{width}}  {value}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--only",
        choices=["startup", "import", "models", "memory", "rescan", "cluster", "screen", "verdicts"],
        action="append",
    )
    parser.add_argument("--large", action="store_true", help="also cluster N = 20,000 (baseline: minutes)")
    parser.add_argument(
        "--huge", action="store_true", help="also cluster N = 100,000 (ours only: the baseline needs ~40 GB; minutes)"
    )
    parser.add_argument(
        "--scale",
        action="store_true",
        help="with --only screen: 100,000 and 200,000 photos alone and on two local Dask workers (~15 minutes)",
    )
    parser.add_argument(
        "--largest",
        type=int,
        metavar="N",
        help="with --scale: also N photos on two local Dask workers (a million: about 54 minutes and 17.9 GB "
        "on 2 cores, and 17 GB of disk and 35 minutes to generate its database once)",
    )
    args = parser.parse_args()
    only = set(args.only or ["startup", "import", "models", "memory", "rescan", "cluster", "screen", "verdicts"])
    print(f"Machine: {machine()}")
    started = time.perf_counter()
    shape_rate = None
    if "startup" in only:
        table("Start-up (median of fresh interpreters)", bench_startup.run(args.quick))
    if "import" in only:
        rows = bench_import.run(args.quick)
        shape_rate = float(rows[1][1].split()[0])
        table("Import (VGG16 fc2, --weights none)", rows)
        table("Import on Dask (VGG16 fc2, --weights none)", bench_import.on_dask(args.quick))
    if "models" in only:
        table("Fingerprint models (batch 32, 224x224)", bench_models.run(args.quick))
    if "memory" in only:
        table("Import memory", bench_import.memory(args.quick))
    if "rescan" in only:
        table("Incremental re-run", bench_rescan.run(args.quick, shape_rate))
    if "cluster" in only:
        sizes = [2000, 5000] if args.quick else [2000, 5000, 10000]
        print("\nClustering (sim 0.5, alpha 0.3, average, euclidean)")
        bench_cluster.run(sizes + ([20000] if args.large else []), lambda rows: table("", rows))
        if args.huge:
            table("", bench_cluster.ours_only(100000))
    if "screen" in only:
        bench_screen.run(args.quick, args.huge, table, args.scale, args.largest)
    if "verdicts" in only:
        table("Verdicts as constraints (average, sim 0.5, alpha 0.3)", bench_verdicts.run(args.quick))
    print(f"\n(benchmarks took {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
