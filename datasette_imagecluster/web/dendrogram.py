"""A dendrogram to use: the top branches of the linkage tree, a cut line to drag, and leaves that link to photos.

The picture is made here and works without a script: each leaf is a link to the first photo of its branch (its
row page), and the cut sits at the page's sim. The page's script (``static/imagecluster.js``) makes the cut
draggable and a keyboard slider that moves the sim slider with it (the live count while dragging, the gallery
on release), and opens the loupe for a leaf whose photo is on the page. What it needs to turn a height into a
sim rides on the ``<svg>`` as data attributes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from markupsafe import Markup, escape
from scipy.cluster import hierarchy

from ..engine.clustering import Tree

WIDTH, HEIGHT, MARGIN = 960, 264, 24
LEFT = 40  # px left of the tree, for the sim axis's labels
TICKS = (0.0, 0.5, 0.8, 0.9, 0.95)  # sims marked on the axis
LEAF_BAND = 28  # px under the tree for the leaves' targets
BASE = HEIGHT - MARGIN - LEAF_BAND  # the y of height 0
# Branches shown. The sim range needs many: on the Holidays photos sim 0 cuts the tree into 31 branches and sim
# 1 into 69, so 30 leaves showed no merge the slider can reach. 60 leaves are 15 px apart; each leaf opens a
# photo the gallery's own links open too (WCAG 2.5.8's exception for an equivalent target of 24 px or more).
LEAVES = 60


@dataclass(frozen=True)
class Leaf:
    """A leaf of the shown tree: a photo, or a branch of photos cut off below (scipy's ``lastp``)."""

    image_id: int  # the branch's first photo, left to right
    count: int  # photos in the branch


@dataclass(frozen=True)
class Dendrogram:
    """The shown tree's coordinates (scipy's ``dendrogram(no_plot=True)``) and its leaves, left to right."""

    shape: dict[str, Any]
    leaves: list[Leaf]

    @classmethod
    def of(cls, tree: Tree, ids: np.ndarray, leaves: int = LEAVES) -> Dendrogram:
        """The top ``leaves`` branches of ``tree``, whose leaves are positions in ``ids`` (image ids)."""
        shape = hierarchy.dendrogram(
            tree.linkage, no_plot=True, truncate_mode="lastp", p=leaves, count_sort="descending"
        )
        n = len(tree.linkage) + 1
        found = []
        for node in shape["leaves"]:
            count = 1 if node < n else int(tree.linkage[node - n, 3])
            while node >= n:  # down the left side to the branch's first photo
                node = int(tree.linkage[node - n, 0])
            found.append(Leaf(int(ids[node]), count))
        return cls(shape, found)

    def svg(self, tree: Tree, sim: float, photos: dict[int, tuple[str, str]]) -> Markup:
        """The picture with the cut at ``sim``; ``photos``: each leaf photo's (file name, row page URL)."""
        icoord, dcoord = self.shape["icoord"], self.shape["dcoord"]
        axis = Axis.of(tree, max((max(d) for d in dcoord), default=0.0))
        right = 10.0 * max(len(self.leaves), 1)

        def x(v: float) -> float:
            return LEFT + v / right * (WIDTH - LEFT - MARGIN)

        paths = "".join(
            f'<path d="M{x(i[0]):.1f},{axis.y(d[0]):.1f} L{x(i[1]):.1f},{axis.y(d[1]):.1f} '
            f'L{x(i[2]):.1f},{axis.y(d[2]):.1f} L{x(i[3]):.1f},{axis.y(d[3]):.1f}"/>'
            for i, d in zip(icoord, dcoord)
        )
        ticks = "".join(
            f'<line x1="{LEFT}" x2="{WIDTH - MARGIN}" y1="{axis.y(tree.threshold(t)):.1f}" '
            f'y2="{axis.y(tree.threshold(t)):.1f}"/><text x="{LEFT - 4}" y="{axis.y(tree.threshold(t)) + 4:.1f}">'
            f"{t:g}</text>"
            for t in TICKS
        )
        pitch = x(10.0) - x(0.0)
        leaves = []
        for k, leaf in enumerate(self.leaves):
            name, url = photos.get(leaf.image_id, (f"photo {leaf.image_id}", ""))
            what = f"{leaf.count} photos, from {name}" if leaf.count > 1 else name
            centre = x(5.0 + 10.0 * k)
            count = f'<text x="{centre:.1f}" y="{BASE + 22}">{leaf.count}</text>' if leaf.count > 1 else ""
            leaves.append(
                f'<a class="imagecluster-leaf" href="{escape(url)}" data-id="{leaf.image_id}">'
                f"<title>{escape(what)}</title>"
                f'<rect x="{centre - pitch / 2:.1f}" y="{BASE}" width="{pitch:.1f}" height="{LEAF_BAND}"/>'
                f'<circle cx="{centre:.1f}" cy="{BASE + 6}" r="3"/>{count}</a>'
            )
        cut = axis.y(tree.threshold(sim))
        label = escape(f"cut at sim {sim:g}")
        return Markup(
            f'<svg class="imagecluster-dendrogram" viewBox="0 0 {WIDTH} {HEIGHT}" role="group" '
            f'aria-label="Dendrogram of the clustering, {label}" xmlns="http://www.w3.org/2000/svg" '
            f'data-base="{BASE}" data-span="{BASE - MARGIN}" data-top="{axis.top:.6g}" '
            f'data-dmax="{tree.dmax:.6g}" data-cut="{cut:.1f}">'
            f'<g class="imagecluster-ticks"><text x="{LEFT - 4}" y="{MARGIN - 8}">sim</text>{ticks}</g>'
            f'<g fill="none" stroke="#456" stroke-width="1">{paths}</g>'
            f'<g class="imagecluster-leaves">{"".join(leaves)}</g>'
            f'<g class="imagecluster-cut" tabindex="0" role="slider" aria-orientation="vertical" '
            f'aria-label="The cut: up for fewer, larger groups; down for more, tighter ones" '
            f'aria-valuemin="0" aria-valuemax="1" aria-valuenow="{1 - sim:.2f}" aria-valuetext="sim {sim:g}">'
            f'<line class="imagecluster-cut-target" x1="{LEFT}" x2="{WIDTH - MARGIN}" y1="{cut:.1f}" '
            f'y2="{cut:.1f}"/>'
            f'<line class="cut" x1="{LEFT}" x2="{WIDTH - MARGIN}" y1="{cut:.1f}" y2="{cut:.1f}" '
            f'stroke="#d33" stroke-dasharray="6 4" stroke-width="1.5"/>'
            f'<text x="{WIDTH - MARGIN}" y="{max(cut - 4, 12):.1f}" text-anchor="end" fill="#d33" '
            f'font-size="12">{label}</text></g></svg>'
        )


@dataclass(frozen=True)
class Axis:
    """Heights on a square-root scale from 0 (the leaves) to ``top``: the sims users cut at (0.3 to 0.95) spread
    over the picture. On a linear scale ward's merges above sim 0's cut pushed the whole sim range into its
    bottom half on the Holidays photos; on a log scale sim 0 to 0.5 took a seventh of it. The page's script
    turns a height into a sim the same way."""

    top: float

    @classmethod
    def of(cls, tree: Tree, highest: float) -> Axis:
        return cls(max(highest, tree.dmax) or 1.0)

    def y(self, height: float) -> float:
        return BASE - math.sqrt(min(max(height, 0.0), self.top) / self.top) * (BASE - MARGIN)
