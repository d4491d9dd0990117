"""Clusters as JSON: the shape the CLI's ``--json`` and the plugin's ``.json`` share."""

from __future__ import annotations

import sqlite3
from typing import Any

from .clustering import Result
from .fingerprints import FingerprintSet
from .schema import IMAGES


def image_details(conn: sqlite3.Connection, image_ids: list[int]) -> dict[int, dict[str, Any]]:
    """``{id: {"id", "path", "taken"}}`` for the given images, fetched in chunks."""
    details: dict[int, dict[str, Any]] = {}
    for start in range(0, len(image_ids), 500):
        chunk = image_ids[start : start + 500]
        rows = conn.execute(
            f"select id, path, taken from {IMAGES} where id in ({', '.join('?' for _ in chunk)})",
            chunk,
        )
        for image_id, path, taken in rows:
            details[image_id] = {"id": image_id, "path": path, "taken": taken}
    return details


def params_json(result: Result, fingerprint_set: FingerprintSet) -> dict[str, Any]:
    return {
        **result.params.as_dict(),
        "model": fingerprint_set.model,
        "layer": fingerprint_set.layer,
        "weights": fingerprint_set.weights,
    }


def result_json(
    conn: sqlite3.Connection, result: Result, fingerprint_set: FingerprintSet
) -> dict[str, Any]:
    """``{"params", "n_images", "n_clustered", "stats", "clusters": [{"size", "images"}]}``."""
    details = image_details(conn, [int(i) for members in result.clusters for i in members])
    return {
        "params": params_json(result, fingerprint_set),
        "n_images": result.n_images,
        "n_clustered": result.n_clustered,
        "stats": [{"size": size, "clusters": count} for size, count in result.stats()],
        "clusters": [
            {"size": len(members), "images": [details[int(i)] for i in members]}
            for members in result.clusters
        ],
    }
