"""What a verdict changed, in words: which clusters split, which gained photos and from when.

A correct "these two differ" can still glue one half of a cluster onto photos
from another trip; the page says so at once by comparing the clusters before
and after the verdict around the photos it named. Clusters are described by
their size and dates, not by their numbers, which a re-clustering reorders.
"""

from __future__ import annotations

from collections.abc import Iterable

from .display import date_span, file_name


def _what(ids: Iterable[int], photos: dict[int, dict]) -> str:
    """``3 photos from 9 Jul 2006, 09:14–14:03`` (or their names, where they have no capture time)."""
    ids = sorted(ids)
    taken = [photos.get(i, {}).get("taken") for i in ids]
    taken = [t for t in taken if t]
    count = f"{len(ids)} photo{'s' if len(ids) != 1 else ''}"
    if taken:
        return f"{count} from {date_span(min(taken), max(taken))}"
    names = [file_name(photos.get(i, {}).get("path"), i) for i in ids[:3]]
    return f"{count} ({', '.join(names)}{', …' if len(ids) > 3 else ''})"


def describe_effect(
    before: list[list[int]], after: list[list[int]], touched: Iterable[int], photos: dict[int, dict]
) -> list[str]:
    """One sentence per cluster around the ``touched`` photos that changed; ``photos`` holds their rows
    (``path``, ``taken``) as :func:`.gallery.read_photos` reads them."""
    old = [set(c) for c in before]
    new = [set(c) for c in after]
    old_of = {i: k for k, members in enumerate(old) for i in members}
    new_of = {i: k for k, members in enumerate(new) for i in members}
    touched = set(touched)
    lines = []
    for k in sorted({old_of[i] for i in touched if i in old_of}):
        members = old[k]
        landed: dict[int | None, set[int]] = {}
        for i in members:
            landed.setdefault(new_of.get(i), set()).add(i)
        if list(landed) != [None] and len(landed) == 1 and new[next(iter(landed))] == members:
            continue  # the same cluster as before
        if list(landed) == [None]:
            lines.append(f"The cluster of {_what(members, photos)} is gone: its photos are in no cluster now.")
            continue
        parts = []
        for where, moved in sorted(landed.items(), key=lambda item: (item[0] is None, -len(item[1]))):
            if where is None:
                parts.append(f"{_what(moved, photos)} are in no cluster now")
                continue
            joined = new[where] - members
            if joined:
                parts.append(f"{len(moved)} joined {_what(joined, photos)}")
            elif moved == members:
                parts.append(f"it lost no photo and is {len(new[where])} photos now")
            else:
                parts.append(f"{len(moved)} stayed together")
        verb = "split" if len([w for w in landed if w is not None]) > 1 else "changed"
        lines.append(f"The cluster of {_what(members, photos)} {verb}: " + "; ".join(parts) + ".")
    for k in sorted({new_of[i] for i in touched if i in new_of and i not in old_of}):
        lines.append(f"{_what(new[k] & touched, photos)} joined a cluster of {_what(new[k] - touched, photos)}.")
    return lines or ["No cluster around these photos changed at these settings."]
