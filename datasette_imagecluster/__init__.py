"""datasette-imagecluster: group photos by content and capture time, and explore the groups in Datasette.

Sub-packages by role, each importing only those before it: :mod:`.engine`
(numpy and scipy, arrays in and out), :mod:`.library` (the SQLite tables),
:mod:`.api` (:class:`~.api.Photos`, the Python API) and :mod:`.web` (the
Datasette plugin). Datasette registers this package as its plugin, so the
hooks are declared here, each calling its body in :mod:`.web.hooks` on first
use: importing the engine, the library or the API never loads Datasette.
"""

from __future__ import annotations

from .engine.blas import choose_kernels

choose_kernels()  # first, before anything loads numpy

import pluggy  # noqa: E402

hookimpl = pluggy.HookimplMarker("datasette")  # what datasette.hookimpl is, without importing Datasette


def _hooks():
    from .web import hooks

    return hooks


@hookimpl
def startup(datasette):
    return _hooks().startup(datasette)


@hookimpl
def prepare_connection(conn, database, datasette):
    return _hooks().prepare_connection(conn, database, datasette)


@hookimpl
def register_routes():
    return _hooks().register_routes()


@hookimpl
def menu_links(datasette, actor):
    return _hooks().menu_links(datasette, actor)


@hookimpl
def database_actions(datasette, actor, database):
    return _hooks().database_actions(datasette, actor, database)


@hookimpl
def table_actions(datasette, actor, database, table):
    return _hooks().table_actions(datasette, actor, database, table)


@hookimpl
def row_actions(datasette, actor, database, table, row):
    return _hooks().row_actions(datasette, actor, database, table, row)


@hookimpl
def render_cell(row, value, column, table, database, datasette):
    return _hooks().render_cell(row, value, column, table, database, datasette)


@hookimpl
def extra_js_urls(view_name, table, datasette):
    return _hooks().extra_js_urls(view_name, table, datasette)


@hookimpl
def extra_css_urls(view_name, table, datasette):
    return _hooks().extra_css_urls(view_name, table, datasette)


@hookimpl
def extra_body_script(view_name, table, database, request, datasette):
    return _hooks().extra_body_script(view_name, table, database, request, datasette)


@hookimpl
def homepage_actions(datasette, actor):
    return _hooks().homepage_actions(datasette, actor)


@hookimpl
def top_homepage(datasette, request):
    return _hooks().top_homepage(datasette, request)


@hookimpl
def top_database(datasette, request, database):
    return _hooks().top_database(datasette, request, database)
