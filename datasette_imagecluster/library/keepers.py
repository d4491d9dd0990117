"""Keepers inside a clustering's clusters: duplicate tiers, each group's keeper and why, users' choices.

Also why each cluster holds together (engine.cohesion), and the keeper of each whole cluster.

The signals come from the ``photo_quality`` table (measured at import); users' choices from ``keepers``,
keyed by content (SHA-256) like the verdicts, so they survive moves, renames and re-imports and win over the
suggestion. The numbers are :mod:`..engine.keepers`' and :mod:`..engine.cohesion`'s, on arrays.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import numpy as np

from ..engine import keepers as rule
from ..engine.absolute import Mix, clock
from ..engine.cohesion import Cohesion, cohesion
from ..errors import LabelError
from .connections import has_tables, joined_write_transaction
from .schema import IMAGES, KEEPERS, PHOTO_QUALITY

if TYPE_CHECKING:
    from ..engine.parameters import Params
    from .fingerprints import Library

_SIGNALS = ("sharpness", "noise", "highlights", "shadows", "brightness", "compression")


@dataclass(frozen=True)
class Group:
    """Photos of one cluster that show one moment (image ids), and the one to keep."""

    images: list[int]
    tier: str
    keeper: int
    reason: str
    chosen: bool

    @property
    def rest(self) -> list[int]:
        return [i for i in self.images if i != self.keeper]


@dataclass(frozen=True)
class ClusterKeepers:
    """One cluster's tiers, groups and keeper, and what holds it together."""

    number: int  # its position in the clustering, from 1 (the CLI's and the page's numbering)
    images: list[int]
    tiers: dict[str, list[list[int]]]  # each tier's groups of image ids (of two photos or more)
    groups: list[Group]
    keeper: int
    reason: str
    chosen: bool
    why: Cohesion | None
    why_pair: tuple[int, int] | None  # the weakest link as image ids

    def json(self) -> dict[str, Any]:
        why = None
        if self.why is not None:
            why = {
                "content_share": round(self.why.content_share, 3),
                "time_share": round(1 - self.why.content_share, 3),
                "weakest_link": list(self.why_pair),
                "weakest_distance": round(self.why.distance, 4),
                "weakest_seconds": self.why.seconds,
            }
        return {
            "cluster": self.number,
            "size": len(self.images),
            "keeper": self.keeper,
            "reason": self.reason,
            "chosen": self.chosen,
            "tiers": {tier: groups for tier, groups in self.tiers.items() if groups},
            "groups": [
                {
                    "tier": g.tier,
                    "images": g.images,
                    "keeper": g.keeper,
                    "rest": g.rest,
                    "reason": g.reason,
                    "chosen": g.chosen,
                }
                for g in self.groups
            ],
            "why": why,
        }


ROLES = ("cluster keeper", "keeper", "rest", "alone")


def roles(found: list[ClusterKeepers]) -> dict[int, tuple[str, str | None]]:
    """Each photo's (role, tier) in its cluster, as a saved clustering's ``cluster_members`` keeps them: the
    cluster's keeper; the keeper of a group of duplicates or a burst; one of such a group's rest; alone (no
    duplicate, no burst). The tier is its group's."""
    out: dict[int, tuple[str, str | None]] = {}
    for cluster in found:
        tier_of = {i: g.tier for g in cluster.groups for i in g.images}
        keepers = {g.keeper for g in cluster.groups}
        for i in cluster.images:
            role = (
                "cluster keeper"
                if i == cluster.keeper
                else "keeper"
                if i in keepers
                else "rest"
                if i in tier_of
                else "alone"
            )
            out[i] = (role, tier_of.get(i))
    return out


def chosen_hashes(conn: sqlite3.Connection) -> set[str]:
    """The content hashes of the photos users chose to keep."""
    if not has_tables(conn, KEEPERS):
        return set()
    return {row[0] for row in conn.execute(f"select sha256 from {KEEPERS}")}


def _rows(conn: sqlite3.Connection, image_ids: list[int]) -> dict[int, tuple]:
    """(sha256, width x height, pixels_sha256, *signals) per image id (signals None where none were measured)."""
    quality = has_tables(conn, PHOTO_QUALITY)
    columns = ", ".join(f"q.{c}" for c in ("pixels_sha256", *_SIGNALS)) if quality else ""
    join = f"left join {PHOTO_QUALITY} q on q.image_id = i.id" if quality else ""
    out = {}
    for start in range(0, len(image_ids), 500):
        chunk = image_ids[start : start + 500]
        marks = ", ".join("?" * len(chunk))
        select = f"select i.id, i.sha256, coalesce(i.width * i.height, 0){', ' + columns if columns else ''}"
        for row in conn.execute(f"{select} from {IMAGES} i {join} where i.id in ({marks})", chunk):
            out[row[0]] = row[1:] if quality else (*row[1:], None, *(None,) * len(_SIGNALS))
    return out


def _quality(rows: list[tuple]) -> rule.Quality:
    def column(k: int) -> np.ndarray:
        return np.array([np.nan if r[k] is None else r[k] for r in rows], dtype=np.float64)

    signals = {name: column(3 + k) for k, name in enumerate(_SIGNALS)}
    return rule.Quality(**signals, pixels=column(1))


