"""The importer's plugin manager: which photo sources and fingerprint models exist, and who brought them.

Plugins are loaded the first time anyone asks (not at import), so a decoder
worker or a command that needs neither never scans the entry points.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

import pluggy

from datasette_imagecluster.errors import ImageclusterError

from . import hookspecs

if TYPE_CHECKING:
    from .catalogs.base import Catalog
    from .models import Architecture

ENTRY_POINTS = "imagecluster"
DEFAULT_PLUGINS = ("importer.default_plugins",)


class PluginError(ImageclusterError):
    """A plugin registered something unusable (a duplicate name, the wrong kind of object)."""


@dataclass(frozen=True)
class Source:
    """Where photos come from: a folder walk (``open`` is None) or a photo manager's catalog."""

    name: str
    description: str
    open: Callable[[str, list[tuple[str, str]]], Catalog] | None = None  # (catalog path, root maps)


@cache
def manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager(ENTRY_POINTS)
    pm.add_hookspecs(hookspecs)
    for name in DEFAULT_PLUGINS:
        pm.register(importlib.import_module(name), name)
    pm.load_setuptools_entrypoints(ENTRY_POINTS)
    return pm


def _collect(hook: str) -> list[tuple[str, Any]]:
    """(plugin name, registered object) for every registration through one hook, plugin by plugin."""
    pm = manager()
    found: list[tuple[str, Any]] = []
    for impl in getattr(pm.hook, hook).get_hookimpls():
        impl.function(register=lambda item, plugin=impl.plugin_name: found.append((plugin, item)))
    return found


def _by_name(hook: str, check: Callable[[Any], bool], what: str) -> dict[str, Any]:
    named: dict[str, Any] = {}
    owners: dict[str, str] = {}
    for plugin, item in _collect(hook):
        if not check(item):
            raise PluginError(f"plugin {plugin} registered {item!r}, not a {what}")
        if item.name in named:
            raise PluginError(f"plugins {owners[item.name]} and {plugin} both register a {what} named {item.name!r}")
        named[item.name], owners[item.name] = item, plugin
    return named


def sources() -> dict[str, Source]:
    """Every registered photo source, by name."""
    return _by_name("register_sources", lambda s: isinstance(s, Source), "source")


def fingerprinters() -> dict[str, Architecture]:
    """Every registered fingerprint model, by name."""
    from .models import Architecture

    return _by_name("register_fingerprinters", lambda a: isinstance(a, Architecture), "model")


def plugin_list() -> list[dict[str, Any]]:
    """Every plugin with its hooks, version and what it registers (``imagecluster plugins``);
    PluginError if two plugins register one name."""
    sources(), fingerprinters()
    pm = manager()
    listed: dict[str, dict[str, Any]] = {}
    for plugin in pm.get_plugins():
        name = pm.get_name(plugin)
        hooks = sorted(h.name for h in pm.get_hookcallers(plugin) or [])
        listed[name] = {"name": name, "hooks": hooks, "sources": [], "models": []}
    for dist_plugin, dist in pm.list_plugin_distinfo():
        listed[pm.get_name(dist_plugin)]["version"] = dist.version
    for plugin, source in _collect("register_sources"):
        listed[plugin]["sources"].append(source.name)
    for plugin, architecture in _collect("register_fingerprinters"):
        listed[plugin]["models"].append(architecture.name)
    return list(listed.values())
