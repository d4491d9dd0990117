"""Keepers: which photo of a group to keep, and why, from the quality signals alone (arrays in, positions out).

A photographer keeps the sharpest shot that is not worse in some other way. So the rule first sets aside the
shots that lost something the sharpness can't see, each against its own group (what a burst's shots share is
their scene, not a library-wide standard):

- more clipped highlights or shadows than the group's median shot, by more than ``CLIPPING_MARGIN``;
- a brightness outside ``BRIGHTNESS`` times the median's (about one stop either way: more exposure raises
  the contrast, and with it the sharpness, of a worse shot);
- compressed more than ``COMPRESSION_RATIO`` times the group's finest (a heavily re-saved JPEG);
- fewer than ``RESOLUTION_RATIO`` of the largest shot's pixels (a resized copy);

then keeps the sharpest of the others (noise does not pass for sharpness: it raises the floor the sharpness is
measured above, :mod:`importer.photo_quality`). Measured on bursts made from real photos in
``benchmarks/bench_keepers.py`` (docs/quality.md, "Keepers").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

CLIPPING_MARGIN = 0.02  # share of the frame
BRIGHTNESS = (0.75, 1.33)  # times the group's median brightness
COMPRESSION_RATIO = 2.0
RESOLUTION_RATIO = 0.5


@dataclass(frozen=True)
class Quality:
    """The signals of a group's photos, aligned arrays (``photo_quality``'s columns; NaN where unknown)."""

    sharpness: np.ndarray
    noise: np.ndarray
    highlights: np.ndarray
    shadows: np.ndarray
    brightness: np.ndarray
    compression: np.ndarray  # NaN for photos that are not JPEGs
    pixels: np.ndarray  # width x height

    def take(self, rows: np.ndarray) -> Quality:
        return Quality(*(getattr(self, name)[rows] for name in self.__dataclass_fields__))


@dataclass(frozen=True)
class Pick:
    """The keeper of one group: its position in the group, and the reason in words."""

    keeper: int
    reason: str


def _set_aside(q: Quality) -> list[tuple[np.ndarray, str]]:
    """Each rule's verdict (True: set aside) with the words that say it."""
    median_clip = np.nanmedian(q.highlights + q.shadows)
    median_bright = np.nanmedian(q.brightness)
    finest = np.nanmin(q.compression) if np.isfinite(q.compression).any() else np.nan
    return [
        (q.highlights + q.shadows > median_clip + CLIPPING_MARGIN, "more of it clipped"),
        (
            (q.brightness < BRIGHTNESS[0] * median_bright) | (q.brightness > BRIGHTNESS[1] * median_bright),
            "exposed differently from the rest",
        ),
        (q.compression > COMPRESSION_RATIO * finest, "compressed harder"),
        (q.pixels < RESOLUTION_RATIO * np.nanmax(q.pixels), "smaller"),
    ]


def pick(q: Quality) -> Pick:
    """The keeper of a group of two photos or more, and why; photos without signals are never preferred."""
    rules = _set_aside(q)
    known = np.isfinite(q.sharpness)
    eligible = known.copy()
    for aside, _ in rules:
        eligible &= ~np.nan_to_num(aside, nan=False).astype(bool)
    flawed = not eligible.any()
    if flawed:  # every shot lost something: the sharpest of those with signals
        eligible = known
    if not eligible.any():
        return Pick(0, "no quality signals: the first shot")
    sharpness = np.where(eligible, q.sharpness, -np.inf)
    keeper = int(np.argmax(sharpness))
    return Pick(keeper, _reason(q, keeper, eligible, rules, flawed))


def _flaws(rules: list[tuple[np.ndarray, str]], shots: np.ndarray) -> list[str]:
    """The set-aside reasons that hold for any of ``shots``, in the rules' order."""
    return [why for aside, why in rules if np.nan_to_num(aside[shots], nan=False).astype(bool).any()]


def _reason(q: Quality, keeper: int, eligible: np.ndarray, rules: list[tuple[np.ndarray, str]], flawed: bool) -> str:
    """In words: how much sharper the keeper is than the next shot it was weighed against, its clipping, and
    the sharper shots it was preferred to and why."""
    rest = np.isfinite(q.sharpness) & (np.arange(len(eligible)) != keeper)
    sharper = np.flatnonzero(rest & (q.sharpness > q.sharpness[keeper]))
    weighed = np.flatnonzero(rest & eligible) if len(sharper) else np.flatnonzero(rest)
    if len(weighed):
        ratio = 10 ** (q.sharpness[keeper] - q.sharpness[weighed].max())
        lead = f"{ratio:.2f}x the next" if ratio < 1.095 else f"{ratio:.1f}x the next"
        lead = f"sharpest of those without a flaw, {lead}" if len(sharper) else f"sharpest, {lead}"
    else:
        lead = "the only shot without a flaw"
    words = [f"every shot has a flaw: {lead}" if flawed else lead]
    clipped = q.highlights[keeper]
    words.append("no clipped highlights" if clipped < 0.001 else f"{clipped:.1%} of it clipped white")
    if len(sharper):
        count = len(sharper)
        words.append(f"passed over {count} sharper shot{'s' if count > 1 else ''}: {', '.join(_flaws(rules, sharper))}")
    return "; ".join(words)


