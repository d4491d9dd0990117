"""The ``imagecluster`` command: import photos, then cluster them.

Each command's docstring is its ``--help``. Errors a user can fix are printed
as one line (``Error: ...``) with exit status 1, never as a traceback.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import sys

import click

from datasette_imagecluster.api import BUILT_IN, DISTANCES, METHODS, METRICS, SHIPPED, format_duration
from datasette_imagecluster.errors import ImageclusterError

from .devices import DEVICES, PRECISIONS
from .output import (
    Bar,
    notes,
    print_diff,
    print_keepers,
    print_plugins,
    print_stats,
    print_tuning,
    report_import,
    tune_json,
)

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"]}
DEFAULT = SHIPPED


class Commands(click.Group):
    """The command group: every error a user can fix (:class:`ImageclusterError`) ends a command as one line."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except ImageclusterError as e:
            raise click.ClickException(str(e)) from None
        except sqlite3.Error as e:
            raise click.ClickException(f"the database could not be read or written: {e}") from None


@click.group(cls=Commands, context_settings=CONTEXT_SETTINGS)
@click.version_option(package_name="datasette-imagecluster")
def cli() -> None:
    """Group a photo library by what its pictures show and when they were taken.

    \b
    imagecluster import photos.db ~/Pictures     fingerprint every photo
    imagecluster cluster photos.db --sim 0.6     group them
    datasette photos.db                          explore them in a browser
    """


class Registered(click.ParamType):
    """A source or model name, checked against the registered plugins only when a command runs
    (so ``--help`` and commands that don't import never load the plugins)."""

    def __init__(self, kind: str):
        self.kind = kind
        self.name = kind

    def convert(self, value, param, ctx):
        from .plugins import PluginError, fingerprinters, sources

        try:
            names = list(fingerprinters() if self.kind == "model" else sources())
        except PluginError as e:
            self.fail(str(e), param, ctx)
        if value not in names:
            self.fail(f"{value!r} is not a registered {self.kind}: choose one of {', '.join(names)}", param, ctx)
        return value


ROOT_MAP = click.option(
    "--root-map",
    "root_maps",
    multiple=True,
    metavar="OLD=NEW",
    help="read a catalog's photos under OLD from NEW (repeatable): a catalog made on another machine "
    "or mount, e.g. C:/Users/me/Pictures=/mnt/pictures",
)


