"""The plugin's pages: where a clustering becomes gallery cards, JSON and thumbnails.

Every view checks the actor's permissions first, parses request parameters
into validated values (never into SQL), reads everything it needs in one
``db.execute_fn`` inside one read transaction (:mod:`.snapshot`), and builds
trees in a private executor, so the event loop stays free while a large
clustering runs and a concurrent import or prune can't change the data
halfway through a request.
"""

from __future__ import annotations

import asyncio
import hashlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import urlencode

from datasette import Forbidden, NotFound, Response

from .clustering import METHODS, METRICS, ClusterError, Params, cut_tree, group
from .dendrogram import dendrogram_svg
from .fingerprints import FingerprintSet, Library, choose_set, fingerprint_sets, has_fingerprints_table
from .parameters import NAMES as PARAMETER_NAMES
from .parameters import Chosen, choose_params, tuned
from .permissions import can_execute_sql, can_view
from .quality import flat_clusters
from .results import result_json
from .schema import FINGERPRINTS, IMAGES, THUMBNAILS, table_exists
from .snapshot import read_transaction
from .subsets import SubsetError, run_subset
from .trees import cached_tree, library_for, make_tree, nearest, tree_key, trees, user_labels_for

PLUGIN = "datasette-imagecluster"
EXECUTOR = ThreadPoolExecutor(max_workers=2, thread_name_prefix="imagecluster")
# The page's own settings; clustering parameters come from parameters.choose_params.
DEFAULTS = {"page_size": 20, "thumbnails_per_cluster": 24, "wait_seconds": 5}
MAX_PAGE_SIZE = 500


class BadRequest(Exception):
    """A parameter or request the user can fix: answered with 400 and the message."""


class Computing(Exception):
    """A tree is still being built: answered with 202 and a page that refreshes itself."""

    def __init__(self, photos: int):
        super().__init__(
            f"Clustering {photos:,} photos: this takes a while the first time. "
            "This page reloads itself until the clusters are ready."
        )


# Trees being built, by (tree key, sim): concurrent requests wait on one build.
_building: dict[tuple, asyncio.Future] = {}


async def _tree_for(key: tuple, library, params: Params, wait: float):
    """The cached tree, or one built in the executor; Computing if that outlasts ``wait``."""
    tree = cached_tree(key, params)
    if tree is not None:
        return tree
    job = (key, params.sim)
    future = _building.get(job)
    if future is None:
        future = asyncio.get_running_loop().run_in_executor(EXECUTOR, make_tree, library, params)
        _building[job] = future

        def finished(f: asyncio.Future) -> None:
            _building.pop(job, None)
            if not f.cancelled() and f.exception() is None:
                cached = trees.peek(key)
                if cached is None or f.result().valid_from_sim <= cached.valid_from_sim:
                    trees.put(key, f.result())

        future.add_done_callback(finished)
    try:
        return await asyncio.wait_for(asyncio.shield(future), timeout=wait)
    except asyncio.TimeoutError:
        raise Computing(len(library.ids))


def config(datasette, database: str | None = None) -> dict:
    return {**DEFAULTS, **(datasette.plugin_config(PLUGIN, database=database) or {})}


def _int(name: str, value, lo: int, hi: int) -> int:
    try:
        number = int(str(value).strip())
    except ValueError:
        raise BadRequest(f"{name} must be a whole number, not {value!r}")
    if not lo <= number <= hi:
        raise BadRequest(f"{name} must be between {lo} and {hi}")
    return number


@dataclass
class Form:
    given: dict  # clustering parameters in the URL
    configured: dict  # clustering parameters in the plugin's configuration
    model: str | None
    layer: str | None
    weights: str | None
    sql: str
    page: int
    page_size: int
    params: Params | None = None  # once the database's tuned parameters are read

    def query(self, **changes) -> str:
        values = {
            "sim": self.params.sim,
            "alpha": self.params.alpha,
            "method": self.params.method,
            "metric": self.params.metric,
            "min_csize": self.params.min_csize,
            "pca": self.params.pca,
            "model": self.model,
            "layer": self.layer,
            "weights": self.weights,
            "sql": self.sql or None,
            "page": self.page,
        }
        values.update(changes)
        return urlencode({k: v for k, v in values.items() if v is not None and v != ""})


