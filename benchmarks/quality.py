"""Clustering quality on real photos with ground truth, per model, distance, method, alpha, tau and sim.

    python benchmarks/quality.py              # every set, every model with weights at hand
    python benchmarks/quality.py --splits 10  # more tune splits (default 3)

For each real set in ../shared/data (INRIA Holidays, the same photos with their
groups packed four to an hour so that time cannot tell them apart, UKBench,
imagededup's transformed duplicates) and each model (VGG16 with random weights as the
floor, EfficientNet-Lite0 pretrained, Keras' ImageNet models when their
weights are in ~/.keras/models), it prints pairwise precision, recall and F1
and the adjusted Rand index against the true groups:

* the best any method, alpha, tau and sim reaches on absolute distances, and where;
* the score at the shipped defaults; imagecluster's distance at its best sim (ward, alpha 0.4, the
  defaults shipped before absolute distances), and at imagecluster's own parameters (average, alpha 0.3,
  sim 0.5);
* ``tune``'s cross-validated score: tuned on the labels of a random half of
  the groups (the shipped defaults as its prior), scored on the other half's
  pairs, next to the defaults on the same pairs;
* per method, alpha and tau, the best F1 over sim and the sim it needs.

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

from datasette_imagecluster.engine import absolute, labels, quality  # noqa: E402
from datasette_imagecluster.engine.clustering import Params, build_tree, cut_tree, tree_for  # noqa: E402
from datasette_imagecluster.engine.parameters import DEFAULTS, SHIPPED, describe, format_duration  # noqa: E402
from datasette_imagecluster.errors import LabelError  # noqa: E402

IMAGECLUSTER = Params(sim=0.5, alpha=0.3, method="average")  # imagecluster's own defaults
OLD = DEFAULTS["imagecluster"]  # imagecluster's distance as shipped before absolute distances
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
    "Holidays, packed": ("holidays_subset", _from_csv("holidays_subset", "group")),
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
    stem = set_name.split(",")[0]  # a variant reads its set's import
    db = DATA / "quality" / f"{stem}-{model}-{weights}{'' if precision == 'float32' else '-' + precision}.db"
    db.parent.mkdir(parents=True, exist_ok=True)
    options = ImportOptions(model=model, weights=weights, workers=1, precision=precision)
    run_import(str(db), [str(SHARED / folder)], options)
    conn = sqlite3.connect(db)
    rows = conn.execute(
        "select i.id, i.timestamp, f.vector, i.path, i.timestamp_source from images i "
        "join fingerprints f on f.image_id = i.id order by i.id"
    ).fetchall()
    conn.close()
    groups = truth()
    base = str(SHARED / folder) + os.sep
    ids = np.array([r[0] for r in rows])
    timestamps = np.array([r[1] for r in rows], dtype=np.float64)
    vectors = np.stack([np.frombuffer(r[2], "<f4") for r in rows])
    true = [groups[r[3][len(base) :]] for r in rows]
    timed = np.array([r[4] != "mtime" for r in rows])
    if set_name.endswith("packed"):
        timestamps = packed(timestamps, true)
    return Photos(ids, timestamps, vectors, true, timed)


class Photos:
    """One set's photos as the clustering sees them, with the content scale the product would use."""

    def __init__(self, ids, timestamps, vectors, true, timed):
        self.ids, self.timestamps, self.vectors, self.true, self.timed = ids, timestamps, vectors, true, timed
        self.scale = absolute.content_scale(vectors[absolute.sample_rows(ids)], "euclidean")

    def tree(self, params: Params, sim: float | None = None):
        return tree_for(
            self.vectors,
            self.timestamps,
            Params(**{**params.as_dict(), "sim": sim or params.sim}),
            scale=self.scale,
            timed=self.timed,
        )