def bursts(times: np.ndarray, gap: float) -> list[np.ndarray]:
    """Runs of photos shot at most ``gap`` seconds after the one before (positions, in time order), of two
    photos or more; photos without a capture time (NaN) are in none."""
    timed = np.flatnonzero(np.isfinite(times))
    order = timed[np.argsort(times[timed], kind="stable")]
    if len(order) < 2:
        return []
    breaks = np.flatnonzero(np.diff(times[order]) > gap) + 1
    return [run for run in np.split(order, breaks) if len(run) > 1]


# The tiers of likeness inside a cluster, from the strictest; each holds the ones before it but "burst" (time).
TIERS = ("same file", "same pixels", "near duplicate", "burst")
# Cosine distance of two fingerprints at or below which they show the same picture, changed (resized, flipped,
# re-encoded): chosen on EfficientNet-Lite0's fingerprints of imagededup's copies (0.00-0.07 apart, but a
# grayscale copy 0.13 and a 90-degree turn 0.29) against UKBench's other views of one object (0.10 and more
# apart): benchmarks/bench_keepers.py.
NEAR = 0.08
BURST_GAP = 5.0  # seconds between shots of one burst (cameras shoot 3-30 a second; re-framing takes a few)


def components(count: int, pairs: list[tuple[int, int]]) -> np.ndarray:
    """A label per position: positions joined by ``pairs`` share one, labels in the order of their first position."""
    a, b = np.array(pairs, dtype=np.int64).reshape(-1, 2).T
    graph = coo_matrix((np.ones(len(a), np.int8), (a, b)), shape=(count, count))
    return connected_components(graph, directed=False)[1]


def _same(values: list[str | None]) -> list[tuple[int, int]]:
    """Pairs that join the positions sharing a value (None shares nothing): each to the next, enough for
    :func:`components`, and linear in the cluster's size."""
    last: dict[str, int] = {}
    pairs = []
    for position, value in enumerate(values):
        if value is None:
            continue
        if value in last:
            pairs.append((last[value], position))
        last[value] = position
    return pairs


def _near(unit_vectors: np.ndarray, rows: int = 512) -> list[tuple[int, int]]:
    """Pairs of fingerprints (norm 1) at most ``NEAR`` apart in cosine distance, a block of rows of their Gram
    matrix at a time: memory ``rows`` x n, where the pairs' own vectors would take n^2 / 2 x the dimension."""
    n = len(unit_vectors)
    pairs = []
    for start in range(0, n, rows):
        block = 1.0 - unit_vectors[start : start + rows] @ unit_vectors.T <= NEAR
        a, b = np.nonzero(block)
        a += start
        above = a < b
        pairs.extend(zip(a[above].tolist(), b[above].tolist()))
    return pairs


def tier_links(
    file_hashes: list[str], pixel_hashes: list[str | None], unit_vectors: np.ndarray, times: np.ndarray
) -> dict[str, list[tuple[int, int]]]:
    """Pairs of one cluster's photos (positions) that join what each tier joins; ``unit_vectors``: fingerprints
    of norm 1, ``times``: capture times (NaN: none)."""
    links: dict[str, list[tuple[int, int]]] = {
        "same file": _same(list(file_hashes)),
        "same pixels": _same(list(pixel_hashes)),
        "near duplicate": _near(unit_vectors),
        "burst": [],
    }
    for run in bursts(times, BURST_GAP):
        links["burst"].extend((int(a), int(b)) for a, b in zip(run[:-1], run[1:]))
    return links


@dataclass(frozen=True)
class Group:
    """Photos of one cluster that show one moment: duplicates of each other or one burst (positions)."""

    members: list[int]
    tier: str  # the strictest tier that joins them all
    keeper: int
    reason: str
    chosen: bool  # the keeper is the user's choice


def groups(links: dict[str, list[tuple[int, int]]], quality: Quality, chosen: np.ndarray) -> list[Group]:
    """The groups of two photos or more that the tiers make, each with its keeper: a photo the user chose (the
    earliest of them where the user chose several), else :func:`pick`'s; ``chosen``: a bool per position."""
    n = len(chosen)
    joined: list[tuple[int, int]] = []
    by_tier = []  # the components once each tier's links are in, the strictest first
    for tier in TIERS:
        joined.extend(links[tier])
        by_tier.append(components(n, joined))
    labels = by_tier[-1]
    out = []
    for label in np.unique(labels):
        members = [int(m) for m in np.flatnonzero(labels == label)]
        if len(members) < 2:
            continue
        tier = next(t for t, c in zip(TIERS, by_tier) if len(set(c[members].tolist())) == 1)
        mine = [m for m in members if chosen[m]]
        if mine:
            out.append(Group(members, tier, mine[0], "your choice", True))
            continue
        chosen_pick = pick(quality.take(np.array(members)))
        out.append(Group(members, tier, members[chosen_pick.keeper], chosen_pick.reason, False))
    return out
