"""The plugin's pages: the cluster page and its JSON, thumbnails, similar photos, saving, verdicts, changes.

Every view checks the actor's permissions first (as core checks its table
pages, :mod:`.permissions`), parses request parameters into validated values
(:mod:`.form`, never SQL), reads everything it needs through :class:`..api.Photos`
in one ``db.execute_fn`` inside one read transaction, builds trees on a bounded
queue (:mod:`.builds`), so the event loop stays free while a large clustering
runs, and leaves the cards to :mod:`.gallery`. Errors are Datasette's own
exceptions, so core renders them: pages with the site's chrome
(``error.html``), JSON in each line's error shape.
"""

from __future__ import annotations

import asyncio
import hashlib
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qs, quote, unquote, urlencode

from datasette import Response
from datasette.utils.asgi import BadRequest, Forbidden, NotFound
from datasette.views.base import DatasetteError

from ..api import Clustering, Photos, Selection
from ..engine.parameters import DISTANCES, METHODS, METRICS
from ..engine.parameters import NAMES as PARAMETER_NAMES
from ..errors import ClusterError, LabelError, NotFoundError, SubsetError
from ..library import keepers
from ..library.connections import has_tables
from ..library.saved import check_name
from ..library.schema import (
    CLUSTER_MEMBERS,
    CLUSTERINGS,
    FINGERPRINTS,
    IMAGES,
    KEEPERS,
    SCHEMA_VERSION,
    THUMBNAILS,
    VERDICTS,
    schema_version,
)
from ..library.verdicts import DESCRIBED, KINDS
from . import previews
from .builds import BUILDS, Busy, Progress, build_key, tree_of
from .config import config
from .effects import describe_effect
from .form import Form, parse_form, whole_number
from .gallery import gallery_context, photo_card, read_photos, version_card
from .permissions import can_execute_sql, can_view, can_write_rows
from .subsets import run_subset
from .urls import route, thumbnail_url

EXECUTOR = ThreadPoolExecutor(max_workers=2, thread_name_prefix="imagecluster")  # similar photos (trees: builds.py)
RETRY_AFTER = 2  # seconds: how soon a page still computing asks to be loaded again
UNDO_NAMESPACE = "imagecluster-undo"  # what Datasette's signer signs undo tokens under


class Computing(Exception):
    """A tree is still being built, or waits for room on the build queue: answered with 202 and a page that
    refreshes itself."""

    def __init__(self, photos: int, busy: str | None = None, progress: Progress | None = None, finished: bool = False):
        first = (
            f"The server is busy: {busy}."
            if busy
            else f"Clustering {photos:,} photos: this takes a while the first time."
        )
        stage = f" {progress.describe()}" if progress is not None else " It has just finished." if finished else ""
        super().__init__(f"{first}{stage} This page reloads itself until the clusters are ready.")


async def _tree_for(selection: Selection, wait: float):
    """The cached tree, or one built on the build queue (:mod:`.builds`); Computing if that outlasts ``wait``
    or the queue has no room yet (the page asks again)."""
    tree = selection.cached_tree()
    if tree is not None:
        return tree
    try:
        future = tree_of(selection)
    except Busy as e:
        raise Computing(len(selection.library.ids), busy=str(e))
    try:
        return await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(future)), timeout=wait)
    except asyncio.TimeoutError:
        progress = BUILDS.progress(build_key(selection))  # None: it finished since the wait ended
        raise Computing(len(selection.library.ids), progress=progress, finished=progress is None)
    except asyncio.CancelledError:
        if not future.cancelled():
            raise  # this request itself was cancelled
        raise Computing(len(selection.library.ids))  # dropped unasked while this waited longer: asked again next


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


async def _cluster(datasette, db, form: Form, settings: dict, with_labels: bool) -> Clustering:
    """The cut clustering for a form, through the caches; the tree is built off the event loop.

    With ``with_labels`` (the page, not the JSON), the database's labels are read too, for the agreement.
    """
    time_limit_ms = datasette.sql_time_limit_ms
    subset = (lambda conn: run_subset(conn, form.sql, time_limit_ms)) if form.sql else None
    selection = await db.execute_fn(
        lambda conn: Photos(conn, settings).choose(
            model=form.model, layer=form.layer, weights=form.weights, subset=subset, labels=with_labels, **form.given
        )
    )
    form.params = selection.params
    return selection.cluster(await _tree_for(selection, float(settings["wait_seconds"])))


