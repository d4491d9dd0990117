"""The ``imagecluster`` command: import photos, then cluster them.

Each command's docstring is its ``--help``. Errors a user can fix are printed
as one line (``Error: ...``) with exit status 1, never as a traceback.
"""

from __future__ import annotations

import json
import sqlite3
import sys
from pathlib import Path

import click

from datasette_imagecluster.clustering import METHODS, METRICS, ClusterError, Params
from datasette_imagecluster.clustering import cluster as run_cluster
from datasette_imagecluster.fingerprints import choose_set, fingerprint_sets, load_library
from datasette_imagecluster.results import params_json, result_json
from datasette_imagecluster.schema import IMAGES, SchemaError, schema_version

from .models import ARCHITECTURES

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"]}


@click.group(context_settings=CONTEXT_SETTINGS)
@click.version_option(package_name="datasette-imagecluster")
def cli() -> None:
    """Group a photo library by what its pictures show and when they were taken.

    \b
    imagecluster import photos.db ~/Pictures     fingerprint every photo
    imagecluster cluster photos.db --sim 0.6     group them
    datasette photos.db                          explore them in a browser
    """


class _Bar:
    """A click progress bar when stderr is a terminal; nothing with --silent or in a pipe."""

    def __init__(self, silent: bool, label: str):
        self.silent = silent
        self.label = label
        self.bar = None

    def start(self, total: int) -> None:
        if not self.silent and total and sys.stderr.isatty():
            self.bar = click.progressbar(
                length=total, label=self.label, show_eta=True, show_pos=True, file=sys.stderr
            )
            self.bar.__enter__()

    def advance(self, count: int) -> None:
        if self.bar is not None:
            self.bar.update(count)

    def finish(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None


def fingerprint_options(command):
    """The options every importing command shares."""
    options = [
        click.option("--model", type=click.Choice(list(ARCHITECTURES)), default="vgg16", show_default=True,
                     help="CNN that fingerprints each photo: imagecluster's vgg16, or a faster backbone"),
        click.option("--layer", default=None,
                     help="vgg16's layer whose activations are the fingerprint: fc2 (default), fc1 or "
                          "flatten; the other models use their pooled features (avgpool)"),
        click.option("--weights", default="imagenet", show_default=True, metavar="imagenet|none|PATH",
                     help="pretrained ImageNet weights (downloaded once by Keras), a local weights file, "
                          "or none for random weights (deterministic, NOT pretrained: for tests)"),
        click.option("--seed", default=0, show_default=True, help="seed of the random weights of --weights none"),
        click.option("--batch-size", default=32, show_default=True, type=click.IntRange(1, 1024),
                     help="photos per model call and per database transaction"),
        click.option("--workers", default=None, type=click.IntRange(0, 256),
                     help="decoder processes (default: cores - 1; 0 decodes in this process)"),
        click.option("--prune", is_flag=True, help="delete photos that are no longer there"),
        click.option("--retry-errors", is_flag=True, help="retry files that failed before and have not changed"),
        click.option("-s", "--silent", is_flag=True, help="don't show a progress bar"),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _run_import(db_path: str, paths: list[str], settings: dict, catalog_factory=None) -> None:
    """Run an import with the shared options; one-line errors, a summary, an exit status."""
    from .catalog import CatalogError
    from .models import WeightsError
    from .pipeline import ImportFailed, ImportOptions, default_workers, run_import

    workers = settings.pop("workers")
    silent = settings.pop("silent")
    options = ImportOptions(**settings, workers=default_workers() if workers is None else workers)
    bar = _Bar(silent, "Fingerprinting")
    catalog = None
    try:
        catalog = catalog_factory() if catalog_factory else None
        if catalog is not None and catalog.snapshot:
            click.echo(f"Note: {catalog.path} is locked by the program using it: reading a snapshot copy.",
                       err=True)
        summary = run_import(db_path, paths, options, progress=bar, catalog=catalog)
    except KeyboardInterrupt:
        bar.finish()
        click.echo("\nInterrupted: photos imported so far are kept; run the same command to continue.",
                   err=True)
        sys.exit(130)
    except (ImportFailed, WeightsError, SchemaError, CatalogError) as e:
        bar.finish()
        raise click.ClickException(str(e))
    except sqlite3.Error as e:
        bar.finish()
        raise click.ClickException(f"cannot write the database {db_path}: {e}")
    finally:
        if catalog is not None:
            catalog.close()
    bar.finish()
    _report_import(summary, [catalog.path] if catalog else paths, options.prune)


@cli.command(name="import")
@click.argument("db_path", type=click.Path(dir_okay=False, allow_dash=False))
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, allow_dash=False))
@fingerprint_options
def import_(db_path, paths, **settings):
    """Fingerprint every photo below PATHS into the SQLite database DB_PATH.

    Walks folders recursively and recognises JPEG, PNG, GIF, WebP, TIFF, BMP,
    AVIF, HEIC/HEIF and RAW files by content. Re-runs are incremental: unchanged files
    are not read, moved or renamed files keep their fingerprints, and an
    interrupted import continues where it stopped. Files that cannot be
    imported are listed in the import_errors table.

    \b
    Example:
        imagecluster import photos.db ~/Pictures
        imagecluster import photos.db ~/Pictures --weights ~/vgg16.h5
    """
    _run_import(db_path, list(paths), settings)


