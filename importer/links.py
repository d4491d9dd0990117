"""imagecluster's folder layout of clusters: ``DIR/cluster_with_N/cluster_M/<name>``, keepers apart on request.

With ``--keepers-apart``, the shots that are not their group's keeper go in ``cluster_M/rest/``.

Each link points at the original photo. A marker file records that this
command made the folder, so a re-run replaces its own output but never a
folder of the user's.
"""

from __future__ import annotations

import os
import shutil

from datasette_imagecluster.errors import ImageclusterError

MARKER = ".imagecluster-links"


class LinksError(ImageclusterError):
    """The links folder cannot be (re)made; the message says why."""


def _prepare(directory: str) -> None:
    if os.path.lexists(directory):
        if not os.path.isdir(directory) or os.path.islink(directory):
            raise LinksError(f"{directory} exists and is not a folder")
        if os.path.exists(os.path.join(directory, MARKER)):
            shutil.rmtree(directory)
        elif os.listdir(directory):
            raise LinksError(
                f"{directory} exists and was not made by 'imagecluster cluster --links': choose a new or empty folder"
            )
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, MARKER), "w") as f:
        f.write("Made by 'imagecluster cluster --links'; replaced on every run.\n")


def _unique_name(folder: str, name: str, taken: set[str]) -> str:
    stem, ext = os.path.splitext(name)
    candidate, n = name, 1
    while candidate in taken:
        n += 1
        candidate = f"{stem}~{n}{ext}"
    taken.add(candidate)
    return os.path.join(folder, candidate)


def make_links(directory: str, clusters: list[list[str]], rest: frozenset[str] = frozenset()) -> int:
    """Link every photo of every cluster (lists of paths, in order), those in ``rest`` in the cluster's
    ``rest/`` folder; returns the link count."""
    _prepare(directory)
    per_size: dict[int, int] = {}
    count = 0
    for paths in clusters:
        index = per_size.get(len(paths), 0)
        per_size[len(paths)] = index + 1
        folder = os.path.join(directory, f"cluster_with_{len(paths)}", f"cluster_{index}")
        os.makedirs(folder)
        taken: dict[str, set[str]] = {folder: set(), os.path.join(folder, "rest"): set()}
        for path in paths:
            where = os.path.join(folder, "rest") if path in rest else folder
            os.makedirs(where, exist_ok=True)
            os.symlink(path, _unique_name(where, os.path.basename(path), taken[where]))
            count += 1
    return count