def fingerprint_options(command):
    """The options every importing command shares."""
    options = [
        click.option(
            "--model",
            type=Registered("model"),
            default=None,
            help="CNN that fingerprints each photo [default: the model of the database's fingerprints, else "
            "efficientnet-lite0, whose ImageNet weights install with a package: it works offline]: imagecluster's "
            "vgg16, a backbone on Keras (resnet50, efficientnetb0, mobilenetv3small), or one a plugin adds "
            "(see 'imagecluster plugins')",
        ),
        click.option(
            "--layer",
            default=None,
            help="vgg16's layer whose activations are the fingerprint: fc2 (default), fc1 or "
            "flatten; the other models use their pooled features (avgpool)",
        ),
        click.option(
            "--weights",
            default="imagenet",
            show_default=True,
            metavar="imagenet|none|PATH",
            help="pretrained ImageNet weights (downloaded once by Keras; for efficientnet-lite0 the "
            "file its package installs), a local weights file, or none for random weights "
            "(deterministic, NOT pretrained: for tests)",
        ),
        click.option("--seed", default=0, show_default=True, help="seed of the random weights of --weights none"),
        click.option(
            "--batch-size",
            default=None,
            type=click.IntRange(1, 1024),
            help="photos per model call and per database transaction (default: 32 on a CPU, 128 on a GPU)",
        ),
        click.option(
            "--device",
            type=click.Choice(DEVICES),
            default="auto",
            show_default=True,
            help="where the model runs: a GPU when the model's framework sees one (auto), or the CPU",
        ),
        click.option(
            "--precision",
            type=click.Choice(PRECISIONS),
            default="float32",
            show_default=True,
            help="mixed computes in bfloat16 on the CPU (on OpenVINO where it is installed and the CPU has bfloat16 "
            "instructions: about twice as fast; else on PyTorch) or float16 on a GPU; its fingerprints are a set "
            "of their own (weights identity +mixed), never compared with float32 ones",
        ),
        click.option(
            "--workers",
            default=None,
            type=click.IntRange(0, 256),
            help="decoder processes (default: one per core for a model on ONNX Runtime, else cores - 1; 0 decodes "
            "in this process); not with --dask",
        ),
        click.option(
            "--dask",
            metavar="ADDRESS|local[:N]",
            default=None,
            help="decode and fingerprint on a Dask cluster's workers, each building the model once: a "
            "scheduler's address, or local[:N] for N worker processes on this machine; workers read the "
            "photos at this machine's paths, or where their IMAGECLUSTER_ROOT_MAP puts them",
        ),
        click.option("--prune", is_flag=True, help="delete photos that are no longer there"),
        click.option("--retry-errors", is_flag=True, help="retry files that failed before and have not changed"),
        click.option(
            "--previews",
            default=0,
            type=click.IntRange(0, 4096),
            metavar="PX",
            help="also store a preview this many pixels on its longer side, for the page's loupe where the "
            "originals won't be at hand (a published catalog); 1000 decodes a 12-MP JPEG at a quarter of its size "
            "(+15 ms and ~130 KB a photo). Photos imported before get one too. 0: none [default: 0]",
        ),
        click.option("-s", "--silent", is_flag=True, help="don't show a progress bar"),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _run_import(db_path: str, paths: list[str], settings: dict, source: str = "folder", root_maps=()) -> None:
    """Run an import from a registered source with the shared options; one-line errors, a summary, an exit status."""
    from .catalogs.base import parse_root_maps
    from .pipeline import ImportOptions, run_import
    from .plugins import sources
    from .workers import DaskError, parse

    opener = sources()[source].open
    for path in paths:
        if not os.path.exists(path):
            raise click.ClickException(
                f"{path} does not exist: give a folder of photos or a catalog, "
                f"or try 'imagecluster sample {db_path}' for a sample library of real photos"
            )
    if opener is None and root_maps:
        raise click.UsageError("--root-map applies to a catalog source, not to folders")
    if opener is not None and len(paths) != 1:
        raise click.UsageError(f"the {source} source imports one catalog: give its path once")

    workers = settings.pop("workers")
    silent = settings.pop("silent")
    if settings["dask"] is not None:
        if workers is not None:
            raise click.UsageError("--workers counts this machine's decoder processes: with --dask the workers decode")
        try:
            parse(settings["dask"])
        except DaskError as e:
            raise click.UsageError(str(e))
    options = ImportOptions(**settings, workers=workers)
    bar = Bar(silent, "Fingerprinting")
    catalog = None
    try:
        catalog = opener(paths[0], parse_root_maps(root_maps)) if opener else None
        if catalog is not None and catalog.snapshot:
            click.echo(f"Note: {catalog.path} is locked by the program using it: reading a snapshot copy.", err=True)
        waiting = lambda: click.echo(  # noqa: E731
            f"Waiting: another import into {db_path} is running; this one goes on when it ends.", err=True
        )
        summary = run_import(db_path, paths, options, progress=bar, catalog=catalog, waiting=waiting)
    except KeyboardInterrupt:
        bar.finish()
        click.echo("\nInterrupted: photos imported so far are kept; run the same command to continue.", err=True)
        sys.exit(130)
    except sqlite3.Error as e:
        raise click.ClickException(f"cannot write the database {db_path}: {e}") from None
    finally:
        bar.finish()
        if catalog is not None:
            catalog.close()
    report_import(summary, [catalog.path] if catalog else paths, options.prune)


@cli.command(name="import")
@click.argument("db_path", type=click.Path(dir_okay=False, allow_dash=False))
@click.argument("paths", nargs=-1, required=True, type=click.Path(allow_dash=False))
@click.option(
    "--source",
    type=Registered("source"),
    default="folder",
    show_default=True,
    help="where the photos come from: folder, digikam, lightroom, or one a plugin adds (see 'imagecluster plugins')",
)
@ROOT_MAP
@fingerprint_options
def import_(db_path, paths, source, root_maps, **settings):
    """Fingerprint every photo below PATHS into the SQLite database DB_PATH.

    Walks folders recursively and recognises JPEG, PNG, GIF, WebP, TIFF, BMP,
    AVIF, HEIC/HEIF and RAW files by content. Re-runs are incremental: unchanged files
    are not read, moved or renamed files keep their fingerprints, and an
    interrupted import continues where it stopped. Files that cannot be
    imported are listed in the import_errors table. With --source, PATHS is
    one photo manager's catalog instead (as import-digikam and import-lightroom).

    \b
    Example:
        imagecluster import photos.db ~/Pictures
        imagecluster import photos.db ~/Pictures --weights ~/vgg16.h5
        imagecluster import photos.db ~/Pictures/digikam4.db --source digikam
        imagecluster import photos.db /mnt/photos --dask tcp://scheduler:8786
    """
    _run_import(db_path, list(paths), settings, source, root_maps)


@cli.command()
@click.argument("db_path", type=click.Path(dir_okay=False, allow_dash=False))
@click.option(
    "--folder",
    type=click.Path(file_okay=False, allow_dash=False),
    default=None,
    help="where the sample photos are written [default: beside DB_PATH, named after it with -sample]",
)
@fingerprint_options
def sample(db_path, folder, **settings):
    """Import a sample library of real photos: a first run without photos of your own, and without internet.

    Writes 26 photographs that come with scikit-image (NASA's and others in
    the public domain: nothing is downloaded) into a folder, arranged as a
    photo library is: bursts of shots seconds apart, scenes on different
    days, a stereo pair and loners, each with its capture time; then imports
    them as 'imagecluster import' does.

    \b
    Example:
        imagecluster sample photos.db && datasette photos.db
    """
    from .sample import write_sample

    folder = folder or os.path.join(
        os.path.dirname(db_path), os.path.splitext(os.path.basename(db_path))[0] + "-sample"
    )
    photos = write_sample(folder)
    click.echo(f"Sample: {len(photos)} photos in {folder}", err=True)
    _run_import(db_path, [folder], settings)
    click.echo(f"Browse them: datasette {db_path}", err=True)


@cli.command(name="import-digikam")
@click.argument("db_path", type=click.Path(dir_okay=False, allow_dash=False))
@click.argument("digikam_db", type=click.Path(exists=True, allow_dash=False))
@ROOT_MAP
@fingerprint_options
def import_digikam(db_path, digikam_db, root_maps, **settings):
    """Fingerprint the photos of a digiKam catalog, with its dates, ratings, tags and albums.

    DIGIKAM_DB is digikam4.db or the folder holding it (schema versions 10 to
    16). The catalog is opened read-only and never changed, even while
    digiKam has it open. Only visible images are taken; digiKam's date wins
    over EXIF, since users correct dates there. Originals that are missing
    are listed in import_errors.

    \b
    Example:
        imagecluster import-digikam photos.db ~/Pictures/digikam4.db
        imagecluster import-digikam photos.db old/digikam4.db --root-map /home/me/Pictures=/mnt/photos
    """
    _run_import(db_path, [digikam_db], settings, "digikam", root_maps)


@cli.command(name="import-lightroom")
@click.argument("db_path", type=click.Path(dir_okay=False, allow_dash=False))
@click.argument("catalog", type=click.Path(exists=True, allow_dash=False))
@ROOT_MAP
@fingerprint_options
def import_lightroom(db_path, catalog, root_maps, **settings):
    """Fingerprint the photos of a Lightroom Classic catalog, with its metadata.

    CATALOG is the .lrcat file or the folder holding it. It is opened
    read-only and never changed, even while Lightroom has it open. Capture
    times (with their offsets), ratings, picks, colour labels, captions, GPS,
    keywords, collections and stacks are kept; virtual copies are
    fingerprinted once. When an original is missing or cannot be decoded,
    the preview Lightroom rendered ("CATALOG Previews.lrdata") stands in and
    images.pixels_from says so; without one, it is listed in import_errors.

    \b
    Example:
        imagecluster import-lightroom photos.db "~/Pictures/Lightroom/Lightroom Catalog.lrcat"
    """
    _run_import(db_path, [catalog], settings, "lightroom", root_maps)


def _fingerprint_set_options(command):
    for option in reversed(
        [
            click.option("--model", default=None, help="fingerprint model (default: of the largest fingerprint set)"),
            click.option("--layer", default=None, help="fingerprint layer (default: of the largest fingerprint set)"),
            click.option("--weights", default=None, help="fingerprint weights identity, e.g. imagenet"),
        ]
    ):
        command = option(command)
    return command


def _clustering_options(command):
    """The parameters of one clustering, with the fingerprint set: for cluster, keepers and keep."""
    command = _fingerprint_set_options(command)
    for option in reversed(CLUSTERING_OPTIONS):
        command = option(command)
    return command


CLUSTERING_OPTIONS = [
    click.option(
        "--sim",
        default=None,
        metavar="FLOAT",
        help=f"similarity 0..1: higher makes smaller, tighter clusters [default: tuned, else {DEFAULT.sim}]",
    ),
    click.option(
        "--alpha",
        default=None,
        metavar="FLOAT",
        help=f"time weight 0..1: 0 content only, 1 capture time only [default: tuned, else {DEFAULT.alpha}]",
    ),
    click.option(
        "--method",
        type=click.Choice(METHODS),
        default=None,
        help=f"linkage method [default: tuned, else {DEFAULT.method}]",
    ),
    click.option(
        "--metric",
        type=click.Choice(METRICS),
        default=None,
        help=f"distance metric [default: tuned, else {DEFAULT.metric}]",
    ),
    click.option(
        "--min-csize",
        default=None,
        metavar="INTEGER",
        help=f"smallest cluster reported [default: tuned, else {DEFAULT.min_csize}]",
    ),
    click.option(
        "--pca",
        default=None,
        metavar="N|FRACTION",
        help="PCA first: components (e.g. 50) or variance fraction (e.g. 0.95)",
    ),
    click.option(
        "--tau",
        default=None,
        metavar="DURATION",
        help="photos this far apart or more count as unrelated in time, e.g. 15min, 1h, 2d "
        f"[default: tuned, else {format_duration(DEFAULT.tau)}]",
    ),
    click.option(
        "--distance",
        type=click.Choice(DISTANCES),
        default=None,
        help="absolute: content over its typical distance, time saturating at --tau, cut at 1 - sim; "
        f"imagecluster: each over its library-wide maximum [default: tuned, else {DEFAULT.distance}]",
    ),
]


@cli.command()
@click.argument("db_path", type=click.Path(exists=True, dir_okay=False, allow_dash=False))
@_clustering_options
@click.option("--json", "as_json", is_flag=True, help="print the clusters as JSON")
@click.option(
    "--links",
    type=click.Path(file_okay=False),
    default=None,
    metavar="DIR",
    help="make DIR/cluster_with_N/cluster_M/ folders of links to the photos",
)
@click.option(
    "--keepers-apart",
    is_flag=True,
    help="with --links, the shots that are not their burst's or duplicates' keeper in cluster_M/rest/",
)
@click.option(
    "--save",
    metavar="NAME",
    default=None,
    help="store the clustering as the next version of NAME (clusterings, cluster_members); "
    "clusters that persist keep their numbers",
)
@click.option(
    "--dask",
    metavar="ADDRESS|local[:N]",
    default=None,
    help="share the screen of all pairs among a Dask cluster's workers: a scheduler's address, "
    "or local[:N] for N worker threads in this process, sharing its one copy of the fingerprints "
    "(default: one per core)",
)
def cluster(
    db_path,
    sim,
    alpha,
    method,
    metric,
    min_csize,
    pca,
    tau,
    distance,
    model,
    layer,
    weights,
    as_json,
    links,
    keepers_apart,
    save,
    dask,
):
    """Cluster the photos in DB_PATH by content and capture time.

    Hierarchical clustering of the fingerprints, mixed with capture-time
    distance by --alpha, cut at --sim; prints imagecluster's table of
    cluster sizes. Photos --tau or more apart are unrelated in time: they
    join only when their contents are nearly the same. Parameters not given come from 'imagecluster tune --save'
    when it was run for these fingerprints, else the shipped defaults.

    \b
    Example:
        imagecluster cluster photos.db --sim 0.6 --alpha 0.3 --tau 2h
        imagecluster cluster photos.db --json > clusters.json
        imagecluster cluster photos.db --save trips --links ~/clusters
        imagecluster cluster photos.db --dask tcp://scheduler:8786
    """
    from datasette_imagecluster.api import Photos, on_dask

    from .workers import client

    if keepers_apart and not links:
        raise click.UsageError("--keepers-apart lays out the folders of --links: give --links DIR too")
    given = {
        "sim": sim,
        "alpha": alpha,
        "method": method,
        "metric": metric,
        "min_csize": min_csize,
        "pca": pca,
        "tau": tau,
        "distance": distance,
    }
    with contextlib.ExitStack() as stack:
        if dask:
            stack.enter_context(on_dask(stack.enter_context(client(dask, threads=True))))
        with Photos.open(db_path, reuse=False) as photos:  # one clustering: no screening kept for another
            clustering = photos.cluster(model=model, layer=layer, weights=weights, **given)
            found = photos.keepers(clustering) if links and keepers_apart else []
    report = clustering.json()
    click.echo(json.dumps(report, indent=2)) if as_json else print_stats(report)
    notes(clustering.selection)
    if links:
        paths = {image["id"]: image["path"] for c in report["clusters"] for image in c["images"]}
        rest = frozenset(paths[i] for cluster in found for group in cluster.groups for i in group.rest)
        _link(links, [[image["path"] for image in c["images"]] for c in report["clusters"]], rest)
    if save:
        with Photos.open(db_path, write=True) as photos:
            saved = photos.save_clustering(save, clustering)
        again = f", version {saved.version}: see 'imagecluster diff {db_path} {save}'" if saved.version > 1 else ""
        click.echo(f"Saved as clustering {save!r}{again}", err=True)


def _link(folder: str, paths: list[list[str]], rest: frozenset[str] = frozenset()) -> None:
    from .links import make_links

    try:
        count = make_links(folder, paths, rest)
    except OSError as e:
        raise click.ClickException(str(e)) from None
    click.echo(f"Linked {count} photos into {folder}", err=True)


@cli.command()
@click.argument("db_path", type=click.Path(exists=True, dir_okay=False, allow_dash=False))
@click.option(
    "--labels",
    "sources",
    multiple=True,
    type=click.Choice(BUILT_IN),
    help="a label source in the database (repeatable; default: all of them): catalog groups and "
    "stacks, same-shot siblings, exact duplicates, verdicts",
)
@click.option(
    "--labels-csv",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    metavar="FILE",
    help="a CSV with columns path,group (paths as imported) or image_id,group",
)
@click.option(
    "--labels-table",
    default=None,
    metavar="TABLE",
    help="a table in the database with a group column and a path or image_id column",
)
@click.option(
    "--min-precision",
    type=click.FloatRange(0, 1),
    default=None,
    metavar="P",
    help="choose the highest recall at this precision instead of the best F1",
)
@click.option(
    "--method",
    "methods",
    multiple=True,
    type=click.Choice(METHODS),
    help="linkage methods to search (repeatable; default: ward, average, complete, weighted, single)",
)
@click.option(
    "--pca",
    "pcas",
    multiple=True,
    metavar="N|FRACTION",
    help="also search PCA to N components or this variance fraction (repeatable)",
)
@click.option(
    "--folds",
    default=3,
    show_default=True,
    type=click.IntRange(2, 20),
    help="folds of the label groups for cross-validation",
)
@_fingerprint_set_options
@click.option("--json", "as_json", is_flag=True, help="print every candidate's scores as JSON")
@click.option("--save", is_flag=True, help="store the chosen parameters as this fingerprint set's defaults")
def tune(
    db_path,
    sources,
    labels_csv,
    labels_table,
    min_precision,
    methods,
    pcas,
    folds,
    model,
    layer,
    weights,
    as_json,
    save,
):
    """Find the clustering parameters that agree best with labels you already have.

    Searches method, alpha and sim (and --pca) for the fingerprint set, scoring
    each candidate by pairwise precision and recall against the labels:
    photos in one label group belong together, photos in two groups don't.
    It cross-validates over folds of the groups and keeps the defaults unless
    the labels clearly say otherwise, so a small label set is not memorised.
    With --save, 'imagecluster cluster', the /-/cluster page and the SQL
    functions use the chosen parameters when none are given.

    \b
    Example:
        imagecluster tune photos.db                       # catalog groups, siblings, duplicates, verdicts
        imagecluster tune photos.db --labels-csv groups.csv --save
        imagecluster tune photos.db --min-precision 0.9 --json
    """
    from datasette_imagecluster.api import Photos, parse_pca

    with Photos.open(db_path) as photos:
        result = photos.tune(
            sources,
            labels_csv=labels_csv,
            labels_table=labels_table,
            min_precision=min_precision,
            folds=folds,
            methods=methods,
            pcas=(None, *(parse_pca(p) for p in pcas)),
            model=model,
            layer=layer,
            weights=weights,
        )
    chosen = result.fingerprint_set
    if as_json:
        click.echo(json.dumps(tune_json(result), indent=2))
    else:
        print_tuning(result)
    if result.singletons:
        click.echo(
            f"Note: {result.singletons} label groups have one photo: each says that photo belongs with no "
            "other labelled photo.",
            err=True,
        )
    for note in result.tuning.notes:
        click.echo(f"Note: {note}.", err=True)
    if chosen.weights.startswith("random-"):
        click.echo(
            f"Note: these fingerprints come from random weights ({chosen.weights}), not a pretrained model.", err=True
        )
    if not save:
        click.echo("Not saved: run again with --save to use these parameters by default.", err=True)
        return
    with Photos.open(db_path, write=True) as photos:
        photos.save_tuned(result)
    click.echo(f"Saved as the defaults for {chosen.label}.", err=True)


@cli.command()
@click.argument("db_path", type=click.Path(exists=True, dir_okay=False, allow_dash=False))
@click.argument("verdict", type=click.Choice(["same", "different", "forget"]))
@click.argument("image_ids", nargs=-1, required=True, type=click.IntRange(0, 2**63 - 1))
def verdict(db_path, verdict, image_ids):
    """Say that photos belong together (same), don't (different), or take that back (forget).

    Verdicts are stored by the photos' content, so they survive moves,
    renames and re-imports; 'imagecluster tune' uses them as labels.

    \b
    Example:
        imagecluster verdict photos.db same 12 13 14
        imagecluster verdict photos.db different 12 40
        imagecluster verdict photos.db forget 12 40
    """
    from datasette_imagecluster.api import Photos
    from datasette_imagecluster.library.verdicts import DESCRIBED

    with Photos.open(db_path, write=True) as photos:  # migrates an older database to the verdicts table
        photos.record_verdict(verdict, image_ids)
    click.echo(f"Recorded: photos {', '.join(map(str, dict.fromkeys(image_ids)))} {DESCRIBED[verdict]}.", err=True)


@cli.command()
@click.argument("db_path", type=click.Path(exists=True, dir_okay=False, allow_dash=False))
@_clustering_options
@click.option("--clustering", "name", default=None, help="a saved clustering instead (its latest version)")
@click.option("--json", "as_json", is_flag=True, help="print the keepers as JSON")
def keepers(db_path, name, as_json, **options):
    """List each cluster's keeper, its duplicates and bursts with their keepers and the rest, and why.

    Inside each cluster, photos are grouped by the strictest likeness that
    joins them: the same file (SHA-256), the same pixels with other
    metadata, near duplicates (a resize, a re-encode, a flip), a burst
    (shots seconds apart). Each group's keeper is the sharpest shot that
    is no worse in exposure, compression or size, with the reason in words;
    a keeper chosen with 'imagecluster keep' wins. Each cluster also says
    how much of what joined it was content and how much capture time, and
    its weakest link.

    \b
    Example:
        imagecluster keepers photos.db
        imagecluster keepers photos.db --clustering trips --json
    """
    from datasette_imagecluster.api import Photos

    with Photos.open(db_path, reuse=False) as photos:
        found = photos.keepers(name or photos.cluster(**options))
        shown = json.dumps([i for cluster in found for i in cluster.images])
        paths = dict(
            photos.conn.execute("select id, path from images where id in (select value from json_each(?))", (shown,))
        )
    if as_json:
        click.echo(json.dumps({"clusters": [cluster.json() for cluster in found]}, indent=2))
    else:
        print_keepers(found, paths)


@cli.command()
@click.argument("db_path", type=click.Path(exists=True, dir_okay=False, allow_dash=False))
@click.argument("image_ids", nargs=-1, required=True, type=click.IntRange(0, 2**63 - 1))
@_clustering_options
@click.option("--clustering", "name", default=None, help="a saved clustering instead (its latest version)")
@click.option("--also", is_flag=True, help="keep these as well as the keeper chosen before in their clusters")
@click.option("--forget", is_flag=True, help="drop these photos' choice: the suggestion stands again")
def keep(db_path, image_ids, name, also, forget, **options):
    """Choose the photos to keep in their clusters, by content: the choice wins over the suggestion, and stays
    across moves, renames and re-imports.

    \b
    Example:
        imagecluster keep photos.db 42
        imagecluster keep photos.db 42 57 --also
        imagecluster keep photos.db 42 --forget
    """
    from datasette_imagecluster.api import Photos

    with Photos.open(db_path, write=True, reuse=False) as photos:
        if forget:
            count = photos.forget_keepers(image_ids)
            click.echo(f"Forgot {count} chosen keeper(s).", err=True)
            return
        photos.choose_keepers(name or photos.cluster(**options), image_ids, also=also)
    click.echo(f"Keeping {', '.join(map(str, image_ids))}.", err=True)


@cli.command(name="export-xmp")
@click.argument("db_path", type=click.Path(exists=True, dir_okay=False, allow_dash=False))
@click.option("--clustering", "name", required=True, help="a clustering saved with 'imagecluster cluster --save'")
@click.option(
    "--sidecar",
    type=click.Choice(["appended", "replaced"]),
    default=None,
    help="sidecar names: photo.jpg.xmp (appended, digiKam) or photo.xmp (replaced, Lightroom); "
    "default: an existing sidecar, else by the program the photo came from",
)
@click.option("--dry-run", is_flag=True, help="list what would change, write nothing")
@click.option(
    "--keepers/--no-keepers",
    default=True,
    show_default=True,
    help="mark each cluster's, burst's and duplicates' keeper with imagecluster|NAME|keeper",
)
@click.option(
    "--keeper-rating",
    type=click.IntRange(1, 5),
    default=None,
    help="also give keepers this star rating, where the photo has none (in its sidecar or its catalog); a photo "
    "no longer a keeper later loses it, unless you changed it",
)
def export_xmp_command(db_path, name, sidecar, dry_run, keepers, keeper_rating):
    """Write each photo's cluster into its XMP sidecar as a keyword digiKam and Lightroom read.

    The keyword is imagecluster|NAME|cluster-0042 (lr:hierarchicalSubject,
    digiKam:TagsList) with its leaf in dc:subject; keepers (see 'imagecluster
    keepers') also get imagecluster|NAME|keeper, and with --keeper-rating a
    rating where they have none. Existing sidecars are merged: every other
    field and keyword stays, and a rating is never replaced. Running it
    again replaces this clustering's keywords only. Photos are never touched.

    \b
    Example:
        imagecluster cluster photos.db --sim 0.7 --save trips
        imagecluster export-xmp photos.db --clustering trips --dry-run
    """
    from .export import export_xmp

    if keeper_rating is not None and not keepers:
        raise click.UsageError("--keeper-rating rates the keepers: it needs --keepers")
    changes, skipped = export_xmp(db_path, name, sidecar, dry_run, keepers, keeper_rating)
    for change in changes:
        what = ", ".join([f"+{k}" for k in change.added] + [f"-{k}" for k in change.removed])
        click.echo(f"{'would update' if dry_run else 'updated'} {change.sidecar}: {what}")
    for left in skipped:
        click.echo(f"skipped {left.sidecar}: {left.reason}", err=True)
    click.echo(f"{len(changes)} sidecar(s) {'would change' if dry_run else 'written'}.", err=True)
    if skipped:
        raise click.ClickException(f"{len(skipped)} sidecar(s) skipped and left as they were (listed above)")


@cli.command(name="export")
@click.argument("db_path", type=click.Path(exists=True, dir_okay=False, allow_dash=False))
@click.option("--clustering", "name", required=True, help="a clustering saved with 'imagecluster cluster --save'")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "json"]),
    default="csv",
    show_default=True,
    help="CSV, one row per photo, or JSON, one object per cluster",
)
def export_command(db_path, name, fmt):
    """Print a saved clustering as CSV (one row per photo) or JSON, for other tools."""
    from .export import export_table

    click.echo(export_table(db_path, name, fmt), nl=False)


