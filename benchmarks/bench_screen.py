"""Exact clustering with less arithmetic: how well the bounds prune, and what that saves.

The bounds of ``datasette_imagecluster/bounds.py`` prune as well as the
fingerprints' variance is concentrated, so they are measured on:

* real fingerprints: EfficientNet-Lite0 (pretrained) on 2,000 random crops of
  the real photos in ../shared/data (``spectrum.py``), content only;
* generated fingerprints fitted to that spectrum, 4096 values, bursts and
  loners over three years (``spectrum.fitted_fingerprints``), at sims around
  the one that scores best on their bursts (pairwise F1 for 20,000 photos,
  average, alpha 0.3: 0.98 at sim 0.65, 0.93 at 0.7, 0.28 at 0.75). The
  whole-process and alpha-change figures use 0.75, the one where 100,000 of
  them stay in small components (at 0.7 they did not finish in 8 minutes);
* random bursts (``common.structured_fingerprints``), whose flat spectrum the
  bounds cannot use: there the screen measures every pair in full.

The baseline, in the same process and run, is the same screen with the bounds
turned off (every tile measured in all 4096 dimensions, as before them).
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import numpy as np
from bench_cluster import database
from common import cold_cluster, run_measured
from spectrum import real_features, variance_shares

from datasette_imagecluster.engine import blas, bounds, components


def _share(stats: dict[str, int], *keys: str) -> str:
    return f"{sum(stats.get(k, 0) for k in keys) / stats['pairs']:.3%}"


def pruning(vectors, timestamps, alpha: float, sim: float, label: str) -> tuple[str, str]:
    """How the bounds prune, used at any size (below bounds.BOUNDS_FROM the screen would measure every pair),
    in a build for one alpha, as ``imagecluster cluster`` makes (the plugin's keeps the candidates of a span)."""
    start, bounds.BOUNDS_FROM = bounds.BOUNDS_FROM, 0
    made, screening = [], components.screening
    components.screening = lambda *args: made.append(screening(*args)) or made[-1]
    try:
        components.build(vectors, timestamps, alpha, "average", "euclidean", sim)
    finally:
        components.screening, bounds.BOUNDS_FROM = screening, start
    s = made[-1].stats
    return (
        f"{label}, alpha {alpha}, sim {sim}: share of pairs",
        f"edges {_share(s, 'edges')}; left by the bounds {_share(s, 'edge candidates')}; "
        f"set aside for the true cut {_share(s, 'pairs in tiles set aside for the true cut')}, "
        f"of which bounded again {_share(s, 'pairs in tiles bounded again with more directions')}; "
        f"measured in full {_share(s, 'pairs in tiles measured in full', 'measured in doubt')}; "
        f"maximum candidates {_share(s, 'maximum candidates', 'mixed maximum candidates')}",
    )


def _builds(vectors, timestamps, alpha: float, sim: float, repeat: int) -> tuple[float, float]:
    """Median build time with the bounds, and without (every tile in full), alternating."""
    with_bounds, without = [], []
    tight = bounds.TIGHT
    for _ in range(repeat):
        for times, threshold in ((with_bounds, tight), (without, 2.0)):
            bounds.TIGHT = threshold
            start = time.perf_counter()
            components.build(vectors, timestamps, alpha, "average", "euclidean", sim)
            times.append(time.perf_counter() - start)
    bounds.TIGHT = tight
    return statistics.median(with_bounds), statistics.median(without)


def alpha_change(vectors, timestamps, alpha: float, sim: float) -> tuple[float, float]:
    """A cold build, then the plugin's rebuild at alpha + 0.1 with the screening it keeps."""
    start = time.perf_counter()
    screened = components.screening(vectors, timestamps, "euclidean")
    components.build(vectors, timestamps, alpha, "average", "euclidean", sim, screened=screened)
    cold = time.perf_counter() - start
    start = time.perf_counter()
    components.build(vectors, timestamps, alpha + 0.1, "average", "euclidean", sim, screened=screened)
    return cold, time.perf_counter() - start


def on_workers(vectors, timestamps, alpha: float, sim: float) -> list[tuple[str, float]]:
    """The build alone, then on a local cluster of 1 and of 2 worker threads (what ``--dask local:N`` starts
    for a clustering) and of 2 worker processes (each sent its copy, as a remote cluster's workers are),
    the cluster's start not counted."""
    from importer.workers import client

    def build() -> float:
        start = time.perf_counter()
        components.build(vectors, timestamps, alpha, "average", "euclidean", sim)
        return time.perf_counter() - start

    found = [("this process alone", build())]
    for label, workers, threads in (
        ("1 worker thread", 1, True),
        ("2 worker threads", 2, True),
        ("2 worker processes", 2, False),
    ):
        with client(f"local:{workers}", threads=threads) as connection, components.on_dask(connection):
            found.append((f"local Dask cluster, {label}", build()))
    return found


def cold_process(
    n: int, alpha: float, sim: float, repeat: int = 1, dask: str | None = None
) -> tuple[list[float], float, list[float]]:
    """``imagecluster cluster`` in a fresh process, ``repeat`` times: the wall times, the largest peak RSS,
    and the CPU time the host gave other guests during each run (both cores together).

    With ``dask`` (``local:2``: two worker threads of that process) the cluster's start is included.
    """
    db, _ = database(n, fitted=True, arrays=False)
    args = ["--distance", "imagecluster", "--sim", str(sim), "--alpha", str(alpha), "--method", "average"]
    args += ["--dask", dask] if dask else []
    walls, peak, stolen, _ = cold_cluster(db, args, repeat)
    return walls, peak, stolen


PRODUCT = """
import sys, time
if sys.argv[1] == "chosen":
    import datasette_imagecluster  # asks for the AVX-512 kernels where this CPU has them, before numpy loads
import numpy as np
from datasette_imagecluster.engine.blas import loaded_kernels
a = np.random.default_rng(0).random((4096, 4096), dtype=np.float32)
times = []
for _ in range(6):
    start = time.perf_counter(); a @ a; times.append(time.perf_counter() - start)
print(loaded_kernels(), 2 * 4096**3 / sorted(times[1:])[2] / 1e9)
"""

BUILD = """
import sys, time
import datasette_imagecluster  # asks for the AVX-512 kernels where this CPU has them, before numpy loads
import numpy as np
from datasette_imagecluster import components
from datasette_imagecluster.engine.blas import loaded_kernels
data = np.load(sys.argv[1])
start = time.perf_counter()
components.build(data["vectors"], data["timestamps"], 0.3, "average", "euclidean", float(sys.argv[2]))
print(loaded_kernels(), time.perf_counter() - start)
"""

# What OpenBLAS has chosen on AMD's AVX-512 CPUs: the AVX2 kernels.
AVX2 = {blas.VARIABLE: "Haswell"}


def _rounds(script: str, variants: dict[str, tuple[list[str], dict]], rounds: int) -> dict[str, tuple[str, float]]:
    """Run ``script`` with each variant's arguments and environment in fresh processes, the variants alternating
    round by round: each one's kernels and median figure."""
    found: dict[str, list] = {label: [] for label in variants}
    for _ in range(rounds):
        for label, (args, env) in variants.items():
            _, _, out = run_measured([sys.executable, "-c", script, *args], env=env)
            name, figure = out.split()
            found[label].append((name, float(figure)))
    return {label: (runs[0][0], statistics.median(f for _, f in runs)) for label, runs in found.items()}


def kernels(libraries: list[tuple[str, Path, float]], rounds: int = 3) -> list[tuple[str, str]]:
    """OpenBLAS's own choice of kernels against ours (``datasette_imagecluster/blas.py``): a 4096-cube float32
    product (the median of five after a warm-up, in each process), medians over ``rounds`` fresh processes.

    On a CPU with AVX-512, also its AVX2 kernels forced, as OpenBLAS has chosen them on AMD's AVX-512 CPUs,
    for the product and for the tree of each (label, ``.npz``, sim) library (alpha 0.3, average): what the
    AVX-512 kernels are worth where OpenBLAS does not pick them itself.
    """
    try:
        avx512 = blas.has_avx512(Path("/proc/cpuinfo").read_text())
    except OSError:
        avx512 = False
    products = {"own": (["own"], {}), "chosen": (["chosen"], {}), **({"avx2": (["own"], AVX2)} if avx512 else {})}
    found = _rounds(PRODUCT, products, rounds)
    (own, base), (chosen, ours) = found["own"], found["chosen"]
    rows = [
        (f"product, OpenBLAS's own choice: {own}", f"{base:.0f} GFLOP/s"),
        (f"product, with datasette_imagecluster's choice: {chosen}", f"{ours:.0f} GFLOP/s = {ours / base:.2f}x"),
    ]
    if avx512:
        name, slow = found["avx2"]
        rows.append((f"product, {name} (AVX2) kernels forced", f"{slow:.0f} GFLOP/s; ours {ours / slow:.2f}x that"))
        for label, arrays, sim in libraries:
            args = [str(arrays), str(sim)]
            builds = _rounds(BUILD, {"chosen": (args, {}), "avx2": (args, AVX2)}, rounds)
            (chosen, quick), (name, slow) = builds["chosen"], builds["avx2"]
            rows.append(
                (
                    f"the tree, {label}, alpha 0.3, sim {sim}: {chosen} vs {name} kernels",
                    f"{quick:.1f} s vs {slow:.1f} s = {slow / quick:.2f}x",
                )
            )
    return rows


def scaling(sizes: list[int], largest: int | None = None) -> list[tuple[str, str]]:
    """The whole process at these sizes, alone and on two local Dask workers; ``largest`` photos on the two
    workers alone (a million fits in 24 GB), and a million extrapolated from the largest below it."""
    rows, alone, shared = [], {}, {}
    for size in [*sizes, *([largest] if largest else [])]:
        for dask in (None, "local:2") if size in sizes else ("local:2",):
            walls, peak, _ = cold_process(size, 0.3, 0.75, dask=dask)
            label = "this process alone" if dask is None else f"--dask {dask} (the cluster's start included)"
            rows.append((f"N = {size:,}: {label}", f"{walls[0]:.1f} s, peak {peak:,.0f} MiB"))
            (alone if dask is None else shared)[size] = walls[0]
    small, large = sorted(alone)[-2:] if len(alone) > 1 else (None, max(alone))
    if small:
        rows.append(
            (
                f"{large:,} against {small:,} alone (the pairs grow {(large / small) ** 2:.1f}x)",
                f"{alone[large] / alone[small]:.2f}x the time",
            )
        )
    top = largest or large
    if largest:
        rows.append(
            (
                f"{largest:,} against {large:,} on Dask (the pairs grow {(largest / large) ** 2:.2f}x)",
                f"{shared[largest] / shared[large]:.2f}x the time",
            )
        )
    measured = shared if largest else alone
    if top < 1_000_000:
        rows.append(
            (
                f"1,000,000, extrapolated from {top:,} ({'on Dask' if largest else 'alone'}, quadratic)",
                f"~{measured[top] * (1e6 / top) ** 2 / 3600:.1f} h",
            )
        )
    return rows


def run(quick: bool, huge: bool, show, scale: bool = False, largest: int | None = None) -> None:
    real = real_features()
    fitted_shares = variance_shares(np.load(database(5000, fitted=True)[1])["vectors"])
    real_shares = variance_shares(real)
    show(
        "Spectrum: share of the variance in the first k principal directions",
        [
            ("real (EfficientNet-Lite0, 2,000 crops)", ", ".join(f"k {k}: {v:.0%}" for k, v in real_shares.items())),
            ("fitted (4096 values)", ", ".join(f"k {k}: {v:.0%}" for k, v in fitted_shares.items())),
        ],
    )
    zeros = np.zeros(len(real))
    n = 5000 if quick else 20000
    libraries = [
        ("fitted (bounded)", database(n, fitted=True)[1], 0.7),
        ("random (every pair in full)", database(n)[1], 0.5),
    ]
    show(f"numpy's OpenBLAS kernels (fresh processes; trees of N = {n:,})", kernels(libraries, 1 if quick else 3))
    fitted = np.load(database(n, fitted=True)[1])
    random = np.load(database(n)[1])
    rows = [pruning(real, zeros, 0.0, sim, "real, 2,000 crops") for sim in (0.5, 0.7)]
    rows += [pruning(fitted["vectors"], fitted["timestamps"], 0.3, sim, f"fitted, {n:,}") for sim in (0.65, 0.7, 0.75)]
    rows.append(pruning(random["vectors"], random["timestamps"], 0.3, 0.5, f"random, {n:,}"))
    show(f"Pruning (k = {bounds.K}, then {bounds.FINE} where needed)", rows)

    rows = []
    for label, data, alpha, sim in (
        ("fitted", fitted, 0.3, 0.7),
        ("fitted", fitted, 0.3, 0.65),
        ("random", random, 0.3, 0.5),
    ):
        bounded, full = _builds(data["vectors"], data["timestamps"], alpha, sim, 1 if quick else 3)
        rows.append(
            (
                f"N = {n:,} {label}, alpha {alpha}, sim {sim}: tree, with bounds vs every pair in full",
                f"{bounded:.1f} s vs {full:.1f} s = {full / bounded:.2f}x",
            )
        )
    show("Exact clustering with less arithmetic (in-process build, median)", rows)

    found = on_workers(fitted["vectors"], fitted["timestamps"], 0.3, 0.75)
    alone = found[0][1]
    show(
        f"On Dask (N = {n:,} fitted, alpha 0.3, sim 0.75; the tree, workers already started)",
        [(label, f"{seconds:.1f} s = {alone / seconds:.2f}x of this process alone") for label, seconds in found],
    )

    sizes = [n] + ([100000] if huge else [])
    rows = []
    for size in sizes:
        data = np.load(database(size, fitted=True)[1])
        cold, change = alpha_change(data["vectors"], data["timestamps"], 0.3, 0.75)
        rows.append(
            (
                f"N = {size:,} fitted, sim 0.75: alpha 0.3 -> 0.4 with the kept screening vs cold",
                f"{change:.1f} s vs {cold:.1f} s = {change / cold:.2f} of cold",
            )
        )
        del data
        walls, peak, stolen = cold_process(size, 0.3, 0.75, repeat=5 if size <= 20000 else 1)
        times = ", ".join(f"{wall:.1f}" for wall in sorted(walls))
        rows.append(
            (
                f"N = {size:,} fitted: imagecluster cluster --sim 0.75 --alpha 0.3 (whole process, cold)",
                f"median {statistics.median(walls):.1f} s ({times} s), peak {peak:,.0f} MiB; "
                f"taken by the host's other guests: median {statistics.median(stolen):.1f} s of CPU",
            )
        )
    show("Whole process and the plugin's alpha change", rows)
    if scale:
        show("Scaling: the whole process, fitted, alpha 0.3, sim 0.75", scaling([100000, 200000], largest))