def parse_form(args, settings: dict) -> Form:
    """Request arguments (or the configured defaults) as validated values."""

    def arg(name):
        value = args.get(name)
        return settings.get(name) if value is None or value == "" else value

    given = {name: args.get(name) for name in PARAMETER_NAMES if args.get(name) not in (None, "")}
    configured = {name: settings[name] for name in PARAMETER_NAMES if settings.get(name) is not None}
    try:
        choose_params(given, configured, None)  # every value given is valid before anything is read
    except ClusterError as e:
        raise BadRequest(str(e))
    chosen = {name: args.get(name) or settings.get(name) for name in ("model", "layer", "weights")}
    if args.get("set"):  # the page's fingerprint-set menu: "model|layer|weights"
        parts = args["set"].split("|")
        if len(parts) != 3:
            raise BadRequest("set must be model|layer|weights")
        chosen = dict(zip(("model", "layer", "weights"), parts))
    return Form(
        given=given,
        configured=configured,
        **chosen,
        sql=(args.get("sql") or "").strip(),
        page=_int("page", args.get("page") or 1, 1, 10**9),
        page_size=_int("page_size", arg("page_size"), 1, MAX_PAGE_SIZE),
    )


def _database(datasette, request):
    name = request.url_vars["database"]
    try:
        return datasette.get_database(route=name)
    except KeyError:
        raise NotFound(f"Database not found: {name}")


async def _check_subset(datasette, request, db, sql: str) -> None:
    """``?sql=`` only where core would run this actor's SQL on this database (run_subset checks the SQL)."""
    if sql and not await can_execute_sql(datasette, request.actor, db.name):
        raise Forbidden("You do not have permission to execute SQL on this database")


def _read_library(conn, form: Form, time_limit_ms: int, with_labels: bool):
    """The subset, the fingerprint sets, the chosen library, its parameters and (for the page) the
    user's labels, from one snapshot of the database."""
    with read_transaction(conn):
        try:
            subset = run_subset(conn, form.sql, time_limit_ms) if form.sql else None
        except SubsetError as e:
            raise BadRequest(str(e))
        sets = fingerprint_sets(conn)
        if not sets:
            raise NotFound("There are no fingerprints in this database: run 'imagecluster import' first")
        chosen = choose_set(sets, form.model, form.layer, form.weights)  # the page's menu offers the others
        lib_key, library = library_for(conn, chosen, subset)
        parameters = choose_params(form.given, form.configured, tuned(conn, chosen))
        labels = user_labels_for(conn, lib_key, library) if with_labels else None
    return sets, lib_key, library, parameters, labels


async def _cluster(datasette, db, form: Form, wait: float, with_labels: bool):
    """The cut clustering for a form, using the caches; the tree is built off the event loop.

    With ``with_labels`` (the page, not the JSON), also its agreement with the database's labels.
    """
    time_limit_ms = datasette.sql_time_limit_ms
    sets, lib_key, library, parameters, labels = await db.execute_fn(
        lambda conn: _read_library(conn, form, time_limit_ms, with_labels)
    )
    form.params = params = parameters.params
    if len(library.ids) < 2:
        raise ClusterError(f"clustering needs at least 2 fingerprints, found {len(library.ids)}")
    tree = await _tree_for(tree_key(lib_key, params), library, params, wait)
    labels_cut = cut_tree(tree, params.sim)
    result = group(labels_cut, library.ids, library.timestamps, params)
    agreement = None
    if labels is not None:
        described, index = labels
        agreement = (described, index.score(flat_clusters(labels_cut, params.min_csize)))
    return library, sets, tree, result, parameters, agreement


def thumbnail_url(datasette, database: str, image_id: int) -> str:
    return datasette.urls.path(f"/{_route(datasette, database)}/-/cluster/thumbnail/{image_id}.jpg")


def _route(datasette, database: str) -> str:
    db = datasette.get_database(database)
    return getattr(db, "route", database)


def _computing(message: str, as_json: bool) -> Response:
    headers = {"Retry-After": "2"}
    if as_json:
        return Response.json({"ok": False, "status": "computing", "message": message}, status=202, headers=headers)
    return Response.html(
        '<!DOCTYPE html><html><head><meta http-equiv="refresh" content="2"><title>Clustering…</title>'
        f'</head><body><h1>Clustering…</h1><p class="imagecluster-computing">{_escape(message)}</p>'
        "</body></html>",
        status=202,
        headers=headers,
    )


def _error(message: str, status: int, as_json: bool) -> Response:
    if as_json:
        return Response.json({"ok": False, "error": message, "status": status}, status=status)
    return Response.html(
        f"<!DOCTYPE html><title>Error {status}</title><h1>Error {status}</h1><p>{_escape(message)}</p>",
        status=status,
    )


def _escape(text: str) -> str:
    from markupsafe import escape

    return str(escape(text))