async def _computing(datasette, request, message: str, as_json: bool) -> Response:
    """202 with Retry-After: JSON that says so without touching core's ``status``, or a page in the site's
    chrome that reloads itself."""
    headers = {"Retry-After": str(RETRY_AFTER)}
    if as_json:
        body = {"ok": False, "computing": True, "message": message, "retry_after": RETRY_AFTER, "status": 202}
        return Response.json(body, status=202, headers=headers)
    html = await datasette.render_template(
        "imagecluster_computing.html", {"message": message, "retry_after": RETRY_AFTER}, request=request
    )
    return Response.html(html, status=202, headers=headers)


async def cluster_view(datasette, request):
    """``/<database>/-/cluster`` and ``/<database>/-/cluster.json``."""
    fmt = request.url_vars.get("format")
    if fmt not in (None, "json"):
        raise NotFound(f"Unknown format: {fmt!r} (the page, or .json)")
    as_json = fmt == "json"
    db = _database(datasette, request)
    if not await can_view(datasette, request.actor, db.name, (IMAGES, FINGERPRINTS)):
        raise Forbidden("You do not have permission to view this database's photos")
    settings = config(datasette, db.name)
    try:
        form = parse_form(request.args, settings)
        await _check_subset(datasette, request, db, form.sql)
        clustering = await _cluster(datasette, db, form, settings, with_labels=not as_json)
    except Computing as e:
        return await _computing(datasette, request, str(e), as_json)
    except NotFoundError as e:
        raise NotFound(str(e))
    except (BadRequest, ClusterError, SubsetError) as e:
        if as_json:
            raise BadRequest(str(e))
        return await _render(datasette, request, db, None, error=str(e), status=400)
    if as_json:
        report = clustering.json()
        for c in report["clusters"]:
            for image in c["images"]:
                image["thumbnail"] = thumbnail_url(datasette, db.name, image["id"])
        return Response.json(report)
    return await _render(datasette, request, db, (form, clustering, settings))


async def _render(datasette, request, db, clustered, error: str | None = None, status: int = 200):
    context = {
        "database": db.name,
        "error": error,
        "methods": METHODS,
        "metrics": METRICS,
        "distances": DISTANCES,
        "form_url": datasette.urls.path(f"/{route(datasette, db.name)}/-/cluster"),
        "count_url": datasette.urls.path(f"/{route(datasette, db.name)}/-/cluster/count.json"),
    }
    if clustered is None:
        settings = config(datasette, db.name)
        context["values"] = {k: request.args.get(k, settings.get(k, "")) for k in (*PARAMETER_NAMES, "sql")}
        context["can_sql"] = await can_execute_sql(datasette, request.actor, db.name)
    else:
        context.update(await gallery_context(datasette, request, db, *clustered))
    html = await datasette.render_template("imagecluster.html", context, request=request)
    return Response.html(html, status=status)


async def _form_post(datasette, request):
    """A form POSTed to one of the page's actions: (database, the page's URL, the fields as lists).
    405 for another method; Datasette's CSRF protection has already checked the request."""
    if request.method != "POST":
        raise DatasetteError("Method not allowed: POST this from the cluster page", status=405)
    db = _database(datasette, request)
    base = datasette.urls.path(f"/{route(datasette, db.name)}/-/cluster")
    return db, base, parse_qs((await request.post_body()).decode("utf-8", "replace"))


async def _may_write(datasette, request, db, table: str, action: str) -> None:
    """Forbidden unless the actor may see the photos and do ``action`` on ``table``; BadRequest for an
    immutable database."""
    if not await can_view(datasette, request.actor, db.name, (IMAGES, FINGERPRINTS)) or not (
        await can_write_rows(datasette, request.actor, db.name, table, action)
    ):
        raise Forbidden(f"You do not have permission to write to {table} in this database")
    if not db.is_mutable:
        raise BadRequest(f"This database is immutable: nothing can be written to {table} here")
    version = await db.execute_fn(schema_version)
    if version > SCHEMA_VERSION:
        raise BadRequest(
            f"This database has schema version {version}, newer than this datasette-imagecluster understands "
            f"({SCHEMA_VERSION}): upgrade it to write to {table}"
        )


