"""Verdicts as constraints: the constrained linkage is scipy's without them, and a hierarchy that honours them."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.cluster import hierarchy
from scipy.spatial.distance import pdist

from datasette_imagecluster.engine import components
from datasette_imagecluster.engine.clustering import build_tree, cut_tree
from datasette_imagecluster.engine.constraints import CONSTRAINABLE_METHODS, Constraints, constrained_linkage
from datasette_imagecluster.errors import ClusterError


def partition(labels) -> set[frozenset[int]]:
    found: dict[int, set[int]] = {}
    for position, label in enumerate(labels):
        found.setdefault(int(label), set()).add(position)
    return {frozenset(g) for g in found.values()}


def data(seed: int, n: int = 60) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.random((8, 5))
    return centres[rng.integers(0, 8, n)] + rng.normal(0, 0.05, (n, 5))


@pytest.mark.parametrize("method", CONSTRAINABLE_METHODS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_without_constraints_it_is_scipys_linkage(method, seed):
    d = pdist(data(seed))
    ours = constrained_linkage(d, method, Constraints(), top=2 * d.max() + 1)
    theirs = hierarchy.linkage(d, method=method)
    assert np.allclose(np.sort(ours[:, 2]), np.sort(theirs[:, 2]))
    for t in np.quantile(d, [0.01, 0.05, 0.2, 0.5, 0.9]):
        assert partition(hierarchy.fcluster(ours, t, "distance")) == partition(
            hierarchy.fcluster(theirs, t, "distance")
        )


def random_constraints(rng, n: int, groups: int, pairs: int) -> Constraints:
    positions = rng.permutation(n)
    same = [tuple(sorted(positions[k * 3 : k * 3 + 3].tolist())) for k in range(groups)]
    owner = {p: k for k, g in enumerate(same) for p in g}
    different = set()
    while len(different) < pairs:
        a, b = sorted(rng.choice(n, 2, replace=False).tolist())
        if a not in owner or b not in owner or owner[a] != owner[b]:
            different.add((a, b))
    return Constraints(tuple(same), tuple(sorted(different)))


@pytest.mark.parametrize("method", CONSTRAINABLE_METHODS)
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_with_constraints_every_cut_honours_them_and_heights_never_decrease(method, seed):
    rng = np.random.default_rng(seed)
    d = pdist(data(seed))
    constraints = random_constraints(rng, 60, groups=4, pairs=12)
    top = 2 * d.max() + 1
    z = constrained_linkage(d, method, constraints, top)
    assert z.shape == (59, 4) and z[-1, 3] == 60  # one tree over every photo
    below = z[z[:, 2] < top, 2]
    assert np.all(np.diff(below) >= -1e-12)  # a hierarchy: merge heights never decrease
    for t in [0.0, *np.quantile(d, [0.02, 0.1, 0.3, 0.6, 1.0])]:
        labels = hierarchy.fcluster(z, t, "distance")
        for group in constraints.same:
            assert len({labels[p] for p in group}) == 1
        for a, b in constraints.different:
            assert labels[a] != labels[b]


def test_a_different_verdict_splits_and_a_same_verdict_joins():
    points = np.array([[0.0], [0.1], [0.2], [5.0], [5.1]])
    d = pdist(points)
    plain = partition(hierarchy.fcluster(hierarchy.linkage(d, "average"), 1.0, "distance"))
    assert plain == {frozenset({0, 1, 2}), frozenset({3, 4})}
    apart = constrained_linkage(d, "average", Constraints(different=((0, 2),)), 11.2)
    assert frozenset({0, 1, 2}) not in partition(hierarchy.fcluster(apart, 1.0, "distance"))
    together = constrained_linkage(d, "average", Constraints(same=((2, 3),)), 11.2)
    assert partition(hierarchy.fcluster(together, 0.01, "distance")) >= {frozenset({2, 3})}


def test_methods_without_a_proof_are_refused_in_one_line():
    with pytest.raises(ClusterError, match="verdicts can shape clusterings with the methods"):
        build_tree(data(0), np.zeros(60), method="centroid", constraints=Constraints(different=((0, 1),)))


@pytest.mark.parametrize("method", ["average", "ward", "single"])
def test_one_component_at_a_time_gives_the_same_partitions_with_constraints(method, monkeypatch):
    rng = np.random.default_rng(5)
    vectors = np.abs(data(5, n=400)).astype(np.float32)
    timestamps = rng.random(400) * 1000
    constraints = random_constraints(rng, 400, groups=10, pairs=40)
    full = build_tree(vectors, timestamps, alpha=0.3, method=method, constraints=constraints)
    monkeypatch.setattr(components, "MIN_PHOTOS", 0)
    for sim in (0.7, 0.8, 0.9):
        split = build_tree(vectors, timestamps, alpha=0.3, method=method, sim=sim, constraints=constraints)
        assert split.valid_from_sim == sim  # the component path ran
        assert partition(cut_tree(split, sim)) == partition(cut_tree(full, sim))


@pytest.mark.asyncio
async def test_verdicts_shape_the_cli_the_page_the_json_and_sql_and_survive_a_move(library, tmp_path, runner):
    import json
    import shutil

    from datasette.app import Datasette

    from .conftest import invoke, rows
    from .test_plugin import get, sql

    photos = tmp_path / "photos"
    shutil.copytree(library[1], photos)
    db_path = tmp_path / "photos.db"
    invoke(runner, "import", str(db_path), str(photos), "--weights", "none", "--workers", "0", "-s")
    args = ("--sim", "0.95", "--alpha", "1", "--method", "average")

    async def everywhere() -> list[set[frozenset[int]]]:
        """The clusters as the CLI, the page's JSON, the page and the SQL functions see them."""
        cli = json.loads(invoke(runner, "cluster", str(db_path), *args, "--json").stdout)
        ds = Datasette([str(db_path)])
        page = (await get(ds, "/photos/-/cluster.json?sim=0.95&alpha=1&method=average")).json()
        html = (await get(ds, "/photos/-/cluster?sim=0.95&alpha=1&method=average&page_size=50")).text
        labels = await sql(ds, "select id, imagecluster_label(id, 0.95, 1) as n from images")
        by_label: dict[int, set[int]] = {}
        for row in labels:
            if row["n"] is not None:
                by_label.setdefault(row["n"], set()).add(row["id"])
        from bs4 import BeautifulSoup

        cards = BeautifulSoup(html, "html.parser").select(".imagecluster-card")
        on_page = {frozenset(int(a["href"].rsplit("/", 1)[-1]) for a in card.select("a[title]")) for card in cards}
        as_sets = [{frozenset(i["id"] for i in c["images"]) for c in report["clusters"]} for report in (cli, page)]
        return [*as_sets, on_page, {frozenset(g) for g in by_label.values()}]

    seen = await everywhere()
    plain = seen[0]
    assert all(found == plain for found in seen)
    burst = sorted(max(plain, key=len))  # a burst of 3
    a, b = burst[0], burst[-1]
    loner = next(i for (i,) in rows(db_path, "select id from images order by id") if all(i not in c for c in plain))
    invoke(runner, "verdict", str(db_path), "different", str(a), str(b))
    invoke(runner, "verdict", str(db_path), "same", str(a), str(loner))
    for found in await everywhere():
        assert not any(a in c and b in c for c in found)  # kept apart everywhere
        assert any(a in c and loner in c for c in found)  # joined everywhere
    page = (await get(Datasette([str(db_path)]), "/photos/-/cluster?sim=0.95&alpha=1&method=average")).text
    from bs4 import BeautifulSoup

    names = dict(rows(db_path, "select id, name from images"))
    shaped = [" ".join(v.text.split()) for v in BeautifulSoup(page, "html.parser").select(".imagecluster-verdict")]
    assert f"you said these belong together: {names[min(a, loner)]}, {names[max(a, loner)]}" in shaped
    assert f"you said these two differ: {names[a]}, {names[b]}" in shaped
    # Verdicts are about content: they survive a move of the files and a re-import.
    moved = tmp_path / "moved"
    photos.rename(moved)
    result = invoke(runner, "import", str(db_path), str(moved), "--weights", "none", "--workers", "0", "-s")
    assert "moved 10" in result.output
    assert all(p.startswith(str(moved)) for (p,) in rows(db_path, "select path from images"))
    after = (await everywhere())[0]
    [(a2,)], [(b2,)], [(loner2,)] = (
        rows(db_path, "select id from images where sha256 = (select sha256 from images where id = ?)", (i,))
        for i in (a, b, loner)
    )
    assert not any(a2 in c and b2 in c for c in after) and any(a2 in c and loner2 in c for c in after)
