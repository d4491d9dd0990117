"""The plugin's hooks: its routes, its SQL functions, links to the cluster page, thumbnails in table views.

Datasette finds them in the package's ``__init__``, whose hooks call these:
this module loads when Datasette first calls one, and the views on the
first request, so nothing else that imports the package loads Datasette.
"""

from __future__ import annotations

import json

from ..library.schema import FINGERPRINTS, IMAGES, THUMBNAILS
from .config import PLUGIN


def startup(datasette):
    """Stop at start-up, in one line, on a bad plugin configuration."""
    from .config import validate

    validate(datasette)


def prepare_connection(conn, database, datasette):
    from . import sql_functions
    from .config import config

    sql_functions.register(conn, config(datasette, database), datasette.sql_time_limit_ms)


def register_routes():
    from . import views

    # The last two own the rest of the plugin's URL space, so every URL under
    # it gets the plugin's own 404 (core 0.65's fallback 404 can fail with a 500).
    return [
        (r"^/-/cluster$", views.cluster_index),
        (r"^/(?P<database>[^/]+)/-/cluster(\.(?P<format>[^/]*))?$", views.cluster_view),
        (r"^/(?P<database>[^/]+)/-/cluster/thumbnail/(?P<id>[^/]+)\.jpg$", views.thumbnail_view),
        (r"^/(?P<database>[^/]+)/-/cluster/similar/(?P<id>[^/.]+)(\.(?P<format>json))?$", views.similar_view),
        (r"^/(?P<database>[^/]+)/-/cluster/preview/(?P<id>[^/]+)\.jpg$", views.preview_view),
        (r"^/(?P<database>[^/]+)/-/cluster/count\.json$", views.count_view),
        (r"^/(?P<database>[^/]+)/-/cluster/verdict$", views.verdict_view),
        (r"^/(?P<database>[^/]+)/-/cluster/undo$", views.undo_view),
        (r"^/(?P<database>[^/]+)/-/cluster/keep$", views.keep_view),
        (r"^/(?P<database>[^/]+)/-/cluster/save$", views.save_view),
        (r"^/(?P<database>[^/]+)/-/cluster/changes/(?P<name>[^/]+?)(\.(?P<format>json))?$", views.changes_view),
        (r"^/(?P<database>[^/]+)/-/cluster/.*$", views.not_found_view),
        (r"^/-/cluster/.*$", views.not_found_view),
    ]


async def _clusterable(datasette, actor, database: str) -> bool:
    """The database has fingerprints and the actor may open its cluster page (as core would its tables)."""
    from ..library.connections import has_tables
    from .permissions import can_view

    try:
        db = datasette.get_database(database)
    except KeyError:
        return False
    return await db.execute_fn(lambda conn: has_tables(conn, IMAGES, FINGERPRINTS)) and await can_view(
        datasette, actor, database, (IMAGES, FINGERPRINTS)
    )


def _has_top_hooks(datasette) -> bool:
    """Whether this Datasette has the top_homepage and top_database hooks (1.0a)."""
    from datasette.plugins import pm

    caller = getattr(pm.hook, "top_homepage", None)  # our own hookimpl makes one; Datasette's makes it specified
    return caller is not None and caller.spec is not None


def _link(datasette, database: str, path: str, label: str, description: str) -> dict:
    route = getattr(datasette.get_database(database), "route", database)
    return {"href": datasette.urls.path(f"/{route}/-/cluster{path}"), "label": label, "description": description}


def menu_links(datasette, actor):
    async def inner():
        for name in datasette.databases:
            if name != "_internal" and await _clusterable(datasette, actor, name):
                return [{"href": datasette.urls.path("/-/cluster"), "label": "Photo clusters"}]
        return []

    return inner


def homepage_actions(datasette, actor):
    """Datasette 1.0a: the home page's actions menu, one entry per database with photos."""

    async def inner():
        return [
            _link(datasette, name, "", f"Photo clusters in {name}", "Group these photos by content and time")
            for name in await _clusterable_databases(datasette, actor)
        ]

    return inner


async def _clusterable_databases(datasette, actor) -> list[str]:
    return [name for name in datasette.databases if name != "_internal" and await _clusterable(datasette, actor, name)]


async def _found_here(datasette, actor, databases: list[str]) -> str:
    """One visible line per database with photos, linking its cluster page: where people look first."""
    from markupsafe import escape

    from ..library.connections import has_tables

    lines = []
    for name in databases:
        if not await _clusterable(datasette, actor, name):
            continue
        db = datasette.get_database(name)
        count = await db.execute_fn(
            lambda conn: (
                conn.execute(f"select count(*) from {FINGERPRINTS}").fetchone()[0]
                if has_tables(conn, FINGERPRINTS)
                else 0
            )
        )
        href = _link(datasette, name, "", "", "")["href"]
        lines.append(
            f'<p class="imagecluster-found"><a href="{escape(href)}">Photo clusters</a> of {escape(name)}: '
            f"its {count:,} fingerprinted photos grouped by what they show and when they were taken.</p>"
        )
    return "".join(lines)