def _wants_json(request) -> bool:
    """A request from the page's script (it asks for JSON), not a plain form post."""
    return "application/json" in request.headers.get("accept", "")


def _page_form(back: str, settings: dict) -> Form | None:
    """The cluster page's form from its URL (the ``next`` field), or None when it isn't a valid one."""
    fields = {k: v[-1] for k, v in parse_qs(back.partition("?")[2]).items()}
    try:
        return parse_form(fields, settings)
    except BadRequest:
        return None


async def _clusters_or_none(datasette, db, form: Form | None, settings: dict) -> list[list[int]] | None:
    """The page's clusters at its settings, or None when they can't be had now (still computing, an error)."""
    if form is None:
        return None
    try:
        return (await _cluster(datasette, db, form, settings, with_labels=False)).clusters
    except (Computing, ClusterError, SubsetError, NotFoundError):
        return None


async def _named(datasette, db, ids: list[int]) -> tuple[dict[int, dict], list[dict]]:
    """The photos' rows and, for a message, each one's name and thumbnail (never a bare id)."""
    rows = await db.execute_fn(lambda conn: read_photos(conn, ids))
    return rows, [photo_card(datasette, db.name, i, rows.get(i, {})) for i in ids]


def _sentence(names: list[str]) -> str:
    shown = names[:4] + ([f"{len(names) - 4} more"] if len(names) > 4 else [])
    return shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " and " + shown[-1]


def _json_errors(view):
    """For the page's script, a refusal in JSON (``{"ok": false, "error": ...}``) with its status, where a
    plain form post gets core's error page."""

    async def answer(datasette, request):
        try:
            return await view(datasette, request)
        except (BadRequest, Forbidden, DatasetteError) as e:
            if not _wants_json(request):
                raise
            status = 403 if isinstance(e, Forbidden) else getattr(e, "status", 400)
            return Response.json({"ok": False, "error": str(e), "message": str(e)}, status=status)

    answer.__doc__ = view.__doc__
    return answer


@_json_errors
async def verdict_view(datasette, request):
    """POST ``/<database>/-/cluster/verdict``: record what the user says about photos, then back to the page.

    Fields: ``verdict`` (same, different, forget) with the ticked ``id`` s, or ``not``
    ("photo:member,member,...": that photo differs from the rest of its cluster); ``next``
    (where to go back to, a path on this site). Datasette's CSRF protection covers the form.
    From the page's script (``Accept: application/json``) the answer is JSON: the message, the photos
    named, what the verdict changed in the page's clusters, and a signed token that undoes it.
    """
    db, base, fields = await _form_post(datasette, request)
    back = _local_path((fields.get("next") or [base])[-1], base)
    verdict, photos, others = _parse_verdict(fields)
    await _may_write(datasette, request, db, VERDICTS, "delete-row" if verdict == "forget" else "insert-row")
    as_json = _wants_json(request)
    settings = config(datasette, db.name)
    form = _page_form(back, settings) if as_json else None
    before = await _clusters_or_none(datasette, db, form, settings)
    rows, named = await _named(datasette, db, photos)
    names = [p["name"] for p in named]
    try:
        previous = await db.execute_write_fn(
            lambda conn: Photos(conn).record_verdict(verdict, photos, apart_from=others)
        )
    except LabelError as e:
        return _not_recorded(datasette, request, e, named, back)
    shown = f"{names[0]} and the rest of its cluster" if others is not None else _sentence(names)
    message = f"Recorded: {shown} {DESCRIBED[verdict]}."
    if not as_json:
        datasette.add_message(request, message, datasette.INFO)
        return Response.redirect(back)
    after = await _clusters_or_none(datasette, db, _page_form(back, settings), settings)
    if before is None or after is None:
        changes = ["The clusters are being computed again: the page shows them once they are ready."]
    else:
        moved = {i for c in (*before, *after) for i in c}
        around = set(photos) | set(others or ())
        rows_all = await db.execute_fn(lambda conn: read_photos(conn, sorted(moved | around)))
        changes = describe_effect(before, after, around, rows_all)
    undo = datasette.sign({"database": db.name, "previous": previous, "names": names}, UNDO_NAMESPACE)
    return Response.json({"ok": True, "message": message, "photos": named, "changes": changes, "undo": undo})


