"""The Python API: :class:`Photos`, one object over a database, shared by the CLI, the plugin and Python users.

As llm's ``Collection`` serves both llm's CLI and its Python users::

    photos = Photos.open("photos.db")
    clustering = photos.cluster(sim=0.6)            # parameters not given: configured, tuned, shipped
    clustering.clusters                              # [[image id, ...], ...], largest first
    photos.similar(42, k=8)                          # [(image id, distance), ...]
    photos.save_clustering("trips", clustering)      # needs Photos.open(path, write=True)
    photos.record_verdict("different", [12, 13])     # every later clustering keeps them apart
    photos.keepers(clustering)                       # each cluster's duplicates, bursts and keeper, and why
    photos.save_tuned(photos.tune())                 # parameters fitted to the labels it finds

Reading is split from computing so the plugin can build trees off its event
loop: :meth:`Photos.choose` reads what one clustering needs in one read
transaction and returns a :class:`Selection`, which clusters through the
shared caches without touching the database. The engine and the caches load
on first use, so a command that only parses its options starts fast.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

from .engine.parameters import (  # noqa: F401 (the parameters' vocabulary, as the CLI and Python users name it)
    DEFAULTS,
    DISTANCES,
    METHODS,
    METRICS,
    NAMES,
    SHIPPED,
    Chosen,
    Params,
    choose_params,
    describe,
    format_duration,
    parse_duration,
    parse_pca,
)
from .errors import ClusterError, LabelError, NotFoundError, SchemaError
from .library.connections import connect_read_only, nested_read_transaction, read_transaction, tables
from .library.known_labels import BUILT_IN  # noqa: F401 (the label sources tune reads, by name)
from .library.schema import IMAGES, ensure_schema, schema_version

if TYPE_CHECKING:
    from .engine.clustering import Result, Tree
    from .engine.constraints import Constraints
    from .engine.labels import Labels
    from .engine.quality import Score, Tuning
    from .library.changes import Diff
    from .library.fingerprints import FingerprintSet, Library
    from .library.keepers import ClusterKeepers
    from .library.saved import Saved

SET_NAMES = ("model", "layer", "weights")  # what names a fingerprint set
# A subset of the photos: their ids, or a function reading them inside the selection's read transaction.
Subset = Iterable[int] | Callable[[sqlite3.Connection], Iterable[int]]


def on_dask(client) -> AbstractContextManager[None]:
    """Inside it, a large library's pass and its large components run on this Dask client's workers."""
    from .engine.components import on_dask

    return on_dask(client)


@dataclass(frozen=True)
class Clustering:
    """One cut clustering of a selection: its tree, its clusters and where its parameters came from."""

    selection: Selection
    tree: Tree
    result: Result

    @property
    def params(self) -> Params:
        return self.selection.params

    @cached_property
    def clusters(self) -> list[list[int]]:
        """Clusters of image ids as plain ints: largest first, then earliest, members by time."""
        return [[int(i) for i in members] for members in self.result.clusters]

    def params_json(self) -> dict[str, Any]:
        """The parameters with the fingerprint set they clustered: what a saved clustering records."""
        s = self.selection.fingerprint_set
        return {**self.result.params.as_dict(), "model": s.model, "layer": s.layer, "weights": s.weights}

    def json(self) -> dict[str, Any]:
        """``{"params", "n_images", "n_clustered", "stats", "clusters": [{"size", "images"}]}``: the CLI's
        ``--json`` and the plugin's ``.json``. The photos' details come from the library the clustering was
        made from, never from a later read."""
        result = self.result
        details = self.selection.library.details([i for members in self.clusters for i in members])
        return {
            "params": self.params_json(),
            "n_images": result.n_images,
            "n_clustered": result.n_clustered,
            "stats": [{"size": size, "clusters": count} for size, count in result.stats()],
            "clusters": [{"size": len(members), "images": [details[i] for i in members]} for members in self.clusters],
        }

    def agreement(self) -> tuple[str, Score] | None:
        """How well the clusters agree with the database's own labels (read by ``choose(labels=True)``)."""
        from .engine.clustering import cut_tree
        from .engine.quality import flat_clusters

        if self.selection.labels is None:
            return None
        described, index = self.selection.labels
        return described, index.score(flat_clusters(cut_tree(self.tree, self.params.sim), self.params.min_csize))