@cli.command(name="import-digikam")
@click.argument("db_path", type=click.Path(dir_okay=False, allow_dash=False))
@click.argument("digikam_db", type=click.Path(exists=True, allow_dash=False))
@click.option("--root-map", "root_maps", multiple=True, metavar="OLD=NEW",
              help="read photos under OLD from NEW (repeatable): a catalog made on another machine or mount")
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
    from .catalog import parse_root_maps
    from .digikam import DigikamCatalog

    _run_import(db_path, [], settings, lambda: DigikamCatalog(digikam_db, parse_root_maps(root_maps)))


@cli.command(name="import-lightroom")
@click.argument("db_path", type=click.Path(dir_okay=False, allow_dash=False))
@click.argument("catalog", type=click.Path(exists=True, allow_dash=False))
@click.option("--root-map", "root_maps", multiple=True, metavar="OLD=NEW",
              help="read photos under OLD from NEW (repeatable): a catalog made on another machine, "
                   "e.g. C:/Users/me/Pictures=/mnt/pictures")
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
    from .catalog import parse_root_maps
    from .lightroom import LightroomCatalog

    _run_import(db_path, [], settings, lambda: LightroomCatalog(catalog, parse_root_maps(root_maps)))


def _report_import(summary, paths, prune: bool) -> None:
    s = summary
    failed = s.failed + s.still_failing
    click.echo(
        f"Imported {s.imported}, unchanged {s.unchanged}, moved {s.moved}, copied {s.copied}, "
        f"failed {failed}, not photos {s.not_photos}; {s.elapsed:.{2 if s.elapsed < 10 else 1}f} s"
        + (f", {s.rate:.1f} photos/s" if s.imported else "")
    )
    if failed:
        click.echo(f"Warning: {failed} file(s) could not be imported: see the import_errors table.",
                   err=True)
    if s.exif_warnings:
        click.echo(f"Warning: {s.exif_warnings} photo(s) have unreadable EXIF (images.exif_error); "
                   "their file time was used.", err=True)
    if s.from_previews:
        click.echo(f"Note: {s.from_previews} photo(s) were fingerprinted from Lightroom's previews, their "
                   "originals being missing or unreadable (images.pixels_from).", err=True)
    if s.vanished:
        verb = "were removed" if prune else "are no longer on disk; --prune removes them"
        click.echo(f"{len(s.vanished)} photo(s) {verb} (e.g. {s.vanished[0]}).", err=True)
    if s.model_loaded and s.weights.startswith("random-"):
        click.echo(f"Note: fingerprints were made with random weights ({s.weights}), not a "
                   "pretrained model.", err=True)
    if s.readable == 0:
        if failed:
            raise click.ClickException("nothing could be read: every file failed (see import_errors)")
        raise click.ClickException(f"no photos found in {', '.join(paths)}")


