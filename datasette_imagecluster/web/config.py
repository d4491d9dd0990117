"""The plugin's configuration (``plugins: datasette-imagecluster:`` in Datasette's config), checked at start-up.

Keys: the page's own settings (:data:`DEFAULTS`), clustering parameters
(``sim``, ``alpha``, ``method``, ``metric``, ``min_csize``, ``pca``; see
:mod:`..engine.parameters`) and the fingerprint set to use (``model``, ``layer``,
``weights``). A mistake stops ``datasette`` at start-up with one line naming
the key, instead of surfacing as an error on some later page.
"""

from __future__ import annotations

import click
from datasette.utils import StartupError

from ..api import SET_NAMES
from ..engine.parameters import NAMES as PARAMETER_NAMES
from ..engine.parameters import choose_params
from ..errors import ClusterError

PLUGIN = "datasette-imagecluster"  # the name its configuration and static files go by

# The page's own settings; clustering parameters come from parameters.choose_params.
DEFAULTS = {"page_size": 20, "thumbnails_per_cluster": 24, "wait_seconds": 5}
MAX_PAGE_SIZE = 500
KEYS = (*DEFAULTS, *PARAMETER_NAMES, *SET_NAMES)


class ConfigError(StartupError, click.ClickException):
    """A bad configuration: Datasette 1.0a turns a StartupError into one line; on 0.65, whose ``serve``
    runs the startup hooks outside that handling, click prints a ClickException as one line."""

    def __init__(self, message: str):
        StartupError.__init__(self, message)
        click.ClickException.__init__(self, message)


def config(datasette, database: str | None = None) -> dict:
    """The configuration for a database (its own block overrides the instance's), defaults filled in."""
    return {**DEFAULTS, **(datasette.plugin_config(PLUGIN, database=database) or {})}


def _whole(settings: dict, name: str, lo: int, hi: int) -> None:
    value = settings[name]
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ClusterError(f"{name} must be a whole number from {lo} to {hi}, not {value!r}")


def check(settings: dict) -> None:
    """ClusterError naming the first bad key or value of one configuration block."""
    unknown = sorted(set(settings) - set(KEYS))
    if unknown:
        raise ClusterError(f"unknown setting {unknown[0]!r}: the settings are {', '.join(KEYS)}")
    _whole(settings, "page_size", 1, MAX_PAGE_SIZE)
    _whole(settings, "thumbnails_per_cluster", 1, 10_000)
    wait = settings["wait_seconds"]
    if isinstance(wait, bool) or not isinstance(wait, (int, float)) or not 0 <= wait <= 3600:
        raise ClusterError(f"wait_seconds must be a number of seconds from 0 to 3600, not {wait!r}")
    for name in SET_NAMES:
        if settings.get(name) is not None and not isinstance(settings[name], str):
            raise ClusterError(f"{name} must be text, not {settings[name]!r}")
    choose_params({}, settings, None)  # every clustering parameter valid


def validate(datasette) -> None:
    """Check the instance's configuration and every database's; ConfigError in one line if one is wrong."""
    for database in (None, *(name for name in datasette.databases if name != "_internal")):
        try:
            check(config(datasette, database))
        except ClusterError as e:
            where = "" if database is None else f" (database {database})"
            raise ConfigError(f"{PLUGIN} configuration{where}: {e}") from None
