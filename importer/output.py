"""What the ``imagecluster`` command prints: progress, summaries, tables of clusters and tunings.

Separate from :mod:`.cli` (options and calls), so a command's output can be
read, and changed, in one place.
"""

from __future__ import annotations

import sys

import click

from datasette_imagecluster.api import describe, format_duration


class Bar:
    """A click progress bar when stderr is a terminal; nothing with --silent or in a pipe."""

    def __init__(self, silent: bool, label: str):
        self.silent = silent
        self.label = label
        self.bar = None

    def start(self, total: int) -> None:
        if not self.silent and total and sys.stderr.isatty():
            self.bar = click.progressbar(length=total, label=self.label, show_eta=True, show_pos=True, file=sys.stderr)
            self.bar.__enter__()

    def advance(self, count: int) -> None:
        if self.bar is not None:
            self.bar.update(count)

    def finish(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None


def report_import(summary, paths, prune: bool) -> None:
    s = summary
    failed = s.failed + s.still_failing
    click.echo(
        f"Imported {s.imported}, unchanged {s.unchanged}, moved {s.moved}, copied {s.copied}, "
        f"failed {failed}, not photos {s.not_photos}; {s.elapsed:.{2 if s.elapsed < 10 else 1}f} s"
        + (f", {s.rate:.1f} photos/s on the {s.device}" if s.imported and s.device else "")
    )
    if s.refreshed:
        click.echo(
            f"{s.refreshed} of them imported before: decoded again for their quality signals or previews, "
            "not fingerprinted again."
        )
    if failed:
        click.echo(f"Warning: {failed} file(s) could not be imported: see the import_errors table.", err=True)
    if s.exif_warnings:
        click.echo(
            f"Warning: {s.exif_warnings} photo(s) have unreadable EXIF (images.exif_error); their file time was used.",
            err=True,
        )
    if s.from_previews:
        click.echo(
            f"Note: {s.from_previews} photo(s) were fingerprinted from Lightroom's previews, their "
            "originals being missing or unreadable (images.pixels_from).",
            err=True,
        )
    if s.vanished:
        verb = "were removed" if prune else "are no longer on disk; --prune removes them"
        click.echo(f"{len(s.vanished)} photo(s) {verb} (e.g. {s.vanished[0]}).", err=True)
    if s.model_loaded and s.weights.startswith("random-"):
        click.echo(f"Note: fingerprints were made with random weights ({s.weights}), not a pretrained model.", err=True)
    if s.readable == 0:
        if failed:
            raise click.ClickException("nothing could be read: every file failed (see import_errors)")
        raise click.ClickException(f"no photos found in {', '.join(paths)}")


def notes(selection) -> None:
    """What a user should know about a clustering's inputs: other sets, random weights, tuned parameters."""
    chosen = selection.fingerprint_set
    if len(selection.sets) > 1:
        others = ", ".join(s.label for s in selection.sets if s != chosen)
        click.echo(
            f"Note: clustered {chosen.label}; this database also has {others} "
            "(choose with --model, --layer and --weights).",
            err=True,
        )
    if chosen.weights.startswith("random-"):
        click.echo(
            f"Note: these fingerprints come from random weights ({chosen.weights}), not a pretrained model.", err=True
        )
    if selection.chosen.origin == "tuned":
        click.echo(f"Parameters not given: {selection.chosen.describe()}.", err=True)


def print_stats(report: dict) -> None:
    p = report["params"]
    click.echo(f"{report['n_images']} photos ({p['model']}/{p['layer']}, weights {p['weights']}); {describe(p)}")
    click.echo("#images : #clusters")
    for row in report["stats"]:
        click.echo(f"{row['size']} : {row['clusters']}")
    click.echo(f"#images in clusters total:  {report['n_clustered']}")


def tune_json(result) -> dict:
    """``imagecluster tune --json``: the labels, the choice, its cross-validation, the defaults and every candidate."""
    chosen = result.fingerprint_set
    tuning = result.tuning
    candidate, score = tuning.best
    return {
        "fingerprints": {"model": chosen.model, "layer": chosen.layer, "weights": chosen.weights},
        "labels": {
            "described": result.labels.describe(),
            "groups": len(result.labels.groups),
            "positive_pairs": score.positive_pairs,
        },
        "chosen": {**candidate.params(result.defaults).as_dict(), **score.as_dict()},
        "cross_validated": tuning.cv.as_dict() if tuning.cv else None,
        "defaults": {**result.defaults.as_dict(), **result.at_defaults.as_dict()},
        "candidates": [
            {"method": c.method, "alpha": c.alpha, "tau": c.tau, "pca": c.pca, "sim": c.sim, **s.as_dict()}
            for c, s in zip(tuning.candidates, tuning.overall)
        ],
    }


def print_tuning(result) -> None:
    """The best sim of every method and alpha tried, best first, then the choice and the defaults."""
    tuning = result.tuning
    best: dict = {}
    for c, s in zip(tuning.candidates, tuning.overall):
        key = (c.method, c.alpha, c.tau, c.pca)
        if key not in best or s.f1 > best[key][1].f1:
            best[key] = (c, s)
    click.echo(f"Labels: {result.labels.describe()} ({len(result.labels.groups)} groups)")
    click.echo(
        f"{'method':<9} {'alpha':>5} {'tau':>6} {'pca':>5} {'sim':>5} {'P':>5} {'R':>5} {'F1':>5} "
        f"{'clusters':>8} {'clustered':>9}"
    )
    absolute = result.defaults.absolute
    for c, s in sorted(best.values(), key=lambda cs: -cs[1].f1):
        tau = format_duration(c.tau).replace(" ", "") if absolute and c.alpha else "-"
        click.echo(
            f"{c.method:<9} {c.alpha:>5.2f} {tau:>6} {str(c.pca or '-'):>5} {c.sim:>5.2f} {s.precision:>5.2f} "
            f"{s.recall:>5.2f} {s.f1:>5.2f} {s.clusters:>8} {s.clustered:>9}"
        )
    candidate, score = tuning.best
    d, ds = result.defaults, result.at_defaults
    click.echo(
        f"Chosen: {candidate.method}, alpha {candidate.alpha}, "
        + (f"tau {format_duration(candidate.tau)}, " if absolute else "")
        + f"sim {candidate.sim}"
        + (f", pca {candidate.pca}" if candidate.pca else "")
        + f": precision {score.precision:.2f}, recall {score.recall:.2f}, F1 {score.f1:.2f}"
        + (f"; cross-validated F1 {tuning.cv.f1:.2f} ({len(tuning.folds)} folds)" if tuning.cv else "")
    )
    click.echo(
        f"Defaults: {d.method}, alpha {d.alpha}, "
        + (f"tau {format_duration(d.tau)}, " if absolute else "")
        + f"sim {d.sim}: precision {ds.precision:.2f}, "
        f"recall {ds.recall:.2f}, F1 {ds.f1:.2f}"
    )


def print_diff(name: str, changes) -> None:
    """What changed between two saves of a clustering, one line per cluster that changed."""
    counts = changes.counts()
    click.echo(
        f"{name}: version {changes.version_before} -> {changes.version_after}: "
        + ", ".join(f"{counts[kind]} {kind}" for kind in counts)
    )
    for change in changes.changes:
        if change.kind == "unchanged":
            continue
        before = ", ".join(map(str, change.before)) or "-"
        after = ", ".join(map(str, change.after)) or "-"
        moved = f" (+{len(change.added)} -{len(change.removed)} photos)" if change.added or change.removed else ""
        click.echo(f"  {change.kind:<9} {before} -> {after}: {change.size_before} -> {change.size_after} photos{moved}")


def print_plugins(listed: list[dict]) -> None:
    """Each plugin with its version, and the sources and models it adds."""
    for plugin in listed:
        version = f" {plugin['version']}" if plugin.get("version") else ""
        click.echo(f"{plugin['name']}{version}")
        if plugin["sources"]:
            click.echo(f"  sources: {', '.join(plugin['sources'])}")
        if plugin["models"]:
            click.echo(f"  models: {', '.join(plugin['models'])}")


def print_keepers(found, paths: dict[int, str]) -> None:
    """Each cluster's keeper and reason, its groups' keepers and rest, and what holds it together."""
    for cluster in found:
        tiers = (
            ", ".join(tier for tier, groups in cluster.tiers.items() if groups)
            or "the same scene, no duplicates or bursts"
        )
        mark = " (your choice)" if cluster.chosen else f": {cluster.reason}"
        click.echo(f"cluster {cluster.number} ({len(cluster.images)} photos; {tiers})")
        click.echo(f"  keep {cluster.keeper} {paths.get(cluster.keeper, '')}{mark}")
        for group in cluster.groups:
            rest = ", ".join(map(str, group.rest))
            why = "your choice" if group.chosen else group.reason
            click.echo(f"  {len(group.images)} photos, {group.tier}: keep {group.keeper}, the rest {rest} ({why})")
        if cluster.why is not None:
            why, (a, b) = cluster.why, cluster.why_pair
            apart = f", {format_duration(why.seconds)} apart" if why.seconds is not None else ""
            click.echo(
                f"  holds by content {why.content_share:.0%}, capture time {1 - why.content_share:.0%}; "
                f"weakest link {a}-{b} (distance {why.distance:.3f}{apart})"
            )