@dataclass(frozen=True)
class Selection:
    """What one clustering reads, from one snapshot of the database: the fingerprint sets, the chosen
    set's library (all of it, or a subset), the parameters with their origin and the verdicts."""

    sets: list[FingerprintSet]
    key: tuple  # the library's cache key (database file, signature, set, subset)
    library: Library
    chosen: Chosen
    constraints: Constraints  # the verdicts, as positions in the library
    labels: tuple[str, Any] | None = None  # the database's labels, when asked for
    reuse: bool = True  # keep what makes a later clustering at another alpha quicker (Photos' reuse)
    scale: float | None = None  # the content scale of absolute distances (:func:`.library.caches.scale_for`)

    @property
    def params(self) -> Params:
        return self.chosen.params

    @property
    def fingerprint_set(self) -> FingerprintSet:
        return self.library.fingerprint_set

    @property
    def tree_key(self) -> tuple:
        from .library import caches

        return caches.tree_key(self.key, self.params, self.constraints, self.scale)

    def cached_tree(self) -> Tree | None:
        """The cached tree, if one can be cut at these parameters' sim."""
        from .library import caches

        return caches.cached_tree(self.tree_key, self.params)

    def tree(self) -> Tree:
        """The tree for these parameters: cached, or built here and cached (the slow step)."""
        from .library import caches

        return self.cached_tree() or caches.build_and_cache(
            self.tree_key, self.library, self.params, self.constraints, reuse=self.reuse, scale=self.scale
        )

    def cluster(self, tree: Tree | None = None) -> Clustering:
        """Cut the tree at ``sim`` and keep clusters of at least ``min_csize`` photos."""
        from .engine.clustering import cut_tree, group

        tree = tree or self.tree()
        lib = self.library
        return Clustering(self, tree, group(cut_tree(tree, self.params.sim), lib.ids, lib.timestamps, self.params))

    def numbers(self, tree: Tree | None = None) -> dict[int, int]:
        """``{image id: cluster number}`` for photos in clusters, numbered from 1 as reported (cached)."""
        from .library import caches

        return caches.numbers_for(self.tree_key, self.params, lambda: self.cluster(tree).clusters)

    def similar(self, image_id: int, k: int) -> list[tuple[int, float]]:
        """The k photos nearest to one photo of the library, by euclidean fingerprint distance."""
        from .library import caches

        return caches.nearest(self.library, image_id, k)

    def cosines(self, image_id: int, others: list[int]) -> dict[int, float]:
        """The cosine similarity of one photo's fingerprint to each of ``others``."""
        from .library import caches

        return caches.cosines(self.library, image_id, others)


@dataclass
class TuneResult:
    """What :meth:`Photos.tune` found: the search, the labels it scored against, and the defaults it started from."""

    fingerprint_set: FingerprintSet
    tuning: Tuning
    labels: Labels
    singletons: int  # label groups of one photo (each says that photo belongs with no other labelled photo)
    defaults: Params
    at_defaults: Score

    @property
    def params(self) -> Params:
        """The chosen parameters."""
        return self.tuning.best[0].params(self.defaults)