async def cluster_view(datasette, request):
    """``/<database>/-/cluster`` and ``/<database>/-/cluster.json``."""
    as_json = request.url_vars.get("format") == "json"
    if request.url_vars.get("format") not in (None, "json"):
        return _error(f"Unknown format: {request.url_vars['format']!r} (the page, or .json)", 404, False)
    try:
        db = _database(datasette, request)
        if not await can_view(datasette, request.actor, db.name, (IMAGES, FINGERPRINTS)):
            raise Forbidden("You do not have permission to view this database")
        settings = config(datasette, db.name)
        form = parse_form(request.args, settings)
        await _check_subset(datasette, request, db, form.sql)
        library, sets, tree, result, parameters, agreement = await _cluster(
            datasette, db, form, float(settings["wait_seconds"]), with_labels=not as_json
        )
    except Computing as e:
        return _computing(str(e), as_json)
    except NotFound as e:
        return _error(str(e) or "Not found", 404, as_json)
    except Forbidden as e:
        return _error(str(e) or "Forbidden", 403, as_json)
    except (BadRequest, ClusterError) as e:
        if as_json:
            return _error(str(e), 400, True)
        return await _render(datasette, request, db, None, error=str(e), status=400)
    if as_json:
        report = result_json(result, library)
        for c in report["clusters"]:
            for image in c["images"]:
                image["thumbnail"] = thumbnail_url(datasette, db.name, image["id"])
        return Response.json(report)
    return await _render(datasette, request, db, (form, library, sets, tree, result, settings, parameters, agreement))


async def _render(datasette, request, db, clustered, error: str | None = None, status: int = 200):
    context = {
        "database": db.name,
        "error": error,
        "methods": METHODS,
        "metrics": METRICS,
        "form_url": datasette.urls.path(f"/{_route(datasette, db.name)}/-/cluster"),
    }
    if clustered is None:
        settings = config(datasette, db.name)
        context["values"] = {k: request.args.get(k, settings.get(k, "")) for k in (*PARAMETER_NAMES, "sql")}
        context["can_sql"] = await can_execute_sql(datasette, request.actor, db.name)
    else:
        context.update(await _gallery(datasette, request, db, *clustered))
    html = await datasette.render_template("imagecluster.html", context, request=request)
    return Response.html(html, status=status)