def _not_recorded(datasette, request, error: Exception, named: list[dict], back: str) -> Response:
    """A verdict or a keeper refused: JSON with the reason for the page's script, else the reason as a message."""
    if _wants_json(request):
        return Response.json({"ok": False, "message": f"Not recorded: {error}", "photos": named}, status=400)
    datasette.add_message(request, f"Not recorded: {error}", datasette.ERROR)
    return Response.redirect(back)


@_json_errors
async def keep_view(datasette, request):
    """POST ``/<database>/-/cluster/keep``: keep this photo (``keep``: its id) in its cluster at the page's
    settings (``next``), by content, as ``imagecluster keep`` does; the keeper chosen before there gives way.
    ``forget`` (1): drop the photo's choice instead. JSON for the page's script, else back to the page."""
    db, base, fields = await _form_post(datasette, request)
    back = _local_path((fields.get("next") or [base])[-1], base)
    try:
        photo = _photo_id((fields.get("keep") or [""])[-1])
    except ValueError:
        raise BadRequest("keep must be a photo's id, a whole number")
    forget = (fields.get("forget") or [""])[-1] == "1"
    await _may_write(datasette, request, db, KEEPERS, "delete-row" if forget else "insert-row")
    if not await db.execute_fn(lambda conn: has_tables(conn, KEEPERS)):
        raise BadRequest("this database predates keepers: run any imagecluster import on it once to upgrade it")
    _, named = await _named(datasette, db, [photo])
    try:
        if forget:
            await db.execute_write_fn(lambda conn: keepers.forget(conn, [photo]))
            message = f"{named[0]['name']} is no longer your choice: the suggestion stands again."
        else:
            settings = config(datasette, db.name)
            clusters = await _clusters_or_none(datasette, db, _page_form(back, settings), settings)
            if clusters is None:
                raise LabelError("the clusters at these settings are not ready yet: try again once the page shows them")
            numbered = list(enumerate(clusters, 1))
            await db.execute_write_fn(lambda conn: keepers.choose(conn, numbered, [photo]))
            message = f"Keeping {named[0]['name']}: your choice, over the suggestion."
    except LabelError as e:
        return _not_recorded(datasette, request, e, named, back)
    if _wants_json(request):
        return Response.json({"ok": True, "message": message, "photos": named, "changes": []})
    datasette.add_message(request, message, datasette.INFO)
    return Response.redirect(back)


@_json_errors
async def undo_view(datasette, request):
    """POST ``/<database>/-/cluster/undo``: put back the verdicts the last one changed (``undo``: the token
    the verdict's answer carried, signed by this server, for this database)."""
    db, base, fields = await _form_post(datasette, request)
    try:
        token = datasette.unsign((fields.get("undo") or [""])[-1], UNDO_NAMESPACE)
    except Exception:  # noqa: BLE001 (itsdangerous' BadSignature and malformed tokens alike)
        raise BadRequest("undo must be the token a verdict on this page returned")
    if not isinstance(token, dict) or token.get("database") != db.name or not isinstance(token.get("previous"), list):
        raise BadRequest("undo must be the token a verdict on this database returned")
    await _may_write(datasette, request, db, VERDICTS, "delete-row")
    await _may_write(datasette, request, db, VERDICTS, "insert-row")
    previous = [tuple(p) for p in token["previous"] if isinstance(p, list) and len(p) == 4]
    try:
        await db.execute_write_fn(lambda conn: Photos(conn).undo_verdict(previous))
    except LabelError as e:
        raise BadRequest(str(e))
    names = [str(n) for n in token.get("names", [])]
    message = f"Undone: the verdict on {_sentence(names) if names else 'these photos'} is as it was before."
    if _wants_json(request):
        return Response.json({"ok": True, "message": message, "photos": [], "changes": []})
    datasette.add_message(request, message, datasette.INFO)
    return Response.redirect(_local_path((fields.get("next") or [base])[-1], base))