def _open_read_only(db_path: str) -> sqlite3.Connection:
    uri = Path(db_path).absolute().as_uri() + "?mode=ro"
    try:
        conn = sqlite3.connect(uri, uri=True)
        version = schema_version(conn)
        tables = conn.execute("select count(*) from sqlite_master where name = ?", (IMAGES,)).fetchone()[0]
    except sqlite3.DatabaseError as e:
        raise click.ClickException(f"{db_path} is not a readable SQLite database ({e})")
    if version == 0 or not tables:
        raise click.ClickException(
            f"{db_path} is not an imagecluster database: run 'imagecluster import {db_path} PATH' first"
        )
    return conn


@cli.command()
@click.argument("db_path", type=click.Path(exists=True, dir_okay=False, allow_dash=False))
@click.option("--sim", default="0.5", show_default=True, metavar="FLOAT",
              help="similarity 0..1: higher makes smaller, tighter clusters")
@click.option("--alpha", default="0.3", show_default=True, metavar="FLOAT",
              help="time weight 0..1: 0 content only, 1 capture time only")
@click.option("--method", type=click.Choice(METHODS), default="average", show_default=True,
              help="linkage method")
@click.option("--metric", type=click.Choice(METRICS), default="euclidean", show_default=True,
              help="distance metric")
@click.option("--min-csize", default="2", show_default=True, metavar="INTEGER", help="smallest cluster reported")
@click.option("--pca", default=None, metavar="N|FRACTION", help="PCA first: components (e.g. 50) or variance fraction (e.g. 0.95)")
@click.option("--model", default=None, help="fingerprint model (default: of the largest fingerprint set)")
@click.option("--layer", default=None, help="fingerprint layer (default: of the largest fingerprint set)")
@click.option("--weights", default=None, help="fingerprint weights identity, e.g. imagenet")
@click.option("--json", "as_json", is_flag=True, help="print the clusters as JSON")
@click.option("--links", type=click.Path(file_okay=False), default=None, metavar="DIR",
              help="make DIR/cluster_with_N/cluster_M/ folders of links to the photos")
@click.option("--save", metavar="NAME", default=None,
              help="store the clustering in the clusterings and cluster_members tables")
def cluster(db_path, sim, alpha, method, metric, min_csize, pca, model, layer, weights, as_json,
            links, save):
    """Cluster the photos in DB_PATH by content and capture time.

    Hierarchical clustering of the fingerprints, mixed with capture-time
    distance by --alpha, cut at --sim; prints imagecluster's table of
    cluster sizes.

    \b
    Example:
        imagecluster cluster photos.db --sim 0.6 --alpha 0.3
        imagecluster cluster photos.db --json > clusters.json
        imagecluster cluster photos.db --save trips --links ~/clusters
    """
    conn = _open_read_only(db_path)
    try:
        params = Params(sim=sim, alpha=alpha, method=method, metric=metric, min_csize=min_csize, pca=pca)
        sets = fingerprint_sets(conn)
        chosen = choose_set(sets, model, layer, weights)
        library = load_library(conn, chosen)
        result = run_cluster(library.vectors, library.timestamps, library.ids, params)
        report = result_json(result, library)
    except ClusterError as e:
        raise click.ClickException(str(e))
    finally:
        conn.close()
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        _print_stats(report)
    if len(sets) > 1:
        others = ", ".join(s.label for s in sets if s != chosen)
        click.echo(f"Note: clustered {chosen.label}; this database also has {others} "
                   "(choose with --model, --layer and --weights).", err=True)
    if chosen.weights.startswith("random-"):
        click.echo(f"Note: these fingerprints come from random weights ({chosen.weights}), "
                   "not a pretrained model.", err=True)
    paths = [[image["path"] for image in c["images"]] for c in report["clusters"]]
    if links:
        from .links import LinksError, make_links

        try:
            count = make_links(links, paths)
        except (LinksError, OSError) as e:
            raise click.ClickException(str(e))
        click.echo(f"Linked {count} photos into {links}", err=True)
    if save:
        from .store import Store

        store = Store(db_path)
        try:
            store.save_clustering(
                save, params_json(result, chosen), result.n_images,
                [[int(i) for i in members] for members in result.clusters],
            )
        except sqlite3.Error as e:
            raise click.ClickException(f"cannot save to {db_path}: {e}")
        finally:
            store.close()
        click.echo(f"Saved as clustering {save!r}", err=True)


