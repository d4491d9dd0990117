"""The clustering API: one object over a database, shared by the CLI, the plugin's pages and its SQL functions.

As llm's ``Collection`` serves both llm's CLI and its Python users, :class:`Photos`
is how every caller clusters a library::

    photos = Photos.open("photos.db")
    clustering = photos.cluster(sim=0.6)            # parameters not given: configured, tuned, shipped
    clustering.clusters                              # [[image id, ...], ...], largest first
    photos.similar(42, k=8)                          # [(image id, distance), ...]
    photos.save_clustering("trips", clustering)      # needs Photos.open(path, write=True)
    photos.clustering("trips")                       # what was saved

Every clustering honours the stored verdicts (``imagecluster verdict``):
photos marked ``different`` never share a cluster, photos marked ``same``
always do (:mod:`.constraints`).

Reading is split from computing so the plugin can build trees off its event
loop: :meth:`Photos.choose` reads everything one clustering needs in one
read transaction and returns a :class:`Selection`; the selection clusters
through the shared caches of :mod:`.trees` without touching the database.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import sqlite_utils

from . import saved
from .changes import Diff, diff
from .clustering import Result, Tree, cut_tree, group
from .connections import connect_read_only, nested_read_transaction, read_transaction, tables
from .constraints import Constraints
from .fingerprints import FingerprintSet, Library, choose_set, fingerprint_sets
from .parameters import Chosen, ClusterError, NotFoundError, Params, choose_params, tuned
from .quality import Score, flat_clusters
from .results import params_json, result_json
from .schema import IMAGES, SchemaError, ensure_schema, schema_version
from .subsets import run_subset
from .trees import (
    build_and_cache,
    cached_tree,
    constraints_for,
    library_for,
    nearest,
    numbers_for,
    scale_for,
    tree_key,
    user_labels_for,
)

SET_NAMES = ("model", "layer", "weights")


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

    def json(self) -> dict[str, Any]:
        """The shape the CLI's ``--json`` and the plugin's ``.json`` share (:func:`.results.result_json`)."""
        return result_json(self.result, self.selection.library)

    def agreement(self) -> tuple[str, Score] | None:
        """How well the clusters agree with the database's own labels (read by ``choose(labels=True)``)."""
        if self.selection.labels is None:
            return None
        described, index = self.selection.labels
        return described, index.score(flat_clusters(cut_tree(self.tree, self.params.sim), self.params.min_csize))


@dataclass(frozen=True)
class Selection:
    """What one clustering reads, from one snapshot of the database: the fingerprint sets, the chosen
    set's library (all of it, or a subset) and the parameters with their origin."""

    sets: list[FingerprintSet]
    key: tuple  # the library's cache key (database file, signature, set, subset)
    library: Library
    chosen: Chosen
    constraints: Constraints = Constraints()  # the verdicts, as positions in the library
    labels: tuple[str, Any] | None = None  # the database's labels, when asked for
    reuse: bool = True  # keep what makes a later clustering at another alpha quicker (Photos' reuse)
    scale: float | None = None  # the content scale of absolute distances (:func:`.trees.scale_for`)

    @property
    def params(self) -> Params:
        return self.chosen.params

    @property
    def fingerprint_set(self) -> FingerprintSet:
        return self.library.fingerprint_set

    @property
    def tree_key(self) -> tuple:
        return tree_key(self.key, self.params, self.constraints, self.scale)

    def cached_tree(self) -> Tree | None:
        """The cached tree, if one can be cut at these parameters' sim."""
        return cached_tree(self.tree_key, self.params)

    def tree(self) -> Tree:
        """The tree for these parameters: cached, or built here and cached (the slow step)."""
        return self.cached_tree() or build_and_cache(
            self.tree_key, self.library, self.params, self.constraints, reuse=self.reuse, scale=self.scale
        )

    def cluster(self, tree: Tree | None = None) -> Clustering:
        """Cut the tree at ``sim`` and keep clusters of at least ``min_csize`` photos."""
        tree = tree or self.tree()
        lib = self.library
        return Clustering(self, tree, group(cut_tree(tree, self.params.sim), lib.ids, lib.timestamps, self.params))

    def numbers(self, tree: Tree | None = None) -> dict[int, int]:
        """``{image id: cluster number}`` for photos in clusters, numbered from 1 as reported (cached)."""
        return numbers_for(self.tree_key, self.params, lambda: self.cluster(tree).clusters)

    def similar(self, image_id: int, k: int) -> list[tuple[int, float]]:
        """The k photos nearest to one photo of the library, by euclidean fingerprint distance."""
        return nearest(self.library, image_id, k)


