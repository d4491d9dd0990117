"""What verdicts cost: building the tree with 1,000 verdicts against without, same data, same run.

The verdicts are the kind users make: half ``different`` (two photos of one
cluster the user says don't belong together), half ``same`` (one photo of
each of two clusters the user says do). The tree is built as the clustering
builds it (one component at a time at sim 0.5, alpha 0.3, average), median of
three builds each way, alternating.
"""

from __future__ import annotations

import statistics
import time

import numpy as np
from bench_cluster import database

from datasette_imagecluster.engine.clustering import Params, build_tree, cut_tree, group
from datasette_imagecluster.engine.constraints import Constraints


def verdicts(vectors: np.ndarray, timestamps: np.ndarray, count: int, seed: int = 0) -> Constraints:
    """``count`` verdicts on the unconstrained clusters: half different inside one, half same across two."""
    n = len(vectors)
    tree = build_tree(vectors, timestamps, alpha=0.3, sim=0.5)
    clusters = group(cut_tree(tree, 0.5), np.arange(n), timestamps, Params(sim=0.5)).clusters
    rng = np.random.default_rng(seed)
    chosen = rng.permutation(len(clusters))
    different = [tuple(sorted(int(p) for p in clusters[k][:2])) for k in chosen[: count // 2]]
    rest = chosen[count // 2 : count // 2 + count]  # count // 2 pairs of clusters
    same = [tuple(sorted((int(clusters[a][-1]), int(clusters[b][-1])))) for a, b in zip(rest[0::2], rest[1::2])]
    return Constraints(tuple(sorted(same)), tuple(sorted(different)))


def run(quick: bool) -> list[tuple[str, str]]:
    n = 5000 if quick else 20000
    _, arrays = database(n)
    data = np.load(arrays)
    vectors, timestamps = data["vectors"], data["timestamps"]
    constraints = verdicts(vectors, timestamps, 1000)
    plain, constrained = [], []
    for _ in range(3):
        for times, given in ((plain, None), (constrained, constraints)):
            start = time.perf_counter()
            build_tree(vectors, timestamps, alpha=0.3, sim=0.5, constraints=given)
            times.append(time.perf_counter() - start)
    a, b = statistics.median(plain), statistics.median(constrained)
    what = f"{len(constraints.different)} different, {len(constraints.same)} same"
    return [
        (f"N = {n:,} x 4096: the tree without verdicts (median of 3)", f"{a:.2f} s"),
        (f"N = {n:,} x 4096: the tree with 1,000 verdicts ({what})", f"{b:.2f} s = {b / a:.2f}x ({b / a - 1:+.0%})"),
    ]