class Photos:
    """The photos of one imagecluster database: cluster, find similar photos, save, tune, record verdicts.

    ``configured`` holds defaults that outrank the database's tuned
    parameters (the plugin's configuration): clustering parameters and the
    fingerprint set's ``model``, ``layer`` and ``weights``. ``inside_statement``
    is for SQL functions, whose reads join the statement that calls them.
    ``reuse`` (the default, for the plugin and long-lived Python users) keeps
    each library's screening, so a clustering at another alpha skips most of
    the work, at the price of a dearer first one; a one-off command turns it off.
    """

    def __init__(
        self,
        conn: sqlite3.Connection,
        configured: Mapping[str, Any] | None = None,
        *,
        inside_statement: bool = False,
        reuse: bool = True,
    ):
        self.conn = conn
        self.reuse = reuse
        self.configured = {k: v for k, v in (configured or {}).items() if v is not None and v != ""}
        self._transaction = nested_read_transaction if inside_statement else read_transaction

    @classmethod
    def open(
        cls, path: str, write: bool = False, configured: Mapping[str, Any] | None = None, *, reuse: bool = True
    ) -> Photos:
        """The database at ``path`` (read-only unless ``write``); ClusterError, in words, if it isn't one."""
        try:
            conn = sqlite3.connect(path, timeout=10) if write else connect_read_only(path)
            version = schema_version(conn)
            if write and version:
                import sqlite_utils

                ensure_schema(sqlite_utils.Database(conn))  # saving may need the newest tables
            has_images = IMAGES in tables(conn)
        except FileNotFoundError:
            raise NotFoundError(f"{path} does not exist") from None
        except sqlite3.DatabaseError as e:
            raise ClusterError(f"{path} is not a readable SQLite database ({e})") from None
        except SchemaError as e:
            raise ClusterError(str(e)) from None
        if version == 0 or not has_images:
            conn.close()
            raise ClusterError(f"{path} is not an imagecluster database: run 'imagecluster import {path} PATH' first")
        return cls(conn, configured, reuse=reuse)

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Photos:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- clustering ---------------------------------------------------------------------------------------

    def fingerprint_sets(self) -> list[FingerprintSet]:
        """Every fingerprint set in the database, the largest first."""
        from .library.fingerprints import fingerprint_sets

        with self._transaction(self.conn):
            return fingerprint_sets(self.conn)

    def _choose_set(self, sets: list[FingerprintSet], chosen: Mapping[str, str | None]) -> FingerprintSet:
        from .library.fingerprints import choose_set

        if not sets:
            raise NotFoundError("There are no fingerprints in this database: run 'imagecluster import' first")
        return choose_set(sets, *(chosen.get(k) or self.configured.get(k) for k in SET_NAMES))

    def choose(
        self,
        *,
        model: str | None = None,
        layer: str | None = None,
        weights: str | None = None,
        subset: Subset | None = None,
        labels: bool = False,
        **given: Any,
    ) -> Selection:
        """Read what one clustering needs, in one read transaction.

        ``model``/``layer``/``weights`` choose the fingerprint set (default:
        the configured one, else the largest); ``subset`` restricts the photos
        (ids, or a function that reads them on this connection in this
        transaction, as the plugin runs ``?sql=``); ``given`` holds clustering
        parameters (``sim``, ``alpha``, ...); those left out come from the
        configuration, the tuned parameters, then the shipped defaults.
        ``labels`` also reads the database's labels, for :meth:`Clustering.agreement`.
        """
        from .library import caches
        from .library.fingerprints import fingerprint_sets
        from .library.tuned import tuned

        with self._transaction(self.conn):
            ids = None
            if subset is not None:
                ids = frozenset(subset(self.conn) if callable(subset) else subset)
            sets = fingerprint_sets(self.conn)
            fingerprint_set = self._choose_set(sets, {"model": model, "layer": layer, "weights": weights})
            key, library = caches.library_for(self.conn, fingerprint_set, ids)
            chosen = choose_params(given, self.configured, tuned(self.conn, fingerprint_set))
            constraints = caches.constraints_for(self.conn, key, library)
            found = caches.user_labels_for(self.conn, key, library) if labels else None
            scale = caches.scale_for(self.conn, fingerprint_set, chosen.params)
        return Selection(sets, key, library, chosen, constraints, found, self.reuse, scale)

    def cluster(self, **options: Any) -> Clustering:
        """Choose (see :meth:`choose`) and cluster, in this thread."""
        return self.choose(**options).cluster()

    def choose_photo(self, image_id: int, **options: Any) -> Selection:
        """:meth:`choose` for one photo's neighbours; NotFoundError if the photo or its fingerprint isn't there."""
        selection = self.choose(**options)
        if image_id not in selection.library.ids:
            with self._transaction(self.conn):
                exists = self.conn.execute(f"select 1 from {IMAGES} where id = ?", (image_id,)).fetchone()
            if exists is None:
                raise NotFoundError(f"Record not found: {image_id}")
            raise NotFoundError(f"Photo {image_id} has no fingerprint in {selection.fingerprint_set.label}")
        return selection

    def similar(self, image_id: int, k: int = 8, **options: Any) -> list[tuple[int, float]]:
        """The k photos most like one photo, nearest first; NotFoundError for a photo not there."""
        return self.choose_photo(image_id, **options).similar(image_id, k)

    # -- saved clusterings --------------------------------------------------------------------------------

    def save_clustering(self, name: str, clustering: Clustering) -> Saved:
        """Store a clustering as the next version of ``name``; clusters that persist keep their numbers
        (:mod:`.library.saved`). Needs ``open(write=True)``."""
        from .library import keepers, saved

        result = clustering.result
        # Read where the write will be (1.0a's execute_write_fn holds a transaction open: it is joined).
        selection, numbered = self._numbered(clustering)
        found = keepers.analyse(self.conn, selection.library, selection.params, selection.scale, numbered)
        roles = keepers.roles(found)
        return saved.save(self.conn, name, clustering.params_json(), result.n_images, clustering.clusters, roles)

    def clusterings(self) -> list[str]:
        """The names of the saved clusterings."""
        from .library import saved

        with self._transaction(self.conn):
            return saved.names(self.conn)

    def clustering(self, name: str, version: int | None = None) -> Saved:
        """A saved clustering (its latest version, or the one asked for) with its members;
        NotFoundError naming the saved ones if there is none."""
        from .library import saved

        with self._transaction(self.conn):
            if version is None:
                return saved.load(self.conn, name)
            return saved.load_version(self.conn, name, version)

    def diff(self, name: str) -> Diff:
        """What changed between the last two saves of a clustering; NotFoundError if it was saved once."""
        from .library import saved
        from .library.changes import diff

        with self._transaction(self.conn):
            found = saved.versions(self.conn, name)
            if len(found) < 2:
                saved.load(self.conn, name)  # NotFoundError naming the saved ones, if it was never saved
                raise NotFoundError(f"clustering {name!r} was saved once: save it again to see what changed")
            return diff(saved.load_version(self.conn, name, found[-2]), saved.load_version(self.conn, name, found[-1]))

    # -- verdicts -----------------------------------------------------------------------------------------

    def record_verdict(
        self, verdict: str, image_ids: Iterable[int], apart_from: Iterable[int] | None = None
    ) -> list[tuple[str, str, str | None, str | None]]:
        """Record what the user says about photos, by their content (``same``, ``different`` or ``forget``:
        :mod:`.library.verdicts`); with ``apart_from``, the one photo in ``image_ids`` differs from each of
        those ("not this one"). What the pairs held before, for :meth:`undo_verdict`. LabelError for a
        verdict that can't stand; needs ``open(write=True)``."""
        from .library import verdicts

        ids = tuple(image_ids)
        if apart_from is not None:
            if verdict != "different" or len(ids) != 1:
                raise LabelError("'not this one' sets exactly one photo apart from the others")
            pairs = verdicts.not_with(self.conn, ids[0], list(apart_from))
        else:
            pairs = verdicts.verdict_pairs(self.conn, verdict, ids)
        return verdicts.record(self.conn, verdict, pairs)

    def undo_verdict(self, previous: list[tuple[str, str, str | None, str | None]]) -> None:
        """Put the pairs a :meth:`record_verdict` changed back as they were; needs ``open(write=True)``."""
        from .library import verdicts

        verdicts.restore(self.conn, previous)

    # -- keepers ----------------------------------------------------------------------------------------------

    def keepers(self, clustering: Clustering | str) -> list[ClusterKeepers]:
        """Each cluster's duplicate tiers, the keeper of each of its groups and of the cluster with the reason in
        words, and what holds it together (:mod:`.library.keepers`); of a clustering, or of the latest version of
        one saved under this name (its photos still imported)."""
        from .library import keepers

        selection, numbered = self._numbered(clustering)
        with self._transaction(self.conn):
            return keepers.analyse(self.conn, selection.library, selection.params, selection.scale, numbered)

    def _numbered(self, clustering: Clustering | str) -> tuple[Selection, list[tuple[int, list[int]]]]:
        """The selection and (number, image ids) of each cluster: a clustering's, numbered from 1, or a saved
        one's, with its numbers, on the fingerprint set and parameters it was saved with."""
        if not isinstance(clustering, str):
            return clustering.selection, list(enumerate(clustering.clusters, 1))
        saved = self.clustering(clustering)
        selection = self.choose(**{k: v for k, v in saved.params.items() if v is not None})
        known = set(selection.library.ids.tolist())
        numbered: dict[int, list[int]] = {}
        for member in saved.members:  # by cluster, then time
            if member.image_id in known:
                numbered.setdefault(member.cluster, []).append(member.image_id)
        return selection, list(numbered.items())

    def choose_keepers(self, clustering: Clustering | str, image_ids: Iterable[int], also: bool = False) -> None:
        """Keep these photos of a clustering's clusters (or a saved one's), by content: each replaces the keeper
        chosen before in its cluster unless ``also``. LabelError for a choice that can't stand; needs
        ``open(write=True)``."""
        from .library import keepers

        keepers.choose(self.conn, self._numbered(clustering)[1], list(image_ids), also=also)

    def forget_keepers(self, image_ids: Iterable[int]) -> int:
        """Drop the choice of these photos as keepers (the suggestion stands again); how many there were."""
        from .library import keepers

        return keepers.forget(self.conn, list(image_ids))

    # -- tuning ---------------------------------------------------------------------------------------------

    def tune(
        self,
        sources: tuple[str, ...] = (),
        *,
        labels_csv: str | None = None,
        labels_table: str | None = None,
        min_precision: float | None = None,
        folds: int = 5,
        methods: tuple[str, ...] = (),
        pcas: tuple = (None,),
        model: str | None = None,
        layer: str | None = None,
        weights: str | None = None,
    ) -> TuneResult:
        """Search the parameters that agree best with the labels (:mod:`.library.known_labels`'s ``sources``,
        every built-in one when none is named, and a CSV or table of groups) for one fingerprint set; the
        defaults in force (chosen with none given) are the search's prior."""
        from .engine.quality import score_params, tune
        from .library.known_labels import gather_labels

        selection = self.choose(model=model, layer=layer, weights=weights)
        with self._transaction(self.conn):
            labels, singletons = gather_labels(self.conn, sources, labels_csv, labels_table)
        library, defaults = selection.library, selection.params
        found = tune(
            library.vectors,
            library.timestamps,
            library.ids,
            labels,
            defaults,
            min_precision=min_precision,
            folds=folds,
            pcas=pcas,
            scale=selection.scale,
            timed=library.timed,
            **({"methods": methods} if methods else {}),
        )
        at_defaults = score_params(
            library.vectors, library.timestamps, library.ids, labels, defaults, selection.scale, library.timed
        )
        return TuneResult(selection.fingerprint_set, found, labels, singletons, defaults, at_defaults)

    def save_tuned(self, result: TuneResult) -> None:
        """Store a tuning's choice as its fingerprint set's defaults (table ``tuned_params``); every
        clustering of that set then uses them where no parameter is given. Needs ``open(write=True)``."""
        from .library.tuned import save_tuned

        tuning = result.tuning
        score = tuning.best[1]
        scores = {
            "labelled_pairs": score.positive_pairs,
            "precision": score.precision,
            "recall": score.recall,
            "f1": score.f1,
            "cv_f1": tuning.cv.f1 if tuning.cv else None,
        }
        save_tuned(self.conn, result.fingerprint_set, result.params.as_dict(), result.labels.describe(), scores)