@cli.command()
@click.argument("db_path", type=click.Path(exists=True, dir_okay=False, allow_dash=False))
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="print the changes as JSON")
def diff(db_path, name, as_json):
    """What changed between the last two saves of the clustering NAME.

    Saving a clustering again ('imagecluster cluster --save NAME', e.g. after
    an import) keeps the number of every cluster that persists. This lists
    the clusters that are new, grew, shrank, changed, split, merged or
    dissolved, with their photos that moved.

    \b
    Example:
        imagecluster cluster photos.db --save trips
        imagecluster import photos.db ~/Pictures && imagecluster cluster photos.db --save trips
        imagecluster diff photos.db trips
    """
    from datasette_imagecluster.api import Photos

    with Photos.open(db_path) as photos:
        changes = photos.diff(name)
    if as_json:
        click.echo(json.dumps(changes.as_dict(), indent=2))
        return
    print_diff(name, changes)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="print the plugins as JSON")
def plugins(as_json):
    """List the plugins: the built-in ones and those installed, with the sources and models they add.

    A plugin is a Python package registered in the 'imagecluster' entry-point
    group (docs/plugins.md); the built-in folder, digiKam and Lightroom
    sources and the built-in models are plugins too.

    \b
    Example:
        imagecluster plugins
        imagecluster plugins --json
    """
    from .plugins import plugin_list

    listed = plugin_list()
    if as_json:
        click.echo(json.dumps(listed, indent=2))
        return
    print_plugins(listed)