def _print_stats(report: dict) -> None:
    p = report["params"]
    click.echo(
        f"{report['n_images']} photos ({p['model']}/{p['layer']}, weights {p['weights']}); "
        f"sim {p['sim']}, alpha {p['alpha']}, {p['method']}/{p['metric']}, min_csize {p['min_csize']}"
        + (f", pca {p['pca']}" if p["pca"] is not None else "")
    )
    click.echo("#images : #clusters")
    for row in report["stats"]:
        click.echo(f"{row['size']} : {row['clusters']}")
    click.echo(f"#images in clusters total:  {report['n_clustered']}")


@cli.command(name="export-xmp")
@click.argument("db_path", type=click.Path(exists=True, dir_okay=False, allow_dash=False))
@click.option("--clustering", "name", required=True, help="a clustering saved with 'imagecluster cluster --save'")
@click.option("--sidecar", type=click.Choice(["appended", "replaced"]), default=None,
              help="sidecar names: photo.jpg.xmp (appended, digiKam) or photo.xmp (replaced, Lightroom); "
                   "default: an existing sidecar, else by the program the photo came from")
@click.option("--dry-run", is_flag=True, help="list what would change, write nothing")
def export_xmp_command(db_path, name, sidecar, dry_run):
    """Write each photo's cluster into its XMP sidecar as a keyword digiKam and Lightroom read.

    The keyword is imagecluster|NAME|cluster-0042 (lr:hierarchicalSubject,
    digiKam:TagsList) with its leaf in dc:subject. Existing sidecars are
    merged: every other field and keyword stays. Running it again replaces
    this clustering's keywords only. Photos are never touched.

    \b
    Example:
        imagecluster cluster photos.db --sim 0.7 --save trips
        imagecluster export-xmp photos.db --clustering trips --dry-run
    """
    from .export import ExportError, export_xmp

    try:
        changes = export_xmp(db_path, name, sidecar, dry_run)
    except ExportError as e:
        raise click.ClickException(str(e))
    for change in changes:
        what = ", ".join([f"+{k}" for k in change.added] + [f"-{k}" for k in change.removed])
        click.echo(f"{'would update' if dry_run else 'updated'} {change.sidecar}: {what}")
    click.echo(f"{len(changes)} sidecar(s) {'would change' if dry_run else 'written'}.", err=True)


@cli.command(name="export")
@click.argument("db_path", type=click.Path(exists=True, dir_okay=False, allow_dash=False))
@click.option("--clustering", "name", required=True, help="a clustering saved with 'imagecluster cluster --save'")
@click.option("--format", "fmt", type=click.Choice(["csv", "json"]), default="csv", show_default=True)
def export_command(db_path, name, fmt):
    """Print a saved clustering as CSV (one row per photo) or JSON, for other tools."""
    from .export import ExportError, export_table

    try:
        click.echo(export_table(db_path, name, fmt), nl=False)
    except ExportError as e:
        raise click.ClickException(str(e))