def packed(timestamps: np.ndarray, true: list[str]) -> np.ndarray:
    """Groups packed four to an hour in their order (a quarter of an hour apart), each keeping its photos'
    offsets from its first: what time alone then tells apart, content must."""
    groups: dict[str, list[int]] = {}
    for k, group in enumerate(true):
        groups.setdefault(group, []).append(k)
    out = timestamps.copy()
    start = float(timestamps.min())
    for k, members in enumerate(sorted(groups.values(), key=lambda m: timestamps[m].min())):
        first = timestamps[members].min()
        out[members] = start + (k // 4) * 3600 + (k % 4) * 900 + (timestamps[members] - first)
    return out


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


def grid(photos: Photos, base: Params):
    """Every (method, alpha, tau) of absolute distances -> per sim: (Score, ARI)."""
    index = quality.LabelIndex(labels_of(photos.ids, photos.true), photos.ids)
    table = {}
    for method in quality.TUNE_METHODS:
        for alpha in quality.TUNE_ALPHAS:
            for tau in quality.TUNE_TAUS if alpha else quality.TUNE_TAUS[:1]:
                params = Params(**{**base.as_dict(), "method": method, "alpha": alpha, "tau": tau})
                tree = photos.tree(params, min(quality.TUNE_SIMS))
                table[method, alpha, tau] = [
                    (index.score(flat), adjusted_rand_index(photos.true, flat))
                    for flat in (
                        quality.flat_clusters(cut_tree(tree, sim), base.min_csize) for sim in quality.TUNE_SIMS
                    )
                ]
    return table


def best_sim(photos: Photos, params: Params) -> tuple[quality.Score, float]:
    """The best F1 over sim with these parameters otherwise, and that sim."""
    index = quality.LabelIndex(labels_of(photos.ids, photos.true), photos.ids)
    tree = build_tree(photos.vectors, photos.timestamps, alpha=params.alpha, method=params.method)
    scores = [index.score(quality.flat_clusters(cut_tree(tree, sim), params.min_csize)) for sim in quality.TUNE_SIMS]
    k = int(np.argmax([score.f1 for score in scores]))
    return scores[k], quality.TUNE_SIMS[k]


def at_params(photos: Photos, params: Params):
    flat = quality.flat_clusters(cut_tree(photos.tree(params), params.sim), params.min_csize)
    return quality.LabelIndex(labels_of(photos.ids, photos.true), photos.ids).score(flat), adjusted_rand_index(
        photos.true, flat
    )


def tune_halves(photos: Photos, defaults: Params, splits: int):
    """Held-out F1 of tune and of the defaults over random halves of the groups: means, the worst,
    and how many splits had enough labels to tune on (None when none had)."""
    ids, true = photos.ids, photos.true
    names = sorted(set(true))
    tuned, plain = [], []
    for split in range(splits):
        order = np.random.default_rng(split).permutation(len(names))
        train = {names[i] for i in order[: len(names) // 2]}
        test = set(names) - train
        common = dict(scale=photos.scale, timed=photos.timed)
        try:
            result = quality.tune(
                photos.vectors, photos.timestamps, ids, labels_of(ids, true, train), defaults, **common
            )
        except LabelError:
            continue  # too few labels in this half: tune refuses, as it should
        held_out = labels_of(ids, true, test)
        chosen = result.best[0].params(defaults)
        tuned.append(quality.score_params(photos.vectors, photos.timestamps, ids, held_out, chosen, **common).f1)
        plain.append(quality.score_params(photos.vectors, photos.timestamps, ids, held_out, defaults, **common).f1)
    if not tuned:
        return None
    return float(np.mean(tuned)), float(np.mean(plain)), float(np.min(tuned)), len(tuned)


def _key(key: tuple) -> str:
    method, alpha, tau = key
    return f"{method}, alpha {alpha}" + (f", tau {format_duration(tau)}" if alpha else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--splits", type=int, default=3, help="random halves tune is cross-validated on")
    args = parser.parse_args()
    if not SHARED.exists():
        sys.exit(f"the real test data is not at {SHARED} (set IMAGECLUSTER_SHARED_DATA)")
    print(f"Machine: {machine()}\n")
    started = time.perf_counter()
    defaults = SHIPPED
    print(f"Shipped defaults: {describe(defaults.as_dict())}; tune cross-validated on {args.splits} random halves\n")
    across: dict[str, dict] = {}
    summary = [
        "| set | model | best F1 (P, R; ARI) at | shipped defaults F1 (P, R; ARI) | imagecluster's distance, best sim "
        "| imagecluster's parameters | tune held-out F1 (defaults on the same pairs; worst split) |",
        "|---|---|---|---|---|---|---|",
    ]
    details = []
    for set_name in SETS:
        for model, weights, precision, what in models():
            photos = library(set_name, model, weights, precision)
            table = grid(photos, defaults)
            if weights != "none":
                across.setdefault(model if precision == "float32" else f"{model} ({precision})", {})[set_name] = table
            key, i = max(
                ((key, int(np.argmax([s.f1 for s, _ in scores]))) for key, scores in table.items()),
                key=lambda k: table[k[0]][k[1]][0].f1,
            )
            best, best_ari = table[key][i]
            score, ari = at_params(photos, defaults)
            old, old_sim = best_sim(photos, OLD)
            theirs, _ = at_params(photos, IMAGECLUSTER)
            halves = tune_halves(photos, defaults, args.splits)
            tuned = (
                f"{halves[0]:.2f} ({halves[1]:.2f}; worst {halves[2]:.2f})"
                + (f", {halves[3]} of {args.splits} splits" if halves[3] < args.splits else "")
                if halves
                else "too few labels in every half"
            )
            summary.append(
                f"| {set_name} ({len(photos.ids)} photos) | {what} | {best.f1:.2f} ({best.precision:.2f}, "
                f"{best.recall:.2f}; {best_ari:.2f}) at {_key(key)}, sim {quality.TUNE_SIMS[i]} | "
                f"{score.f1:.2f} ({score.precision:.2f}, {score.recall:.2f}; {ari:.2f}) | "
                f"{old.f1:.2f} at sim {old_sim} | {theirs.f1:.2f} | {tuned} |"
            )
            details.append(f"\n{set_name}, {what}: best F1 over sim (at sim)\n")
            taus = quality.TUNE_TAUS
            details.append("| method, tau | " + " | ".join(f"alpha {a}" for a in quality.TUNE_ALPHAS) + " |")
            details.append("|---|" + "---|" * len(quality.TUNE_ALPHAS))
            for m in quality.TUNE_METHODS:
                for tau in taus:
                    cells = []
                    for a in quality.TUNE_ALPHAS:
                        f1s = [s.f1 for s, _ in table[m, a, tau if a else taus[0]]]
                        j = int(np.argmax(f1s))
                        cells.append(f"{f1s[j]:.2f} ({quality.TUNE_SIMS[j]})")
                    details.append(f"| {m}, {format_duration(tau)} | " + " | ".join(cells) + " |")
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
        ranked = sorted(mean, key=mean.get, reverse=True)
        shipped = ((defaults.method, defaults.alpha, defaults.tau), quality.TUNE_SIMS.index(defaults.sim))
        print(f"\nBest shared parameters for {model} (mean F1 over {', '.join(tables)}):")
        for k, j in ranked[:8]:
            sets = ", ".join(f"{tables[s][k][j][0].f1:.3f}" for s in tables)
            print(f"  {_key(k)}, sim {quality.TUNE_SIMS[j]}: {mean[k, j]:.3f} ({sets})")
        sets = ", ".join(f"{tables[s][shipped[0]][shipped[1]][0].f1:.3f}" for s in tables)
        print(f"  shipped defaults: {mean[shipped]:.3f} ({sets})")
    print(f"\n(quality benchmark took {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
