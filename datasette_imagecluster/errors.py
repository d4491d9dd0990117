"""One base for every error a user can cause, :class:`ImageclusterError`, and the kinds the plugin tells apart.

The CLI turns any ImageclusterError into one line and exit status 1; the
plugin turns :class:`NotFoundError` into a 404 and the others into a 400.
Errors of the importer's own steps (catalogs, decoding, devices, sidecars)
derive from the base in the importer's modules.
"""

from __future__ import annotations


class ImageclusterError(Exception):
    """Something the user can fix; the message says what, in one line."""


class ClusterError(ImageclusterError, ValueError):
    """A clustering request that cannot be carried out: bad parameters, or data it can't use."""


class NotFoundError(ClusterError):
    """Something asked for is not in the database: a photo, a saved clustering, any fingerprints."""


class LabelError(ImageclusterError, ValueError):
    """Labels or verdicts that can't be used as they are; the message names the photos or the line."""


class SchemaError(ImageclusterError):
    """The database's schema is newer than this version understands, or not an imagecluster schema."""


class SubsetError(ImageclusterError):
    """The ``?sql=`` subset query is not allowed or failed: the user's to fix (400)."""
