"""The importer's extension points, for pluggy: photo sources and fingerprint models.

A plugin is a module (or object) with functions marked ``@hookimpl``, found
through the ``imagecluster`` entry-point group::

    # pyproject.toml of imagecluster-myphotos
    [project.entry-points.imagecluster]
    myphotos = "imagecluster_myphotos"

The built-in folder, digiKam and Lightroom sources and the built-in models
register through these same hooks (:mod:`importer.default_plugins`). See
docs/plugins.md for a worked example.
"""

from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("imagecluster")
hookimpl = pluggy.HookimplMarker("imagecluster")


@hookspec
def register_sources(register):
    """Register photo sources: call ``register(Source(name, description, open))`` for each.

    ``open(path, root_maps)`` returns a catalog (:class:`importer.catalogs.Catalog`):
    an object with ``source``, ``path``, ``snapshot``, ``photos()``,
    ``preview(photo)`` and ``close()``. A source without ``open`` is a folder walk.
    """


@hookspec
def register_fingerprinters(register):
    """Register fingerprint models: call ``register(architecture)`` with an
    :class:`importer.models.Architecture` for each (its ``name`` is what ``--model`` takes)."""