def top_homepage(datasette, request):
    """Datasette 1.0a: a line at the top of the home page for each database with photos."""

    async def inner():
        return await _found_here(datasette, request.actor if request else None, list(datasette.databases))

    return inner


def top_database(datasette, request, database):
    """Datasette 1.0a: a line at the top of a database's page when it holds photos."""

    async def inner():
        return await _found_here(datasette, request.actor if request else None, [database])

    return inner


def database_actions(datasette, actor, database):
    async def inner():
        if await _clusterable(datasette, actor, database):
            return [_link(datasette, database, "", "Photo clusters", "Group these photos by content and time")]
        return []

    return inner


def table_actions(datasette, actor, database, table):
    async def inner():
        if table == IMAGES and await _clusterable(datasette, actor, database):
            return [_link(datasette, database, "", "Cluster these photos", "Group them by content and time")]
        return []

    return inner


def row_actions(datasette, actor, database, table, row):
    """Datasette 1.0a: "Photos like this" on a photo's row page (0.65 has no row actions)."""

    async def inner():
        if table != IMAGES or row is None or not await _clusterable(datasette, actor, database):
            return []
        try:
            image_id = int(row["id"])
        except (KeyError, IndexError, TypeError, ValueError):
            return []
        return [
            _link(datasette, database, f"/similar/{image_id}", "Photos like this", "The most similar photos by content")
        ]

    return inner


DATE_COLUMNS = {"taken": "photo", "imported_at": "photo", "mtime": "epoch", "timestamp": "epoch"}


def render_cell(row, value, column, table, database, datasette):
    """Thumbnail BLOBs render as images in table views, not as download links; a photo's dates as a photo
    app writes them (``9 Jul 2006, 09:14``), not as ISO strings or seconds since 1970."""
    if table == IMAGES and column in DATE_COLUMNS and value is not None:
        from markupsafe import Markup, escape

        from .display import epoch_date, photo_date

        shown = photo_date(value) if DATE_COLUMNS[column] == "photo" else epoch_date(value)
        if shown is None:
            return None
        iso = f' datetime="{escape(value)}"' if isinstance(value, str) else ""
        return Markup(f"<time{iso}>{escape(shown)}</time>")
    if table == THUMBNAILS and column == "jpeg" and isinstance(value, bytes):
        from markupsafe import Markup, escape

        from . import views

        try:
            image_id = row["image_id"]
            if isinstance(image_id, dict):  # a foreign key Datasette expanded to {value, label}
                image_id = image_id["value"]
            image_id = int(image_id)
        except (KeyError, IndexError, TypeError, ValueError):
            return None
        url = views.thumbnail_url(datasette, database, image_id)
        return Markup(
            f'<img src="{escape(url)}" alt="thumbnail of photo {image_id}" loading="lazy" style="max-height: 120px">'
        )
    return None


def extra_js_urls(view_name, table, datasette):
    if view_name == "row" and table == IMAGES:
        return [{"url": datasette.urls.static_plugins(PLUGIN, "imagecluster.js")}]
    return []


def extra_css_urls(view_name, table, datasette):
    if view_name == "row" and table == IMAGES:
        return [datasette.urls.static_plugins(PLUGIN, "imagecluster.css")]
    return []


def extra_body_script(view_name, table, database, request, datasette):
    """On a photo's row page, a placeholder that imagecluster.js fills with similar photos. On Datasette 0.65,
    which has no hooks for the top of the home and database pages, the same line as on 1.0a, put there by a
    script."""
    if view_name in ("index", "database") and request is not None and not _has_top_hooks(datasette):

        async def inner():
            html = await _found_here(datasette, request.actor, [database] if database else list(datasette.databases))
            if not html:
                return ""
            return (
                "(function () { var c = document.querySelector('.content') || document.body;"
                " var d = document.createElement('div'); d.innerHTML = " + json.dumps(html) + ";"
                " var h = c.querySelector('h1'); if (h) { h.after(d); } else { c.prepend(d); } })();"
            )

        return inner
    if view_name != "row" or table != IMAGES or request is None:
        return ""
    pks = request.url_vars.get("pks", "")
    if not pks.isdigit():
        return ""
    route = getattr(datasette.get_database(database), "route", database)
    url = datasette.urls.path(f"/{route}/-/cluster/similar/{pks}.json")
    return (
        "(function () { var d = document.createElement('div'); d.className = 'imagecluster-similar';"
        f" d.dataset.imageclusterSimilar = {json.dumps(url)};"
        " var c = document.querySelector('.content') || document.body; c.appendChild(d); })();"
    )
