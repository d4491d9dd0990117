"""The built-in sources and models, registered through the same hooks as any third-party plugin."""

from __future__ import annotations

from .hookspecs import hookimpl
from .plugins import Source


def _digikam(path: str, root_maps: list[tuple[str, str]]):
    from .catalogs.digikam import DigikamCatalog

    return DigikamCatalog(path, root_maps)


def _lightroom(path: str, root_maps: list[tuple[str, str]]):
    from .catalogs.lightroom import LightroomCatalog

    return LightroomCatalog(path, root_maps)


@hookimpl
def register_sources(register):
    register(Source("folder", "folders, walked recursively; every image format recognised by content"))
    register(Source("digikam", "a digiKam catalog (digikam4.db, schema versions 10 to 16)", _digikam))
    register(Source("lightroom", "a Lightroom Classic catalog (.lrcat), with its previews", _lightroom))


@hookimpl
def register_fingerprinters(register):
    from .models import BUILT_IN

    for architecture in BUILT_IN:
        register(architecture)