async def _gallery(
    datasette,
    request,
    db,
    form: Form,
    library: Library,
    sets: list[FingerprintSet],
    tree,
    result,
    settings,
    parameters: Chosen,
    agreement,
) -> dict:
    pages = max(1, -(-len(result.clusters) // form.page_size))
    page = min(form.page, pages)
    shown = result.clusters[(page - 1) * form.page_size : page * form.page_size]
    per_card = int(settings["thumbnails_per_cluster"])
    ids = [int(i) for members in shown for i in members]
    details = library.details(ids)
    can_sql = await can_execute_sql(datasette, request.actor, db.name)
    table_url = datasette.urls.table(db.name, IMAGES)
    cards = []
    for number, members in enumerate(shown, start=(page - 1) * form.page_size + 1):
        member_ids = [int(i) for i in members]
        taken = [details[i]["taken"] for i in member_ids if details[i]["taken"]]
        id_list = ",".join(map(str, member_ids))
        cards.append(
            {
                "number": number,
                "size": len(member_ids),
                "first": min(taken) if taken else None,
                "last": max(taken) if taken else None,
                "images": [
                    {
                        "id": i,
                        "name": details[i]["path"].rsplit("/", 1)[-1],
                        "taken": details[i]["taken"],
                        "thumbnail": thumbnail_url(datasette, db.name, i),
                        "url": datasette.urls.row(db.name, IMAGES, str(i)),
                    }
                    for i in member_ids[:per_card]
                ],
                "more": max(0, len(member_ids) - per_card),
                "table_url": f"{table_url}?{urlencode({'id__in': id_list})}",
                "sql_url": (
                    datasette.urls.database(db.name)
                    + "?"
                    + urlencode({"sql": f"select * from {IMAGES} where id in ({id_list}) order by timestamp"})
                )
                if can_sql
                else None,
            }
        )
    base = datasette.urls.path(f"/{_route(datasette, db.name)}/-/cluster")
    p = form.params
    return {
        "values": {
            "sim": p.sim,
            "alpha": p.alpha,
            "method": p.method,
            "metric": p.metric,
            "min_csize": p.min_csize,
            "pca": "" if p.pca is None else p.pca,
            "sql": form.sql,
        },
        "can_sql": can_sql,
        "sets": sets if len(sets) > 1 else [],
        "chosen": library.fingerprint_set,
        "stats": result.stats(),
        "n_images": result.n_images,
        "n_clustered": result.n_clustered,
        "n_clusters": len(result.clusters),
        "cards": cards,
        "page": page,
        "pages": pages,
        "prev_url": f"{base}?{form.query(page=page - 1)}" if page > 1 else None,
        "next_url": f"{base}?{form.query(page=page + 1)}" if page < pages else None,
        "json_url": f"{base}.json?{form.query(page=None)}",
        "dendrogram": dendrogram_svg(tree, p.sim),
        "random_weights": library.fingerprint_set.weights.startswith("random-"),
        "params_from": parameters.describe(),
        "agreement": None
        if agreement is None
        else {
            "labels": agreement[0],
            "precision": agreement[1].precision,
            "recall": agreement[1].recall,
            "f1": agreement[1].f1,
        },
    }


async def cluster_index(datasette, request):
    """``/-/cluster``: the first database with fingerprints the actor may see."""
    for name, db in datasette.databases.items():
        if name == "_internal":
            continue
        if not await can_view(datasette, request.actor, name, (IMAGES, FINGERPRINTS)):
            continue
        if await db.execute_fn(has_fingerprints_table):
            target = datasette.urls.path(f"/{_route(datasette, name)}/-/cluster")
            query = request.query_string
            return Response.redirect(f"{target}?{query}" if query else target)
    return _error("No database here has photo fingerprints: run 'imagecluster import' first", 404, False)


async def thumbnail_view(datasette, request):
    """``/<database>/-/cluster/thumbnail/<id>.jpg``: the JPEG stored by the importer."""
    db = _database(datasette, request)
    if not await can_view(datasette, request.actor, db.name, (IMAGES, THUMBNAILS)):
        return Response.text("Forbidden", status=403)
    try:
        image_id = _int("id", request.url_vars["id"], 0, 2**63 - 1)
    except BadRequest:  # not an id SQLite could hold: no such thumbnail
        return Response.text("Not found", status=404)
    row = await db.execute_fn(lambda conn: _thumbnail(conn, image_id))
    if row is None or not isinstance(row[0], bytes):
        return Response.text("Not found", status=404)
    etag = '"' + hashlib.sha256(row[0]).hexdigest()[:32] + '"'
    headers = {"ETag": etag, "Cache-Control": "private, max-age=3600"}
    if request.headers.get("if-none-match") == etag:
        return Response("", status=304, headers=headers)
    return Response(row[0], content_type="image/jpeg", headers=headers)


def _thumbnail(conn, image_id: int) -> tuple | None:
    """The thumbnail's row, in one trip to the database thread (None without a thumbnails table)."""
    if table_exists(conn, THUMBNAILS):
        return conn.execute(f"select jpeg from {THUMBNAILS} where image_id = ?", (image_id,)).fetchone()
    return None


async def similar_view(datasette, request):
    """``/<database>/-/cluster/similar/<id>.json``: the most similar photos, for row pages."""
    try:
        db = _database(datasette, request)
        if not await can_view(datasette, request.actor, db.name, (IMAGES, FINGERPRINTS)):
            return _error("Forbidden", 403, True)
        settings = config(datasette, db.name)
        image_id = _int("id", request.url_vars["id"], 0, 2**63 - 1)
        k = _int("k", request.args.get("k") or 8, 1, 100)
        library = await db.execute_fn(lambda conn: _read_photo_library(conn, image_id, settings))
        found = await asyncio.get_running_loop().run_in_executor(EXECUTOR, nearest, library, image_id, k)
    except NotFound as e:
        return _error(str(e), 404, True)
    except (BadRequest, ClusterError) as e:
        return _error(str(e), 400, True)
    return Response.json(
        {
            "image_id": image_id,
            "thumbnail": thumbnail_url(datasette, db.name, image_id),
            "similar": [
                {
                    "id": i,
                    "distance": d,
                    "thumbnail": thumbnail_url(datasette, db.name, i),
                    "url": datasette.urls.row(db.name, IMAGES, str(i)),
                }
                for i, d in found
            ],
        }
    )


def _read_photo_library(conn, image_id: int, settings: dict) -> Library:
    """The configured library, from one snapshot; NotFound, as core's row page, for a missing photo."""
    with read_transaction(conn):
        sets = fingerprint_sets(conn)
        if not sets:
            raise NotFound("There are no fingerprints in this database: run 'imagecluster import' first")
        chosen = choose_set(sets, settings.get("model"), settings.get("layer"), settings.get("weights"))
        if conn.execute(f"select 1 from {IMAGES} where id = ?", (image_id,)).fetchone() is None:
            raise NotFound(f"Record not found: {image_id}")
        _, library = library_for(conn, chosen)
    if image_id not in library.ids:
        raise NotFound(f"Photo {image_id} has no fingerprint in {chosen.label}")
    return library


async def not_found_view(datasette, request):
    """Any other URL under ``/-/cluster/``: 404, in JSON where the URL asks for JSON."""
    return _error(
        "Not found: the cluster pages are /-/cluster, /<database>/-/cluster(.json), "
        "/<database>/-/cluster/thumbnail/<id>.jpg and /<database>/-/cluster/similar/<id>.json",
        404,
        request.path.endswith(".json"),
    )