class Photos:
    """The photos of one imagecluster database, for clustering.

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
        time_limit_ms: int | None = None,
        inside_statement: bool = False,
        reuse: bool = True,
    ):
        self.conn = conn
        self.reuse = reuse
        self.configured = {k: v for k, v in (configured or {}).items() if v is not None and v != ""}
        self.time_limit_ms = time_limit_ms
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

    def fingerprint_sets(self) -> list[FingerprintSet]:
        """Every fingerprint set in the database, the largest first."""
        with self._transaction(self.conn):
            return fingerprint_sets(self.conn)

    def _choose_set(self, sets: list[FingerprintSet], chosen: Mapping[str, str | None]) -> FingerprintSet:
        if not sets:
            raise NotFoundError("There are no fingerprints in this database: run 'imagecluster import' first")
        return choose_set(sets, *(chosen.get(k) or self.configured.get(k) for k in SET_NAMES))

    def choose(
        self,
        *,
        model: str | None = None,
        layer: str | None = None,
        weights: str | None = None,
        sql: str | None = None,
        subset: Iterable[int] | None = None,
        labels: bool = False,
        **given: Any,
    ) -> Selection:
        """Read what one clustering needs, in one read transaction.

        ``model``/``layer``/``weights`` choose the fingerprint set (default:
        the configured one, else the largest); ``sql`` (a SELECT whose first
        column is image ids, checked and run as core runs ``?sql=``) or
        ``subset`` (ids) restrict the photos; ``given`` holds clustering
        parameters (``sim``, ``alpha``, ...); those left out come from the
        configuration, the tuned parameters, then the shipped defaults.
        ``labels`` also reads the database's labels, for :meth:`Clustering.agreement`.
        """
        with self._transaction(self.conn):
            ids = frozenset(subset) if subset is not None else None
            if sql:
                ids = run_subset(self.conn, sql, self.time_limit_ms)
            sets = fingerprint_sets(self.conn)
            fingerprint_set = self._choose_set(sets, {"model": model, "layer": layer, "weights": weights})
            key, library = library_for(self.conn, fingerprint_set, ids)
            chosen = choose_params(given, self.configured, tuned(self.conn, fingerprint_set))
            constraints = constraints_for(self.conn, key, library)
            found = user_labels_for(self.conn, key, library) if labels else None
            scale = scale_for(self.conn, fingerprint_set, chosen.params)
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

    def save_clustering(self, name: str, clustering: Clustering) -> saved.Saved:
        """Store a clustering as the next version of ``name``; clusters that persist keep their numbers
        (:mod:`.saved`). Needs ``open(write=True)``."""
        result = clustering.result
        params = params_json(result, clustering.selection.fingerprint_set)
        return saved.save(self.conn, name, params, result.n_images, clustering.clusters)

    def clusterings(self) -> list[str]:
        """The names of the saved clusterings."""
        with self._transaction(self.conn):
            return saved.names(self.conn)

    def clustering(self, name: str, version: int | None = None) -> saved.Saved:
        """A saved clustering (its latest version, or the one asked for) with its members;
        NotFoundError naming the saved ones if there is none."""
        with self._transaction(self.conn):
            if version is None:
                return saved.load(self.conn, name)
            return saved.load_version(self.conn, name, version)

    def diff(self, name: str) -> Diff:
        """What changed between the last two saves of a clustering; NotFoundError if it was saved once."""
        with self._transaction(self.conn):
            found = saved.versions(self.conn, name)
            if len(found) < 2:
                saved.load(self.conn, name)  # NotFoundError naming the saved ones, if it was never saved
                raise NotFoundError(f"clustering {name!r} was saved once: save it again to see what changed")
            return diff(saved.load_version(self.conn, name, found[-2]), saved.load_version(self.conn, name, found[-1]))
