"""Clusters as JSON: the shape the CLI's ``--json`` and the plugin's ``.json`` share."""

from __future__ import annotations

from typing import Any

from .clustering import Result
from .fingerprints import FingerprintSet, Library


def params_json(result: Result, fingerprint_set: FingerprintSet) -> dict[str, Any]:
    return {
        **result.params.as_dict(),
        "model": fingerprint_set.model,
        "layer": fingerprint_set.layer,
        "weights": fingerprint_set.weights,
    }


def result_json(result: Result, library: Library) -> dict[str, Any]:
    """``{"params", "n_images", "n_clustered", "stats", "clusters": [{"size", "images"}]}``.

    The photos' details come from the library the clustering was made from,
    never from a later read.
    """
    details = library.details([int(i) for members in result.clusters for i in members])
    return {
        "params": params_json(result, library.fingerprint_set),
        "n_images": result.n_images,
        "n_clustered": result.n_clustered,
        "stats": [{"size": size, "clusters": count} for size, count in result.stats()],
        "clusters": [
            {"size": len(members), "images": [details[int(i)] for i in members]} for members in result.clusters
        ],
    }
