"""An SVG dendrogram of a linkage tree with the cut line at the current sim."""

from __future__ import annotations

from markupsafe import Markup, escape
from scipy.cluster import hierarchy

from ..engine.clustering import Tree

WIDTH, HEIGHT, MARGIN = 960, 240, 24


def dendrogram_svg(tree: Tree, sim: float, leaves: int = 60) -> Markup:
    """The top ``leaves`` branches of the tree (scipy's ``lastp`` truncation) and the cut."""
    shape = hierarchy.dendrogram(tree.linkage, no_plot=True, truncate_mode="lastp", p=leaves, count_sort="descending")
    icoord, dcoord = shape["icoord"], shape["dcoord"]
    top = max((max(d) for d in dcoord), default=0.0) or tree.dmax or 1.0
    top = max(top, tree.threshold(sim))
    right = max((max(i) for i in icoord), default=10.0) + 5

    def x(v: float) -> float:
        return MARGIN + v / right * (WIDTH - 2 * MARGIN)

    def y(v: float) -> float:
        return HEIGHT - MARGIN - v / top * (HEIGHT - 2 * MARGIN)

    paths = "".join(
        f'<path d="M{x(i[0]):.1f},{y(d[0]):.1f} L{x(i[1]):.1f},{y(d[1]):.1f} '
        f'L{x(i[2]):.1f},{y(d[2]):.1f} L{x(i[3]):.1f},{y(d[3]):.1f}"/>'
        for i, d in zip(icoord, dcoord)
    )
    cut = y(tree.threshold(sim))
    label = escape(f"cut at sim {sim:g}")
    return Markup(
        f'<svg class="imagecluster-dendrogram" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="Dendrogram of the clustering, {label}" xmlns="http://www.w3.org/2000/svg">'
        f'<g fill="none" stroke="#456" stroke-width="1">{paths}</g>'
        f'<line class="cut" x1="{MARGIN}" x2="{WIDTH - MARGIN}" y1="{cut:.1f}" y2="{cut:.1f}" '
        f'stroke="#d33" stroke-dasharray="6 4" stroke-width="1.5"/>'
        f'<text x="{WIDTH - MARGIN}" y="{max(cut - 4, 12):.1f}" text-anchor="end" fill="#d33" '
        f'font-size="12">{label}</text></svg>'
    )