def analyse(
    conn: sqlite3.Connection,
    lib: Library,
    params: Params,
    scale: float | None,
    numbered: list[tuple[int, list[int]]],
) -> list[ClusterKeepers]:
    """Each cluster's tiers, groups, keeper and cohesion, read in the caller's read transaction; ``numbered``:
    (number, image ids) of each cluster, photos of ``lib`` clustered at ``params`` (``scale``: the content
    scale of absolute distances). A photo deleted since it was clustered counts as one without signals."""
    chosen = chosen_hashes(conn)
    rows = _rows(conn, [i for _, members in numbered for i in members])
    times = clock(lib.timestamps, lib.timed)
    mix = Mix(params.alpha, scale, params.tau) if params.absolute and scale else None
    out = []
    for number, members in numbered:
        positions = np.searchsorted(lib.ids, members)
        mine = [rows.get(i) or (f"deleted photo {i}", 0, None, *(None,) * len(_SIGNALS)) for i in members]
        quality = _quality(mine)
        picked = np.array([r[0] in chosen for r in mine])
        vectors = lib.vectors[positions]
        unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        links = rule.tier_links([r[0] for r in mine], [r[2] for r in mine], unit, times[positions])
        groups = rule.groups(links, quality, picked)
        tiers = {tier: _joined(members, links[tier]) for tier in rule.TIERS}
        keeper, reason, by_user = _cluster_keeper(members, groups, quality, picked)
        why = cohesion(vectors, times[positions], mix, params.metric) if mix else None
        out.append(
            ClusterKeepers(
                number,
                members,
                tiers,
                [Group([members[m] for m in g.members], g.tier, members[g.keeper], g.reason, g.chosen) for g in groups],
                keeper,
                reason,
                by_user,
                why,
                (members[why.weakest[0]], members[why.weakest[1]]) if why else None,
            )
        )
    return out


def _joined(members: list[int], pairs: list[tuple[int, int]]) -> list[list[int]]:
    """The groups (image ids, of two or more) that one tier's pairs make."""
    labels = rule.components(len(members), pairs)
    found = [np.flatnonzero(labels == label) for label in np.unique(labels)]
    return [[members[int(k)] for k in group] for group in found if len(group) > 1]


def _cluster_keeper(
    members: list[int], groups: list[rule.Group], quality: rule.Quality, picked: np.ndarray
) -> tuple[int, str, bool]:
    """The cluster's keeper: one the user chose, else the best of its groups' keepers and its lone photos."""
    if picked.any():
        return members[int(np.flatnonzero(picked)[0])], "your choice", True
    grouped = {m for g in groups for m in g.members}
    candidates = np.array(sorted({g.keeper for g in groups} | (set(range(len(members))) - grouped)))
    if len(candidates) == 1:
        only = next((g for g in groups if g.keeper == candidates[0]), None)
        return members[int(candidates[0])], only.reason if only else "the only photo", False
    best = rule.pick(quality.take(candidates))
    return members[int(candidates[best.keeper])], best.reason, False


def choose(
    conn: sqlite3.Connection, numbered: list[tuple[int, list[int]]], image_ids: list[int], also: bool = False
) -> None:
    """Record the user's keepers (by content). Each must be in one of the clusters ``numbered`` ((number, image
    ids) each); a choice replaces the one made before in its cluster unless ``also`` (keep both), and one command
    chooses two photos of one cluster only with ``also``. LabelError, in one line, for what can't stand."""
    image_ids = list(dict.fromkeys(image_ids))
    hashes = _hashes(conn, image_ids)
    members_of = dict(numbered)
    numbers = {i: n for n, members in numbered for i in members}
    first_of: dict[int, int] = {}
    for image_id in image_ids:
        if image_id not in numbers:
            raise LabelError(f"photo {image_id} is in no cluster of this clustering: a keeper is one of a cluster's")
        first = first_of.setdefault(numbers[image_id], image_id)
        if first != image_id and not also:
            raise LabelError(
                f"photos {first} and {image_id} are both in cluster {numbers[image_id]}: "
                "choose one keeper a cluster, or keep both with --also"
            )
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    with joined_write_transaction(conn):
        if not also:  # the cluster's keeper chosen before gives way
            replaced = _hashes(conn, [i for n in first_of for i in members_of[n]])
            conn.executemany(f"delete from {KEEPERS} where sha256 = ?", [(h,) for h in set(replaced.values())])
        conn.executemany(
            f"insert or replace into {KEEPERS} (sha256, created_at) values (?, ?)",
            [(hashes[i], now) for i in image_ids],
        )


def _hashes(conn: sqlite3.Connection, image_ids: list[int]) -> dict[int, str]:
    """Each photo's content hash; LabelError for an id no imported photo has."""
    found: dict[int, str] = {}
    for start in range(0, len(image_ids), 500):
        chunk = image_ids[start : start + 500]
        found.update(
            conn.execute(f"select id, sha256 from {IMAGES} where id in ({', '.join('?' * len(chunk))})", chunk)
        )
    for image_id in image_ids:
        if image_id not in found:
            raise LabelError(f"no imported photo has id {image_id}")
    return found


def forget(conn: sqlite3.Connection, image_ids: list[int]) -> int:
    """Drop the user's choice of these photos (by content); how many choices there were."""
    hashes = set(_hashes(conn, list(dict.fromkeys(image_ids))).values())
    with joined_write_transaction(conn):
        before = conn.total_changes
        conn.executemany(f"delete from {KEEPERS} where sha256 = ?", [(h,) for h in hashes])
        return conn.total_changes - before
