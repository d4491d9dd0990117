"""The import: walk, match against the database, decode, fingerprint, store.

1. *Plan*: walk the roots and sort every file into unchanged (same path, size
   and mtime, fingerprint present: not even read), known content under a new
   path (moved or copied: matched by size, then sha256; no decoding), not a
   photo, or to do. A file that already failed with the same size and mtime
   is not retried unless asked.
2. *Decode* the files to do in worker processes, a bounded number ahead of
   the consumer, so memory stays flat however large the library.
3. *Fingerprint* in batches; the model is loaded only when the first batch
   is ready, so a run with nothing new never loads it.
4. *Store* each batch in one transaction, its failures with it.
5. Report photos that vanished below the roots (delete them with ``prune``).
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sqlite3
import stat
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from itertools import compress
from typing import Protocol

import numpy as np

from datasette_imagecluster.errors import ImageclusterError
from datasette_imagecluster.library.connections import connect_read_only, require_transaction
from datasette_imagecluster.library.fingerprints import FingerprintKey, fingerprint_sets
from datasette_imagecluster.library.vectors import encode

from . import devices, workers
from .catalogs.base import Catalog, CatalogPhoto, Preview
from .decode import Decoded, DecodeRequest, decode
from .folders import FileEntry, Problem, display_path, file_sha256, has_image_extension, sniff_file, walk
from .models import Architecture, Fingerprinter, Weights, load_fingerprinter, resolve_weights
from .plugins import fingerprinters
from .store import KnownImage, Store, one_import_at_a_time

# The model of a new library: its ImageNet weights install with a package (no download: it works offline),
# the quality figures (docs/quality.md) were measured with it, and on ONNX Runtime it is 23x VGG16's rate.
DEFAULT_MODEL = "efficientnet-lite0"


class ImportFailed(ImageclusterError):
    """The import as a whole cannot go on; the message says why."""


def default_workers(architecture: Architecture | None = None, precision: str = "float32") -> int:
    """Decoder processes, from what decoding and the model cost (benchmarks/bench_limit.py, 2 cores, 12 MP).

    Decoding a photo takes ~35 ms of a core. A model on ONNX Runtime takes a fraction of that (EfficientNet-Lite0:
    ~11 ms), so a decoder on every core keeps it fed (39 against 32 photos/s with one core left to it); a model on
    its own framework is the slower half (VGG16 on Keras: ~270 ms), so one core is left to its threads.
    """
    cores = os.cpu_count() or 2
    light = architecture is not None and architecture.on_runtime(precision)
    return cores if light else max(1, cores - 1)


@dataclass
class ImportOptions:
    model: str | None = None  # None: the database's one fingerprint set's model, else DEFAULT_MODEL
    layer: str | None = None  # the model's default layer
    weights: str = "imagenet"
    seed: int = 0
    batch_size: int | None = None  # the device's (devices.BATCH_SIZES)
    workers: int | None = None  # decoder processes; None: default_workers for the model
    device: str = "auto"
    precision: str = "float32"
    dask: str | None = None  # a scheduler's address or local[:N]: workers decode and fingerprint
    prune: bool = False
    retry_errors: bool = False
    previews: int = 0  # store a preview this many px on its longer side, for a published catalog's loupe


@dataclass
class ImportSummary:
    imported: int = 0
    unchanged: int = 0
    moved: int = 0
    copied: int = 0
    failed: int = 0
    still_failing: int = 0
    not_photos: int = 0
    exif_warnings: int = 0
    from_previews: int = 0  # fingerprinted from a catalog's preview, not the original
    refreshed: int = 0  # of those imported, decoded again for what they lacked (signals, a preview), not fingerprinted
    vanished: list[str] = field(default_factory=list)
    pruned: int = 0
    model_loaded: bool = False
    weights: str = ""
    device: str = ""  # where the model ran, once it has
    elapsed: float = 0.0

    @property
    def readable(self) -> int:
        return self.imported + self.unchanged + self.moved + self.copied

    @property
    def rate(self) -> float:
        return self.imported / self.elapsed if self.elapsed > 0 else 0.0


class Progress(Protocol):
    def start(self, total: int) -> None: ...
    def advance(self, count: int) -> None: ...


class _NoProgress:
    def start(self, total: int) -> None:
        pass

    def advance(self, count: int) -> None:
        pass


def run_import(
    db_path: str,
    roots: list[str],
    options: ImportOptions,
    progress: Progress | None = None,
    catalog: Catalog | None = None,
    waiting: Callable[[], None] = lambda: None,
) -> ImportSummary:
    """Import every photo below ``roots`` (or of a photo manager's ``catalog``) into ``db_path``; after another
    import into it, if one is running (``waiting()`` is called first: :func:`.store.one_import_at_a_time`)."""
    with one_import_at_a_time(db_path, waiting):
        started = time.monotonic()  # the rate counts this import's own time, not the wait
        models = fingerprinters()
        options = chosen_model(db_path, options)
        if options.model not in models:
            raise ImportFailed(f"unknown model {options.model!r}: choose one of {', '.join(models)}")
        architecture = models[options.model]
        options = replace(options, layer=options.layer or architecture.default_layer)
        if options.workers is None:
            options = replace(options, workers=default_workers(architecture, options.precision))
        if options.layer not in architecture.layers:
            raise ImportFailed(
                f"{options.model} has no layer {options.layer!r}: choose one of {', '.join(architecture.layers)}"
            )
        weights = resolve_weights(architecture, options.weights, options.seed)
        store = Store(db_path)
        try:
            job = Import(store, options, architecture, weights, progress or _NoProgress(), catalog)
            job.run(roots)
        finally:
            store.close()
    job.summary.elapsed = time.monotonic() - started
    return job.summary


def chosen_model(db_path: str, options: ImportOptions) -> ImportOptions:
    """The options with their model (and layer) filled in where none was given: the model and layer of the
    database's fingerprint set when it holds exactly one (a library fingerprinted with VGG16 stays VGG16, and
    is not fingerprinted a second time), else :data:`DEFAULT_MODEL`."""
    if options.model is not None:
        return options
    sets = []
    if os.path.exists(db_path):
        try:
            conn = connect_read_only(db_path)
            try:
                sets = fingerprint_sets(conn)
            finally:
                conn.close()
        except (sqlite3.Error, ImageclusterError):
            sets = []  # not a database yet, or not one we can read: the import says so in its own words
    if len(sets) == 1:
        return replace(options, model=sets[0].model, layer=options.layer or sets[0].layer)
    return replace(options, model=DEFAULT_MODEL)


class Import:
    """One import: the store, the options, the model, the summary and the progress, in one place.

    The steps are its methods, in order: :meth:`plan` sorts every file (or
    catalog photo) into done, moved, copied, failed or to decode;
    :meth:`fingerprint` decodes and fingerprints what is left, a batch per
    transaction; :meth:`find_vanished` reports (and with ``prune`` deletes)
    photos that are gone.
    """

    def __init__(
        self,
        store: Store,
        options: ImportOptions,
        architecture: Architecture,
        weights: Weights,
        progress: Progress,
        catalog: Catalog | None = None,
    ):
        self.store = store
        self.options = options
        self.architecture = architecture
        self.weights = weights
        self.progress = progress
        self.catalog = catalog
        identity = devices.identity(weights.identity, options.precision)
        self.key = FingerprintKey(options.model, options.layer, identity)
        self.summary = ImportSummary(weights=identity)
        self.metadata = CatalogMetadata(store, catalog)

    def run(self, roots: list[str]) -> None:
        if self.catalog:
            with self.store.transaction():
                self.store.forget_missing_originals(self.catalog.path)
        entries = _catalog_entries(self.catalog) if self.catalog else ((item, None) for item in walk(roots))
        todo = self.plan(entries)
        self.progress.start(len(todo))
        self.fingerprint(todo)
        if self.catalog:
            self.metadata.finish_catalog(self.options.prune, self.summary)
        else:
            self.find_vanished(roots)
        with self.store.transaction():
            self.store.refresh_scale(self.key)

    # -- planning ---------------------------------------------------------

    def plan(self, entries: Iterable[tuple[Entry, CatalogPhoto | None]]) -> list[DecodeRequest]:
        """What to decode; everything else (unchanged, moved, copied, failed) is settled here and now."""
        todo: list[DecodeRequest] = []
        metadata = self.metadata
        for item, photo in entries:
            if photo is not None:
                metadata.saw(photo)
            if isinstance(item, Problem):
                self.record(item)
                continue
            if photo is not None:
                metadata.follow(photo, item.path)
            if isinstance(item, MissingOriginal):
                request = self.classify_stand_in(item)
            else:
                orientation = photo.orientation if photo is not None else None
                request = self.classify(item, orientation)
                if request is not None and photo is not None:
                    request.orientation = orientation
                    request.preview = self.catalog.preview(photo)  # in case the original cannot be decoded
            if request is not None:
                todo.append(request)
            if photo is None:
                continue
            # A catalog's metadata goes with the photo's row (none for a file that failed).
            if request is not None:
                metadata.wait(item.path, photo)
            elif (image := self.store.image_at(item.path)) is not None:
                metadata.has_row(image.id, photo)
        return todo

    def classify(self, entry: FileEntry, orientation: int | None = None) -> DecodeRequest | None:
        """What one file needs; moves, copies and touches are written here and now.

        ``orientation`` is a catalog's: a photo the user has rotated there since its
        last import is decoded again, however unchanged the file.
        """
        store, summary, input_size = self.store, self.summary, self.architecture.input_size
        known = store.image_at(entry.path)
        if known is not None and known.size == entry.size and known.mtime == entry.mtime:
            if self.done(known, orientation):
                summary.unchanged += 1
                return None
            return DecodeRequest(
                entry.path,
                entry.size,
                entry.mtime,
                input_size,
                known.sha256,
                preview_size=self.options.previews,
                fingerprint=not self.fingerprinted(known, orientation),
            )
        if not self.options.retry_errors and store.failed_unchanged(entry):
            summary.still_failing += 1
            return None
        try:
            fmt = sniff_file(entry.path)
        except OSError as e:
            if has_image_extension(entry.path):
                self.unreadable(entry, e)
            return None
        if fmt is None:
            if has_image_extension(entry.path):
                message = (
                    "empty file"
                    if entry.size == 0
                    else ("not an image: the content is not JPEG, PNG, GIF, WebP, TIFF, BMP, AVIF or HEIF")
                )
                self.record(Problem(entry.path, "decode", message, entry.size, entry.mtime))
            else:
                summary.not_photos += 1
            return None

        twins = [i for i in store.images_of_size(entry.size) if i.path != entry.path]
        sha256 = None
        if twins or (known is not None and known.size == entry.size):
            try:
                sha256 = file_sha256(entry.path)
            except OSError as e:
                self.unreadable(entry, e)
                return None
            if known is not None and known.sha256 == sha256:
                with store.transaction():
                    store.touch(known, entry)
                if self.done(known, orientation):
                    summary.unchanged += 1
                    return None
            elif known is None:
                reused = self.reuse_twin(entry, sha256, twins)
                if reused is not None and store.has_fingerprint(reused, self.key):
                    return None
        same = known is not None and known.sha256 == sha256  # same content: a stale mtime
        return DecodeRequest(
            entry.path,
            entry.size,
            entry.mtime,
            input_size,
            sha256,
            preview_size=self.options.previews,
            fingerprint=not (same and self.fingerprinted(known, orientation)),
        )

    def classify_stand_in(self, entry: MissingOriginal) -> DecodeRequest | None:
        """Like :meth:`classify` for a photo known only by its preview (nothing to move or copy)."""
        known = self.store.image_at(entry.path)
        if known is not None and known.size == entry.size and known.mtime == entry.mtime and self.done(known):
            self.summary.unchanged += 1
            return None
        return DecodeRequest(
            entry.path,
            entry.size,
            entry.mtime,
            self.architecture.input_size,
            preview=entry.preview,
            original_missing=True,
            preview_size=self.options.previews,
        )

    def done(self, image: KnownImage, orientation: int | None = None) -> bool:
        """Nothing to decode: it has the fingerprint asked for, turned the way the catalog says, its quality
        signals and the preview asked for (``--previews``): photos imported before get those two."""
        return (
            self.fingerprinted(image, orientation)
            and self.store.has_signals(image.id)
            and not (self.options.previews and not self.store.has_preview(image.id))
        )

    def fingerprinted(self, image: KnownImage, orientation: int | None = None) -> bool:
        """Its fingerprint stands: decoded again for what else it lacks, it is not fingerprinted again."""
        return self.store.has_fingerprint(image.id, self.key) and not (
            orientation and image.needs_rotation(orientation)
        )

    def reuse_twin(self, entry: FileEntry, sha256: str, twins: list[KnownImage]) -> int | None:
        """Take over (moved file) or copy (duplicate file) a known photo with this content.

        Returns the id of the row now at ``entry.path``, or None if no known photo
        has this content. The caller still decodes it if the row lacks the
        fingerprint asked for.
        """
        same = [t for t in twins if t.sha256 == sha256]
        if not same:
            return None
        with self.store.transaction():
            for twin in same:
                if not os.path.exists(twin.path):
                    self.store.move(twin, entry)
                    self.summary.moved += 1
                    return twin.id
            self.summary.copied += 1
            return self.store.copy(same[0], entry)

    def unreadable(self, entry: FileEntry, error: OSError) -> None:
        self.record(Problem(entry.path, "read", f"cannot read: {error.strerror or error}", entry.size, entry.mtime))

    def record(self, problem: Problem) -> None:
        with self.store.transaction():
            self.store.record_problem(problem)
        self.summary.failed += 1

    # -- decoding, fingerprinting, storing ----------------------------------

    def fingerprint(self, todo: list[DecodeRequest]) -> None:
        """Decode and fingerprint here or on Dask's workers; store each batch in one transaction."""
        if todo:
            for batch, vectors, problems in self.on_dask(todo) if self.options.dask else self.here(todo):
                self.store_batch(batch, vectors, problems)

    def here(self, todo: list[DecodeRequest]) -> Iterator[tuple[list[Decoded], np.ndarray, list[Problem]]]:
        """Decoded in this machine's worker processes, fingerprinted in this process, a batch at a time."""
        batch: list[Decoded] = []
        problems: list[Problem] = []
        fingerprinting = any(request.fingerprint for request in todo)  # else no model is loaded
        size = self.options.batch_size or (self.model().device if fingerprinting else devices.CPU).batch_size
        for result in decode_all(todo, self.options.workers, ahead=2 * size):
            if isinstance(result, Problem):
                problems.append(result)
            else:
                batch.append(result)
            if len(batch) >= size or len(problems) >= 256:
                yield batch, self.vectors(batch), problems
                batch, problems = [], []
        yield batch, self.vectors(batch), problems

    def on_dask(self, todo: list[DecodeRequest]) -> Iterator[tuple[list[Decoded], np.ndarray, list[Problem]]]:
        """Decoded and fingerprinted on a Dask cluster's workers, each building the model once."""
        options = self.options
        spec = workers.ModelSpec(
            options.model,
            options.layer,
            options.weights if options.weights in ("imagenet", "none") else self.weights.source,
            options.seed,
            options.device,
            options.precision,
        )
        with workers.client(options.dask) as connection:
            count = len(connection.scheduler_info()["workers"])
            size = options.batch_size or devices.CPU.batch_size
            for done in workers.fingerprint_on(connection, todo, spec, size):
                if done.identity != self.key.weights:
                    raise ImportFailed(
                        f"a Dask worker's model has the weights {done.identity}, not {self.key.weights}: "
                        "give the workers the same weights file at the same path"
                    )
                self.summary.model_loaded = True
                self.summary.device = f"{done.device} of {count} Dask worker{'s' if count > 1 else ''}"
                problems = [r for r in done.results if isinstance(r, Problem)]
                yield [r for r in done.results if not isinstance(r, Problem)], done.vectors, problems

    def model(self) -> Fingerprinter:
        """The model on its device (loaded on first use, once per process)."""
        options = self.options
        fingerprinter = load_fingerprinter(
            self.architecture, options.layer, self.weights, options.seed, options.device, options.precision
        )
        self.summary.model_loaded = True
        self.summary.device = fingerprinter.where()
        return fingerprinter

    def vectors(self, batch: list[Decoded]) -> np.ndarray:
        """The batch's fingerprints; rows of photos whose fingerprint stands are zeros (not stored), and a batch
        of those alone loads no model."""
        wanted = [i for i, item in enumerate(batch) if item.fingerprint]
        if not wanted:
            return np.zeros((len(batch), 0), np.float32)
        computed = self.model()(np.stack([batch[i].pixels for i in wanted]))
        if len(wanted) == len(batch):
            return computed
        vectors = np.zeros((len(batch), computed.shape[1]), computed.dtype)
        vectors[wanted] = computed
        return vectors

    def store_batch(self, batch: list[Decoded], vectors: np.ndarray, problems: list[Problem]) -> None:
        """Store a fingerprinted batch with its problems, in one transaction.

        A fingerprint with NaN or infinite values (16-bit arithmetic can
        overflow) is a problem, not a row: every distance to it would be
        undefined. The problem has no size and mtime, so the next run tries
        the photo again: the file is not at fault.
        """
        finite = np.isfinite(vectors).all(axis=1)  # an empty batch's vectors are 0 x 0: none
        if not finite.all():
            advice = ": import it with --precision float32" if self.options.precision == "mixed" else ""
            message = f"the model gave NaN or infinite values for it{advice}"
            problems = problems + [Problem(item.path, "fingerprint", message) for item in compress(batch, ~finite)]
            batch, vectors = list(compress(batch, finite)), vectors[finite]
        store, summary = self.store, self.summary
        with store.transaction():
            for item, vector in zip(batch, vectors):
                fingerprint = encode(vector) if item.fingerprint else None
                self.metadata.decoded(item.path, store.write_decoded(item, self.key, fingerprint))
            for problem in problems:
                store.record_problem(problem)
        summary.imported += len(batch)
        summary.refreshed += sum(1 for item in batch if not item.fingerprint)
        summary.exif_warnings += sum(1 for item in batch if item.capture.error)
        summary.from_previews += sum(1 for item in batch if item.pixels_from == "lightroom-preview")
        summary.failed += len(problems)
        self.progress.advance(len(batch) + len(problems))

    # -- what is gone ---------------------------------------------------------

    def find_vanished(self, roots: list[str]) -> None:
        gone: list[tuple[int, str]] = []
        for root in roots:
            root = os.path.abspath(root)
            if not os.path.isdir(root):
                continue
            gone.extend(
                (image_id, path) for image_id, path in self.store.images_under(root) if not os.path.exists(path)
            )
        self.summary.vanished = [path for _, path in gone]
        if self.options.prune and gone:
            with self.store.transaction():
                self.store.delete_images([image_id for image_id, _ in gone])
            self.summary.pruned = len(gone)


