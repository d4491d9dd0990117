"""Labels as values: groups of photos known to belong together and pairs known to differ, made consistent.

The database's readers (:mod:`datasette_imagecluster.library.known_labels`)
build them; tune scores clusterings against them and the constraints keep them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ..errors import LabelError


@dataclass(frozen=True)
class Labels:
    """Groups of image ids known to belong together, and pairs known to differ.

    A one-photo group says that photo belongs with no other labelled photo.
    Groups are disjoint (:func:`merge` makes them so).
    """

    groups: tuple[frozenset[int], ...]
    different: frozenset[tuple[int, int]] = frozenset()
    sources: tuple[str, ...] = ()

    @property
    def positive_pairs(self) -> int:
        return sum(len(g) * (len(g) - 1) // 2 for g in self.groups)

    def describe(self) -> str:
        what = " and ".join(self.sources) if self.sources else "labels"
        return f"{self.positive_pairs} labelled pairs from {what}"

    def subset(self, groups: Iterable[int]) -> Labels:
        """Only the groups at these positions, and the differences among their photos."""
        kept = tuple(self.groups[i] for i in groups)
        photos = frozenset().union(*kept) if kept else frozenset()
        return Labels(kept, frozenset(p for p in self.different if p[0] in photos and p[1] in photos), self.sources)


def merge(
    groups: Iterable[Iterable[int]], different: Iterable[tuple[int, int]] = (), sources: Sequence[str] = ()
) -> Labels:
    """Labels from overlapping groups (belonging together is transitive) and differences.

    Raises LabelError naming the photos when a difference joins two photos
    that the groups put together.
    """
    parent: dict[int, int] = {}

    def find(x: int) -> int:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for group in groups:
        members = list(group)
        for member in members:
            find(member)
        for a, b in zip(members, members[1:]):
            parent[find(a)] = find(b)
    merged: dict[int, set[int]] = {}
    for photo in parent:
        merged.setdefault(find(photo), set()).add(photo)
    pairs = set()
    for a, b in different:
        if a == b:
            raise LabelError(f"photo {a} can't be different from itself")
        if a in parent and b in parent and find(a) == find(b):
            raise LabelError(
                f"conflicting labels: photos {min(a, b)} and {max(a, b)} are marked different, "
                "but other labels put them together"
            )
        pairs.add((min(a, b), max(a, b)))
    ordered = tuple(sorted((frozenset(g) for g in merged.values()), key=min))
    return Labels(ordered, frozenset(pairs), tuple(sources))