async def save_view(datasette, request):
    """POST ``/<database>/-/cluster/save``: save the clustering the page shows under a name, as
    ``imagecluster cluster --save NAME`` does (a new version; persisting clusters keep their numbers)."""
    db, base, posted = await _form_post(datasette, request)
    fields = {k: v[-1] for k, v in posted.items()}
    await _may_write(datasette, request, db, CLUSTERINGS, "insert-row")
    name = (fields.get("name") or "").strip()
    try:
        check_name(name)
    except ClusterError as e:
        raise BadRequest(str(e))
    settings = config(datasette, db.name)
    form = parse_form(fields, settings)
    await _check_subset(datasette, request, db, form.sql)
    back = f"{base}?{urlencode({k: v for k, v in fields.items() if k not in ('name', 'csrftoken')})}"
    try:
        clustering = await _cluster(datasette, db, form, settings, with_labels=False)
    except Computing:
        datasette.add_message(request, "Not saved: the clusters are still being computed; try again", datasette.ERROR)
        return Response.redirect(back)
    except (ClusterError, SubsetError) as e:
        raise BadRequest(str(e))
    version = (await db.execute_write_fn(lambda conn: Photos(conn).save_clustering(name, clustering))).version
    # Said on the page it returns to, with links (Datasette's messages are plain text).
    saved_as = urlencode({"saved": name, "version": version})
    return Response.redirect(f"{back}&{saved_as}")


def _local_path(value: str, default: str) -> str:
    """``value`` if it is a path on this site, else ``default``: never an open redirect. Browsers drop tabs and
    newlines from a URL and read a backslash as a slash, so ``/\\evil.example`` or ``/<tab>/evil.example`` would
    leave the site, and control characters would break the response's header."""
    decoded = unquote(value)
    if (
        not value.startswith("/")
        or any(ord(c) <= 0x20 or ord(c) == 0x7F or c == "\\" for c in value)
        or any(ord(c) < 0x20 or ord(c) == 0x7F for c in decoded)
        or decoded.startswith(("//", "/\\"))
    ):
        return default
    return value


def _photo_id(text: str) -> int:
    """A photo id from a form; ValueError unless a whole number SQLite can hold."""
    value = int(text)
    if not 0 <= value < 2**63:
        raise ValueError(text)
    return value


def _parse_verdict(fields: dict[str, list[str]]) -> tuple[str, list[int], list[int] | None]:
    """(verdict, photos, the cluster's other photos for "not this one") from the form; BadRequest if malformed."""
    try:
        if fields.get("not"):
            photo, _, members = fields["not"][-1].partition(":")
            others = [_photo_id(i) for i in members.split(",") if i.strip()]
            return "different", [_photo_id(photo)], others
        verdict = (fields.get("verdict") or [""])[-1]
        if verdict not in KINDS:
            raise BadRequest(f"verdict must be one of {', '.join(KINDS)}")
        return verdict, list(dict.fromkeys(_photo_id(i) for i in fields.get("id", []))), None
    except ValueError:
        raise BadRequest("photo ids must be whole numbers")


async def count_view(datasette, request):
    """``/<database>/-/cluster/count.json``: how many clusters and photos the page's settings give, for the
    live count beside the sliders (a re-cut of the cached tree; 202 while a tree is built)."""
    db = _database(datasette, request)
    if not await can_view(datasette, request.actor, db.name, (IMAGES, FINGERPRINTS)):
        raise Forbidden("You do not have permission to view this database's photos")
    settings = config(datasette, db.name)
    try:
        form = parse_form(request.args, settings)
        await _check_subset(datasette, request, db, form.sql)
        clustering = await _cluster(datasette, db, form, settings, with_labels=False)
    except Computing as e:
        return await _computing(datasette, request, str(e), as_json=True)
    except NotFoundError as e:
        raise NotFound(str(e))
    except (ClusterError, SubsetError) as e:
        raise BadRequest(str(e))
    result = clustering.result
    return Response.json(
        {
            "clusters": len(result.clusters),
            "clustered": result.n_clustered,
            "photos": result.n_images,
            "sim": clustering.params.sim,
            "alpha": clustering.params.alpha,
        }
    )


