"""Photo managers' catalogs, read read-only: the shared base, digiKam, Lightroom Classic and its previews.

What a source plugin's catalog is made of (docs/plugins.md) is importable from here.
"""

from .base import Catalog, CatalogError, CatalogPhoto, Preview, map_root

__all__ = ["Catalog", "CatalogError", "CatalogPhoto", "Preview", "map_root"]
