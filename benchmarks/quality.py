"""Clustering quality on real photos with ground truth, per model, method, alpha and sim.

    python benchmarks/quality.py              # every set, every model with weights at hand
    python benchmarks/quality.py --splits 10  # more tune splits (default 3)

For each real set in ../shared/data (INRIA Holidays, UKBench, imagededup's
transformed duplicates) and each model (VGG16 with random weights as the
floor, EfficientNet-Lite0 pretrained, Keras' ImageNet models when their
weights are in ~/.keras/models), it prints pairwise precision, recall and F1
and the adjusted Rand index against the true groups:

* the best any method, alpha and sim reaches, and where;
* the score at the shipped defaults, and at imagecluster's own (average, alpha 0.3, sim 0.5);
* ``tune``'s cross-validated score: tuned on the labels of a random half of
  the groups (the shipped defaults as its prior), scored on the other half's
  pairs, next to the defaults on the same pairs;
* per method and alpha, the best F1 over sim and the sim it needs.

Imports are cached in benchmarks/.data/quality (incremental, so a re-run
reads nothing). Docs: docs/quality.md.
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import sqlite3
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import DATA, machine  # noqa: E402

from datasette_imagecluster import labels, quality  # noqa: E402
from datasette_imagecluster.clustering import Params, build_tree, cut_tree, tree_for  # noqa: E402
from datasette_imagecluster.parameters import SHIPPED  # noqa: E402

IMAGECLUSTER = Params(sim=0.5, alpha=0.3, method="average")  # imagecluster's own defaults
SHARED = Path(os.environ.get("IMAGECLUSTER_SHARED_DATA", ROOT.parent / "shared" / "data"))


def _from_csv(folder: str, group_column: str):
    def truth() -> dict[str, str]:
        with open(SHARED / folder / "GROUND_TRUTH.csv", newline="") as f:
            return {row["file"]: row[group_column] for row in csv.DictReader(f)}

    return truth


def _imagededup() -> dict[str, str]:
    """UKBench files are group n // 4 (GROUND_TRUTH.md); every other picture is its own group."""
    truth = {}
    for path in sorted((SHARED / "imagededup_testdata").rglob("*")):
        if path.is_file() and path.suffix.lower() != ".md":
            match = re.match(r"ukbench(\d{5})", path.name)
            truth[str(path.relative_to(SHARED / "imagededup_testdata"))] = (
                f"ukbench-{int(match.group(1)) // 4}" if match else path.name
            )
    return truth


SETS = {
    "Holidays": ("holidays_subset", _from_csv("holidays_subset", "group")),
    "UKBench": ("ukbench_subset", _from_csv("ukbench_subset", "group")),
    "imagededup": ("imagededup_testdata", _imagededup),
}


def models() -> list[tuple[str, str, str, str]]:
    """(model, weights, precision, what) for every model whose weights are at hand."""
    from importer.models import KerasArchitecture
    from importer.plugins import fingerprinters

    found = [
        ("vgg16", "none", "float32", "VGG16 fc2, random weights (the floor)"),
        ("efficientnet-lite0", "imagenet", "float32", "EfficientNet-Lite0, ImageNet (packaged weights)"),
        ("efficientnet-lite0", "imagenet", "mixed", "EfficientNet-Lite0, ImageNet, --precision mixed (bfloat16)"),
    ]
    keras_home = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "models"
    for name, arch in fingerprinters().items():
        if isinstance(arch, KerasArchitecture) and (keras_home / arch.imagenet_file).exists():
            found.append((name, "imagenet", "float32", f"{name}, ImageNet (Keras)"))
    return found