class CatalogMetadata:
    """A catalog's metadata on its way into the database, beside the files' own rows."""

    def __init__(self, store: Store, catalog: Catalog | None):
        self.store = store
        self.catalog = catalog
        self.waiting: dict[str, CatalogPhoto] = {}  # path -> metadata of photos still to decode
        self.ready: list[tuple[int, CatalogPhoto]] = []  # (image id, metadata) to write
        self.seen: set[str] = set()
        self.leaders: dict[str, str] = {}
        # catalog id -> (image id, path) of the rows earlier imports of this catalog made
        self.rows = (
            {catalog_id: (image_id, path) for image_id, catalog_id, path in store.catalog_rows(catalog.path)}
            if catalog
            else {}
        )

    def saw(self, photo: CatalogPhoto) -> None:
        """The catalog still has this photo (imported, unchanged or missing): not vanished."""
        self.seen.add(photo.catalog_id)
        if photo.group_leader:
            self.leaders[photo.catalog_id] = photo.group_leader

    def follow(self, photo: CatalogPhoto, path: str) -> None:
        """The catalog now puts this photo at ``path`` (a new --root-map, a moved library, its original
        found again): its row moves there, or gives way to the row already there."""
        image_id, old_path = self.rows.get(photo.catalog_id, (None, path))
        if old_path == path:
            return
        with self.store.transaction():
            if self.store.image_at(path) is None:
                self.store.relocate(image_id, path)
            else:
                self.store.delete_images([image_id])

    def wait(self, path: str, photo: CatalogPhoto) -> None:
        """Its row is written once it is decoded: see decoded()."""
        self.waiting[path] = photo

    def has_row(self, image_id: int, photo: CatalogPhoto) -> None:
        self.ready.append((image_id, photo))
        if len(self.ready) >= 500:
            with self.store.transaction():
                self.write_ready()

    def write_ready(self) -> None:
        require_transaction(self.store.conn)
        for image_id, photo in self.ready:
            self.store.write_catalog(image_id, self.catalog.source, self.catalog.path, photo)
        self.ready.clear()

    def decoded(self, path: str, image_id: int) -> None:
        """After the photo's row was written, in the same transaction."""
        require_transaction(self.store.conn)
        photo = self.waiting.pop(path, None)
        if photo is not None:
            self.store.write_catalog(image_id, self.catalog.source, self.catalog.path, photo)

    def finish_catalog(self, prune: bool, summary: ImportSummary) -> None:
        gone = [
            (image_id, path)
            for image_id, catalog_id, path in self.store.catalog_rows(self.catalog.path)
            if catalog_id not in self.seen
        ]
        summary.vanished = [path for _, path in gone]
        with self.store.transaction():
            self.write_ready()
            self.store.link_groups(self.catalog.path, self.leaders)
            if prune and gone:
                self.store.delete_images([image_id for image_id, _ in gone])
                summary.pruned = len(gone)