async def preview_view(datasette, request):
    """``/<database>/-/cluster/preview/<id>.jpg``: the photo larger than its thumbnail, for the loupe: the
    preview stored at import, else its original scaled down where this server can read it (:mod:`.previews`),
    else its thumbnail."""
    db = _database(datasette, request)
    if not await can_view(datasette, request.actor, db.name, (IMAGES,)):
        raise Forbidden("You do not have permission to view this database's photos")
    try:
        image_id = whole_number("id", request.url_vars["id"], 0, 2**63 - 1)
    except BadRequest:
        raise NotFound("Photo not found")
    row, kept = await db.execute_fn(lambda conn: (previews.source(conn, image_id), previews.stored(conn, image_id)))
    if row is None:
        raise NotFound("Photo not found")
    if kept is not None:
        jpeg, etag = kept, '"' + hashlib.sha256(kept).hexdigest()[:32] + '"'
    else:
        found = await asyncio.get_running_loop().run_in_executor(EXECUTOR, previews.scaled, row)
        if found is None:  # no original here (a published catalog), or one Pillow can't read
            return Response.redirect(thumbnail_url(datasette, db.name, image_id))
        jpeg, etag = found
    headers = {"ETag": etag, "Cache-Control": "private, max-age=3600"}
    if request.headers.get("if-none-match") == etag:
        return Response("", status=304, headers=headers)
    return Response(jpeg, content_type="image/jpeg", headers=headers)


async def cluster_index(datasette, request):
    """``/-/cluster``: the first database with fingerprints the actor may see."""
    for name, db in datasette.databases.items():
        if name == "_internal":
            continue
        if not await can_view(datasette, request.actor, name, (IMAGES, FINGERPRINTS)):
            continue
        if await db.execute_fn(lambda conn: has_tables(conn, IMAGES, FINGERPRINTS)):
            target = datasette.urls.path(f"/{route(datasette, name)}/-/cluster")
            query = request.query_string
            return Response.redirect(f"{target}?{query}" if query else target)
    raise NotFound("No database here has photo fingerprints: run 'imagecluster import' first")


async def thumbnail_view(datasette, request):
    """``/<database>/-/cluster/thumbnail/<id>.jpg``: the JPEG stored by the importer."""
    db = _database(datasette, request)
    if not await can_view(datasette, request.actor, db.name, (IMAGES, THUMBNAILS)):
        raise Forbidden("You do not have permission to view this database's thumbnails")
    try:
        image_id = whole_number("id", request.url_vars["id"], 0, 2**63 - 1)
    except BadRequest:  # not an id SQLite could hold: no such thumbnail
        raise NotFound("Thumbnail not found")
    row = await db.execute_fn(lambda conn: _thumbnail(conn, image_id))
    if row is None or not isinstance(row[0], bytes):
        raise NotFound("Thumbnail not found")
    etag = '"' + hashlib.sha256(row[0]).hexdigest()[:32] + '"'
    headers = {"ETag": etag, "Cache-Control": "private, max-age=3600"}
    if request.headers.get("if-none-match") == etag:
        return Response("", status=304, headers=headers)
    return Response(row[0], content_type="image/jpeg", headers=headers)


def _thumbnail(conn, image_id: int) -> tuple | None:
    """The thumbnail's row, in one trip to the database thread (None without a thumbnails table)."""
    if has_tables(conn, THUMBNAILS):
        return conn.execute(f"select jpeg from {THUMBNAILS} where image_id = ?", (image_id,)).fetchone()
    return None


