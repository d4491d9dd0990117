"""Datasette plugin: SQL functions over photo fingerprints.

This module holds the plugin's hooks only; it never imports TensorFlow or the
importer, so a published catalog serves without them.
"""

from __future__ import annotations

import json

from datasette import hookimpl

from .vectors import decode


def imagecluster_dims(blob: bytes) -> int:
    """The number of float32 values in a fingerprint BLOB."""
    return int(decode(blob).shape[0])


def imagecluster_vector(blob: bytes) -> str:
    """A fingerprint BLOB as a JSON array of numbers."""
    return json.dumps([float(x) for x in decode(blob)])


@hookimpl
def prepare_connection(conn):
    conn.create_function("imagecluster_dims", 1, imagecluster_dims, deterministic=True)
    conn.create_function("imagecluster_vector", 1, imagecluster_vector, deterministic=True)