def library(set_name: str, model: str, weights: str, precision: str = "float32"):
    """Import the set (cached, incremental) and read ids, timestamps, vectors and each photo's group."""
    from importer.pipeline import ImportOptions, run_import

    folder, truth = SETS[set_name]
    db = DATA / "quality" / f"{set_name}-{model}-{weights}{'' if precision == 'float32' else '-' + precision}.db"
    db.parent.mkdir(parents=True, exist_ok=True)
    options = ImportOptions(model=model, weights=weights, workers=1, precision=precision)
    run_import(str(db), [str(SHARED / folder)], options)
    conn = sqlite3.connect(db)
    rows = conn.execute(
        "select i.id, i.timestamp, f.vector, i.path from images i "
        "join fingerprints f on f.image_id = i.id order by i.id"
    ).fetchall()
    conn.close()
    groups = truth()
    base = str(SHARED / folder) + os.sep
    ids = np.array([r[0] for r in rows])
    timestamps = np.array([r[1] for r in rows], dtype=np.float64)
    vectors = np.stack([np.frombuffer(r[2], "<f4") for r in rows])
    true = [groups[r[3][len(base) :]] for r in rows]
    return ids, timestamps, vectors, true


def labels_of(ids, true, keep=None) -> labels.Labels:
    groups: dict[str, set[int]] = {}
    for image_id, group in zip(ids.tolist(), true):
        if keep is None or group in keep:
            groups.setdefault(group, set()).add(image_id)
    return labels.merge(groups.values(), sources=["ground truth"])


def adjusted_rand_index(true: list[str], flat: np.ndarray) -> float:
    """ARI of the clustering (photos in no cluster as singletons) against the true groups."""
    predicted = np.where(flat > 0, flat, -np.arange(1, len(flat) + 1))
    _, t = np.unique(true, return_inverse=True)
    _, p = np.unique(predicted, return_inverse=True)
    table = np.zeros((t.max() + 1, p.max() + 1))
    np.add.at(table, (t, p), 1)

    def comb(x):
        return (x * (x - 1) / 2).sum()

    index, rows, cols, total = comb(table), comb(table.sum(1)), comb(table.sum(0)), comb(np.array([len(t)]))
    expected = rows * cols / total if total else 0.0
    maximum = (rows + cols) / 2
    return float((index - expected) / (maximum - expected)) if maximum != expected else 1.0


def grid(ids, timestamps, vectors, true, base: Params):
    """Every (method, alpha) -> per sim: (Score, ARI)."""
    index = quality.LabelIndex(labels_of(ids, true), ids)
    table = {}
    for method in quality.TUNE_METHODS:
        for alpha in quality.TUNE_ALPHAS:
            tree = build_tree(vectors, timestamps, alpha=alpha, method=method, metric=base.metric)
            table[method, alpha] = [
                (index.score(flat), adjusted_rand_index(true, flat))
                for flat in (quality.flat_clusters(cut_tree(tree, sim), base.min_csize) for sim in quality.TUNE_SIMS)
            ]
    return table


def at_params(ids, timestamps, vectors, true, params: Params):
    tree = tree_for(vectors, timestamps, params)
    flat = quality.flat_clusters(cut_tree(tree, params.sim), params.min_csize)
    return quality.LabelIndex(labels_of(ids, true), ids).score(flat), adjusted_rand_index(true, flat)