@dataclass(frozen=True)
class MissingOriginal:
    """A catalog photo whose original is gone but whose catalog preview is there."""

    path: str  # the original's
    size: int  # the preview's, like mtime: what tells whether it changed
    mtime: float
    preview: Preview


Entry = FileEntry | MissingOriginal | Problem


def _catalog_entries(catalog: Catalog) -> Iterator[tuple[Entry, CatalogPhoto]]:
    """The catalog's photos as files, previews standing in for missing originals, or problems."""
    for photo in catalog.photos():
        if photo.leaves_root:
            yield (
                Problem(
                    display_path(photo.path),
                    "read",
                    f"its folder leaves the catalog's root ({catalog.source} id {photo.catalog_id}): not imported",
                    catalog=catalog.path,
                ),
                photo,
            )
            continue
        try:
            st = os.stat(photo.path)
        except FileNotFoundError:
            preview = catalog.preview(photo)
            try:
                found = preview is not None and os.stat(preview.path)
            except OSError:
                found = None
            if found:
                yield MissingOriginal(photo.path, found.st_size, found.st_mtime, preview), photo
            else:
                yield (
                    Problem(
                        display_path(photo.path),
                        "read",
                        f"original not found ({catalog.source} id {photo.catalog_id})",
                        catalog=catalog.path,
                    ),
                    photo,
                )
            continue
        except OSError as e:
            yield (
                Problem(display_path(photo.path), "read", f"cannot read: {e.strerror or e}", catalog=catalog.path),
                photo,
            )
            continue
        if not stat.S_ISREG(st.st_mode):
            yield Problem(display_path(photo.path), "read", "not a regular file", catalog=catalog.path), photo
        else:
            yield FileEntry(photo.path, st.st_size, st.st_mtime), photo