async def similar_view(datasette, request):
    """``/<database>/-/cluster/similar/<id>`` (a page) and ``.json``: the most similar photos."""
    fmt = request.url_vars.get("format")
    db = _database(datasette, request)
    if not await can_view(datasette, request.actor, db.name, (IMAGES, FINGERPRINTS)):
        raise Forbidden("You do not have permission to view this database's photos")
    settings = config(datasette, db.name)
    image_id = whole_number("id", request.url_vars["id"], 0, 2**63 - 1)
    k = whole_number("k", request.args.get("k") or 8, 1, 100)
    try:
        selection = await db.execute_fn(lambda conn: Photos(conn, settings).choose_photo(image_id))
        found = await asyncio.get_running_loop().run_in_executor(EXECUTOR, selection.similar, image_id, k)
    except NotFoundError as e:
        raise NotFound(str(e))
    except ClusterError as e:
        raise BadRequest(str(e))
    cosines = selection.cosines(image_id, [i for i, _ in found])
    rows = await db.execute_fn(lambda conn: read_photos(conn, [image_id, *(i for i, _ in found)]))
    photos = []
    for i, d in found:
        card = photo_card(datasette, db.name, i, rows.get(i, {}))
        photos.append(
            {
                "id": i,
                "distance": d,
                "similarity": round(cosines.get(i, 0.0), 3),
                "thumbnail": card["thumbnail"],
                "url": card["url"],
                "name": card["name"],
                "date": card["date"],
            }
        )
    photos.sort(key=lambda p: -p["similarity"])  # the nearest by distance, shown by similarity
    this = photo_card(datasette, db.name, image_id, rows.get(image_id, {}))
    if fmt == "json":
        return Response.json(
            {
                "image_id": image_id,
                "thumbnail": this["thumbnail"],
                "preview": this["preview"],
                "name": this["name"],
                "date": this["date"],
                "camera": this["camera"],
                "alt": this["alt"],
                "similar": photos,
            }
        )
    context = {
        "database": db.name,
        "image_id": image_id,
        "photo": this,
        "thumbnail": thumbnail_url(datasette, db.name, image_id),
        "row_url": datasette.urls.row(db.name, IMAGES, str(image_id)),
        "cluster_url": datasette.urls.path(f"/{route(datasette, db.name)}/-/cluster"),
        "similar": photos,
    }
    html = await datasette.render_template("imagecluster_similar.html", context, request=request)
    return Response.html(html)


async def changes_view(datasette, request):
    """``/<database>/-/cluster/changes/<name>`` (a page) and ``.json``: what changed between the last two
    saves of a clustering (``imagecluster diff``), with thumbnails of the photos that moved."""
    db = _database(datasette, request)
    if not await can_view(datasette, request.actor, db.name, (IMAGES, CLUSTERINGS, CLUSTER_MEMBERS)):
        raise Forbidden("You do not have permission to view this database's clusterings")
    name = unquote(request.url_vars["name"])

    def read(conn):
        photos = Photos(conn)
        changes = photos.diff(name)
        versions = [photos.clustering(name, v) for v in (changes.version_before, changes.version_after)]
        return changes, versions

    try:
        changes, versions = await db.execute_fn(read)
    except NotFoundError as e:
        raise NotFound(str(e))
    report = changes.as_dict()
    if request.url_vars.get("format") == "json":
        return Response.json(report)
    rows = await db.execute_fn(lambda conn: read_photos(conn, changes.moved()))
    for change in report["changes"]:
        change["photos"] = [
            {**photo_card(datasette, db.name, i, rows.get(i, {})), "joined": i in change["added"]}
            for i in (*change["added"], *change["removed"])
        ]
    context = {
        "database": db.name,
        "report": report,
        "versions": [version_card(v) for v in versions],
        "json_url": datasette.urls.path(f"/{route(datasette, db.name)}/-/cluster/changes/{quote(name)}.json"),
        "cluster_url": datasette.urls.path(f"/{route(datasette, db.name)}/-/cluster"),
    }
    html = await datasette.render_template("imagecluster_changes.html", context, request=request)
    return Response.html(html)


async def not_found_view(datasette, request):
    """Any other URL under ``/-/cluster/``: core's 404 (JSON where the URL asks for JSON)."""
    raise NotFound(
        "Not found: the cluster pages are /-/cluster, /<database>/-/cluster(.json), "
        "/<database>/-/cluster/thumbnail/<id>.jpg, /<database>/-/cluster/similar/<id>(.json) and "
        "/<database>/-/cluster/changes/<clustering>(.json)"
    )
