"""What changed between two saved versions of a clustering (``imagecluster diff``).

Each cluster of either version falls in one category, by its number (stable
across saves, :mod:`.saved`) and by where its photos went:

* ``unchanged``: the same number and the same photos;
* ``grew`` / ``shrank`` / ``changed``: the same number, with photos added, removed, or both;
* ``split``: an old cluster whose photos now sit in two or more clusters;
* ``merged``: a new cluster holding photos of two or more old clusters;
* ``new``: a new cluster none of whose photos was in a cluster before;
* ``dissolved``: an old cluster none of whose photos is in a cluster now.

A cluster that keeps its number but also split or merged is reported as
split or merged, which says more.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from .saved import Saved

KINDS = ("unchanged", "grew", "shrank", "changed", "split", "merged", "new", "dissolved")


@dataclass
class Change:
    kind: str
    before: list[int]  # numbers of the old clusters involved
    after: list[int]  # numbers of the new clusters involved
    size_before: int
    size_after: int
    added: list[int] = field(default_factory=list)  # photos that joined
    removed: list[int] = field(default_factory=list)  # photos that left


@dataclass
class Diff:
    name: str
    version_before: int
    version_after: int
    changes: list[Change]

    def counts(self) -> dict[str, int]:
        return {kind: sum(1 for c in self.changes if c.kind == kind) for kind in KINDS}

    def moved(self) -> list[int]:
        """Every photo that joined or left a cluster, once."""
        return sorted({i for c in self.changes for i in (*c.added, *c.removed)})

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version_before": self.version_before,
            "version_after": self.version_after,
            "counts": self.counts(),
            "changes": [asdict(c) for c in self.changes if c.kind != "unchanged"],
        }


def diff(before: Saved, after: Saved) -> Diff:
    old, new = before.clusters(), after.clusters()
    old_of = {i: n for n, members in old.items() for i in members}
    new_of = {i: n for n, members in new.items() for i in members}
    came_from = {n: sorted({old_of[i] for i in members if i in old_of}) for n, members in new.items()}
    changes: list[Change] = []
    for number in sorted(old):
        members = old[number]
        landed = sorted({new_of[i] for i in members if i in new_of})
        if not landed:
            changes.append(Change("dissolved", [number], [], len(members), 0, removed=sorted(members)))
        elif len(landed) > 1:
            left = sorted(i for i in members if new_of.get(i) != number)
            changes.append(Change("split", [number], landed, len(members), sum(len(new[n]) for n in landed), [], left))
        elif landed != [number] and len(came_from[landed[0]]) == 1:  # it goes on, less than half of it, renumbered
            target = new[landed[0]]
            changes.append(
                Change(
                    "changed",
                    [number],
                    landed,
                    len(members),
                    len(target),
                    sorted(target - members),
                    sorted(members - target),
                )
            )
    split = {n for c in changes if c.kind == "split" for n in c.before}
    for number in sorted(new):
        members, sources = new[number], came_from[number]
        if len(sources) > 1:
            joined = sorted(i for i in members if old_of.get(i) != number)
            changes.append(Change("merged", sources, [number], sum(len(old[n]) for n in sources), len(members), joined))
        elif not sources:
            changes.append(Change("new", [], [number], 0, len(members), added=sorted(members)))
        elif sources == [number] and number not in split:
            added, removed = sorted(members - old[number]), sorted(old[number] - members)
            kind = (
                "unchanged"
                if not (added or removed)
                else "grew"
                if not removed
                else "shrank"
                if not added
                else "changed"
            )
            changes.append(Change(kind, [number], [number], len(old[number]), len(members), added, removed))
    return Diff(before.name, before.version, after.version, changes)