def _init_worker(parent_pid: int) -> None:
    """Leave Ctrl-C to the parent, and exit if the parent dies (e.g. SIGKILL)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def watch_parent() -> None:
        while os.getppid() == parent_pid:
            time.sleep(1)
        os._exit(0)

    threading.Thread(target=watch_parent, daemon=True).start()


def decode_all(requests: Iterable[DecodeRequest], workers: int, ahead: int = 64) -> Iterator[Decoded | Problem]:
    """Decode in order, in ``workers`` processes with at most ``ahead`` files in flight.

    Workers are spawned, never forked: the parent may already hold
    TensorFlow's threads, which a fork would copy in an undefined state.
    """
    if workers <= 0:
        for request in requests:
            yield decode(request)
        return
    pool = ProcessPoolExecutor(
        workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_init_worker,
        initargs=(os.getpid(),),
    )
    try:
        it = iter(requests)
        pending = deque(pool.submit(decode, r) for _, r in zip(range(max(ahead, workers)), it))
        while pending:
            future = pending.popleft()
            try:
                result = future.result()
            except BrokenProcessPool:
                raise ImportFailed(
                    "a decoder process died (out of memory?); photos imported so far are kept: "
                    "run the same command again to continue, with --workers 0 to find the file"
                ) from None
            yield result
            following = next(it, None)
            if following is not None:
                pending.append(pool.submit(decode, following))
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