def tune_halves(ids, timestamps, vectors, true, defaults: Params, splits: int):
    """Held-out F1 of tune and of the defaults over random halves of the groups: means, the worst,
    and how many splits had enough labels to tune on (None when none had)."""
    names = sorted(set(true))
    tuned, plain = [], []
    for split in range(splits):
        order = np.random.default_rng(split).permutation(len(names))
        train = {names[i] for i in order[: len(names) // 2]}
        test = set(names) - train
        try:
            result = quality.tune(vectors, timestamps, ids, labels_of(ids, true, train), defaults)
        except labels.LabelError:
            continue  # too few labels in this half: tune refuses, as it should
        held_out = labels_of(ids, true, test)
        tuned.append(quality.score_params(vectors, timestamps, ids, held_out, result.best[0].params(defaults)).f1)
        plain.append(quality.score_params(vectors, timestamps, ids, held_out, defaults).f1)
    if not tuned:
        return None
    return float(np.mean(tuned)), float(np.mean(plain)), float(np.min(tuned)), len(tuned)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--splits", type=int, default=3, help="random halves tune is cross-validated on")
    args = parser.parse_args()
    if not SHARED.exists():
        sys.exit(f"the real test data is not at {SHARED} (set IMAGECLUSTER_SHARED_DATA)")
    print(f"Machine: {machine()}\n")
    started = time.perf_counter()
    defaults = SHIPPED
    print(
        f"Shipped defaults: {defaults.method}, alpha {defaults.alpha}, sim {defaults.sim}; "
        f"tune cross-validated on {args.splits} random halves of the groups\n"
    )
    across: dict[str, dict] = {}
    summary = [
        "| set | model | best F1 (P, R; ARI) at | shipped defaults F1 (P, R; ARI) | imagecluster's defaults "
        "F1 | tune held-out F1 (defaults on the same pairs; worst split) |",
        "|---|---|---|---|---|---|",
    ]
    details = []
    for set_name in SETS:
        for model, weights, precision, what in models():
            ids, timestamps, vectors, true = library(set_name, model, weights, precision)
            table = grid(ids, timestamps, vectors, true, defaults)
            if weights != "none":
                across.setdefault(model if precision == "float32" else f"{model} ({precision})", {})[set_name] = table
            (method, alpha), i = max(
                ((key, int(np.argmax([s.f1 for s, _ in scores]))) for key, scores in table.items()),
                key=lambda k: table[k[0]][k[1]][0].f1,
            )
            best, best_ari = table[method, alpha][i]
            score, ari = at_params(ids, timestamps, vectors, true, defaults)
            theirs, _ = at_params(ids, timestamps, vectors, true, IMAGECLUSTER)
            halves = tune_halves(ids, timestamps, vectors, true, defaults, args.splits)
            tuned = (
                f"{halves[0]:.2f} ({halves[1]:.2f}; worst {halves[2]:.2f})"
                + (f", {halves[3]} of {args.splits} splits" if halves[3] < args.splits else "")
                if halves
                else "too few labels in every half"
            )
            summary.append(
                f"| {set_name} ({len(ids)} photos) | {what} | {best.f1:.2f} ({best.precision:.2f}, "
                f"{best.recall:.2f}; {best_ari:.2f}) at {method}, alpha {alpha}, sim {quality.TUNE_SIMS[i]} | "
                f"{score.f1:.2f} ({score.precision:.2f}, {score.recall:.2f}; {ari:.2f}) | {theirs.f1:.2f} | {tuned} |"
            )
            details.append(f"\n{set_name}, {what}: best F1 over sim (at sim)\n")
            details.append("| method | " + " | ".join(f"alpha {a}" for a in quality.TUNE_ALPHAS) + " |")
            details.append("|---|" + "---|" * len(quality.TUNE_ALPHAS))
            for m in quality.TUNE_METHODS:
                cells = []
                for a in quality.TUNE_ALPHAS:
                    f1s = [s.f1 for s, _ in table[m, a]]
                    j = int(np.argmax(f1s))
                    cells.append(f"{f1s[j]:.2f} ({quality.TUNE_SIMS[j]})")
                details.append(f"| {m} | " + " | ".join(cells) + " |")
            print(summary[-1], flush=True)
    print("\n" + "\n".join(summary))
    print("\n".join(details))
    for model, tables in across.items():
        keys = list(next(iter(tables.values())))
        mean = {
            (k, j): np.mean([tables[s][k][j][0].f1 for s in tables])
            for k in keys
            for j in range(len(quality.TUNE_SIMS))
        }
        (method, alpha), j = max(mean, key=mean.get)
        print(
            f"\nBest shared parameters for {model} (mean F1 over {', '.join(tables)}): {method}, alpha {alpha}, "
            f"sim {quality.TUNE_SIMS[j]}: {mean[(method, alpha), j]:.3f}; "
            f"shipped defaults: {mean[(defaults.method, defaults.alpha), quality.TUNE_SIMS.index(defaults.sim)]:.3f}"
        )
    print(f"\n(quality benchmark took {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
