"""The Datasette plugin through Datasette's own ASGI client: routes, functions, permissions, errors."""

from __future__ import annotations

import json
import shutil
import sqlite3
from urllib.parse import quote

import numpy as np
import pytest
import sqlite_utils
from bs4 import BeautifulSoup
from datasette.app import Datasette

from datasette_imagecluster.library import caches
from datasette_imagecluster.library.vectors import encode
from importer.pipeline import ImportOptions, run_import

from .conftest import invoke, save_jpeg, scene
from .test_clustering import reference_partition
from .test_datasette_native import assert_extends_base

IS_1_0 = not hasattr(Datasette, "permission_allowed")


def make_ds(*paths, **kwargs) -> Datasette:
    return Datasette([str(p) for p in paths], **kwargs)


async def get(ds, path, **kwargs):
    return await ds.client.get(path, follow_redirects=kwargs.pop("follow_redirects", True), **kwargs)


async def sql(ds, query, status=200):
    response = await get(ds, "/photos.json?_shape=array&sql=" + quote(query))
    assert response.status_code == status, response.text
    return response.json() if status == 200 else response


def partition(report):
    return {frozenset(i["id"] for i in c["images"]) for c in report["clusters"]}


def library_arrays(db_path):
    conn = sqlite3.connect(db_path)
    rows = conn.execute(
        "select i.id, i.timestamp, f.vector from images i join fingerprints f on f.image_id = i.id order by i.id"
    ).fetchall()
    conn.close()
    ids = np.array([r[0] for r in rows])
    return ids, np.array([r[1] for r in rows]), np.stack([np.frombuffer(r[2], "<f4") for r in rows])


# -- registration and links ---------------------------------------------------


@pytest.mark.asyncio
async def test_plugin_is_registered_with_its_hooks(db_path):
    response = await get(make_ds(db_path), "/-/plugins.json")
    plugins = response.json()
    plugins = plugins if isinstance(plugins, list) else plugins.get("plugins", [])
    ours = [p for p in plugins if p["name"] == "datasette-imagecluster"][0]
    assert {
        "prepare_connection",
        "register_routes",
        "render_cell",
        "menu_links",
        "table_actions",
        "database_actions",
    } <= set(ours["hooks"])
    assert ours["static"] and ours["templates"]


@pytest.mark.asyncio
async def test_menu_database_and_table_actions_link_to_the_page(db_path):
    ds = make_ds(db_path)
    home = (await get(ds, "/")).text
    assert 'href="/-/cluster"' in home
    assert 'href="/photos/-/cluster"' in (await get(ds, "/photos")).text
    images = (await get(ds, "/photos/images")).text
    assert "Cluster these photos" in images


@pytest.mark.asyncio
async def test_index_redirects_to_the_first_database_with_fingerprints(db_path, tmp_path):
    other = tmp_path / "other.db"
    sqlite_utils.Database(other)["t"].insert({"a": 1})
    ds = make_ds(other, db_path)
    response = await get(ds, "/-/cluster?sim=0.7", follow_redirects=False)
    assert response.status_code == 302
    assert response.headers["location"] == "/photos/-/cluster?sim=0.7"
    lonely = make_ds(other)
    response = await get(lonely, "/-/cluster")
    assert response.status_code == 404 and "No database here has photo fingerprints" in response.text


@pytest.mark.asyncio
async def test_base_url_is_respected_everywhere(db_path):
    ds = make_ds(db_path, settings={"base_url": "/prefix/"})
    response = await get(ds, "/-/cluster", follow_redirects=False)
    assert response.headers["location"] == "/prefix/photos/-/cluster"
    page = (await get(ds, "/photos/-/cluster?sim=0.9")).text
    soup = BeautifulSoup(page, "html.parser")
    links = [a["href"] for a in soup.select(".imagecluster-card a")] + [i["src"] for i in soup.select("img")]
    assert links and all(link.startswith("/prefix/") for link in links), links
    assert soup.select_one("form.imagecluster-form")["action"] == "/prefix/photos/-/cluster"


# -- the page and its JSON ----------------------------------------------------


@pytest.mark.asyncio
async def test_page_shows_summary_dendrogram_and_cards(db_path):
    ds = make_ds(db_path)
    response = await get(ds, "/photos/-/cluster?sim=0.9&alpha=0.5")
    assert response.status_code == 200
    soup = BeautifulSoup(response.text, "html.parser")
    report = (await get(ds, "/photos/-/cluster.json?sim=0.9&alpha=0.5")).json()
    cards = soup.select(".imagecluster-card")
    assert len(cards) == len(report["clusters"]) > 0
    first = cards[0]
    assert first["data-size"] == str(report["clusters"][0]["size"])
    thumbs = first.select("img")
    assert all(img["loading"] == "lazy" for img in thumbs)
    assert [a["href"] for a in first.select(".imagecluster-thumbs a")] == [
        f"/photos/images/{i['id']}" for i in report["clusters"][0]["images"]
    ]
    table_link = first.select_one(".imagecluster-links a")["href"]
    assert table_link.startswith("/photos/images?id__in=")
    assert "random weights" in soup.select_one(".message-warning").text
    svg = soup.select_one("svg.imagecluster-dendrogram")
    assert svg.select_one("line.cut") is not None
    # Each leaf links to the first photo of its branch; the branches hold every photo once.
    leaves = svg.select("a.imagecluster-leaf")
    assert 0 < len(leaves) <= 60
    assert all(leaf["href"] == f"/photos/images/{leaf['data-id']}" for leaf in leaves)
    counts = [int(leaf.select_one("text").text) if leaf.select_one("text") else 1 for leaf in leaves]
    assert sum(counts) == report["n_images"]
    # The cut is a slider at the page's sim, placed on the axis the script reads back.
    cut = svg.select_one(".imagecluster-cut")
    assert cut["role"] == "slider" and cut["aria-valuetext"] == "sim 0.9"
    share = ((float(svg["data-dmax"]) * (1 - 0.9)) / float(svg["data-top"])) ** 0.5
    assert float(svg["data-cut"]) == pytest.approx(float(svg["data-base"]) - share * float(svg["data-span"]), abs=0.1)
    stats = [[int(td.text) for td in tr.select("td")] for tr in soup.select(".imagecluster-stats tbody tr")]
    assert stats == [[s["size"], s["clusters"]] for s in report["stats"]]
    assert soup.select_one("input[name=sim]")["value"] == "0.9"


@pytest.mark.asyncio
async def test_a_card_names_each_photos_camera_and_the_json_stays_as_it_is(db_path):
    """A field the cards show (the camera) is the gallery's own: the CLI's and the page's JSON don't change."""
    ds = make_ds(db_path)
    before = (await get(ds, "/photos/-/cluster.json?sim=0.9&alpha=0.5")).json()
    first = before["clusters"][0]["images"][0]["id"]
    with sqlite3.connect(db_path) as conn:
        conn.execute("update images set camera_make = 'Canon', camera_model = 'Canon EOS 5D' where id = ?", (first,))
    soup = BeautifulSoup((await get(ds, "/photos/-/cluster?sim=0.9&alpha=0.5")).text, "html.parser")
    title = soup.select_one(f'.imagecluster-thumbs a[href="/photos/images/{first}"]')["title"]
    assert title.endswith(" · Canon EOS 5D") and "Canon Canon" not in title
    assert (await get(ds, "/photos/-/cluster.json?sim=0.9&alpha=0.5")).json() == before


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "sim, alpha, method", [(0.5, 0.3, "average"), (0.9, 1.0, "single"), (0.8, 0.0, "ward"), (0.95, 0.5, "complete")]
)
async def test_json_equals_the_cli_and_the_reference(db_path, runner, sim, alpha, method):
    ds = make_ds(db_path)
    report = (await get(ds, f"/photos/-/cluster.json?sim={sim}&alpha={alpha}&method={method}")).json()
    out = invoke(runner, "cluster", db_path, "--sim", sim, "--alpha", alpha, "--method", method, "--json").output
    cli = json.loads(out[out.index("{") : out.rindex("}") + 1])
    for c in report["clusters"]:
        for image in c["images"]:
            assert image.pop("thumbnail") == f"/photos/-/cluster/thumbnail/{image['id']}.jpg"
    assert report == cli
    ids, timestamps, vectors = library_arrays(db_path)
    assert partition(report) == reference_partition(vectors, timestamps, ids, sim, alpha, method, "euclidean")


@pytest.mark.asyncio
async def test_pagination_keeps_the_parameters(db_path):
    ds = make_ds(db_path, metadata={"plugins": {"datasette-imagecluster": {"page_size": 1}}})
    report = (await get(ds, "/photos/-/cluster.json?sim=0.95&alpha=1")).json()
    assert len(report["clusters"]) >= 2
    soup = BeautifulSoup((await get(ds, "/photos/-/cluster?sim=0.95&alpha=1")).text, "html.parser")
    assert len(soup.select(".imagecluster-card")) == 1
    next_url = soup.select_one("a[rel=next]")["href"]
    assert "sim=0.95" in next_url and "alpha=1.0" in next_url and "page=2" in next_url
    second = BeautifulSoup((await get(ds, next_url)).text, "html.parser")
    assert second.select_one("h2").text.startswith("Cluster 2")


@pytest.mark.asyncio
async def test_configured_defaults_apply(db_path):
    ds = make_ds(
        db_path, metadata={"plugins": {"datasette-imagecluster": {"sim": 0.95, "alpha": 1.0, "method": "complete"}}}
    )
    report = (await get(ds, "/photos/-/cluster.json")).json()
    assert (report["params"]["sim"], report["params"]["alpha"], report["params"]["method"]) == (0.95, 1.0, "complete")


@pytest.mark.asyncio
async def test_moving_sim_recuts_the_cached_tree_and_reimport_invalidates_it(db_path, library):
    ds = make_ds(db_path)
    await get(ds, "/photos/-/cluster.json?sim=0.5&alpha=0.4")
    cached = [k for k in caches.trees._items if k[1] == 0.4 and k[0][0] == str(db_path)]
    assert len(cached) == 1
    tree = caches.trees.peek(cached[0])
    await get(ds, "/photos/-/cluster.json?sim=0.9&alpha=0.4")
    assert caches.trees.peek(cached[0]) is tree
    assert len([k for k in caches.trees._items if k[1] == 0.4 and k[0][0] == str(db_path)]) == 1
    save_jpeg(library[1] / "extra" / "new.jpg", scene(11), taken="2024:01:01 00:00:00")
    try:
        run_import(str(db_path), [str(library[1])], ImportOptions(weights="none", workers=0))
    finally:
        shutil.rmtree(library[1] / "extra")
    report = (await get(ds, "/photos/-/cluster.json?sim=0.9&alpha=0.4")).json()
    assert report["n_images"] == 11
    assert len([k for k in caches.trees._items if k[1] == 0.4 and k[0][0] == str(db_path)]) == 2


@pytest.mark.asyncio
async def test_sql_subset_clusters_only_those_photos(db_path):
    ds = make_ds(db_path)
    query = quote("select id from images where folder like '%burst0' or folder like '%burst1'")
    report = (await get(ds, f"/photos/-/cluster.json?sim=0.5&alpha=0.5&sql={query}")).json()
    assert report["n_images"] == 6
    page = await get(ds, f"/photos/-/cluster?sql={query}")
    assert page.status_code == 200 and "of 6 photos" in page.text


# -- bad input ----------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "query, message",
    [
        ("sim=abc", "sim must be a number"),
        ("sim=1.5", "sim must be between 0 and 1"),
        ("sim=nan", "sim must be between 0 and 1"),
        ("alpha=-1", "alpha must be between 0 and 1"),
        ("alpha=inf", "alpha must be between 0 and 1"),
        ("method=kmeans", "unknown method"),
        ("metric=nope", "unknown metric"),
        ("method=ward&metric=cosine", "only defined for the euclidean metric"),
        ("min_csize=0", "min_csize must be at least 1"),
        ("min_csize=x", "min_csize must be a whole number"),
        ("pca=2.5", "variance fraction"),
        ("page=zero", "page must be a whole number"),
        ("model=resnet", "no fingerprints match"),
        ("sim=%27%3B%20drop%20table%20images", "sim must be a number"),
    ],
)
async def test_bad_parameters_are_400_in_html_and_json(db_path, query, message):
    ds = make_ds(db_path)
    as_json = await get(ds, f"/photos/-/cluster.json?{query}")
    assert as_json.status_code == 400 and message in as_json.json()["error"]
    html = await get(ds, f"/photos/-/cluster?{query}")
    assert html.status_code == 400
    soup = BeautifulSoup(html.text, "html.parser")
    assert message in soup.select_one(".imagecluster-error").text
    assert soup.select_one("form.imagecluster-form") is not None


@pytest.mark.asyncio
async def test_missing_empty_and_foreign_databases(db_path, tmp_path):
    plain = tmp_path / "plain.db"
    sqlite_utils.Database(plain)["t"].insert({"a": 1})
    empty = tmp_path / "empty.db"
    from datasette_imagecluster.library.schema import ensure_schema

    ensure_schema(sqlite_utils.Database(empty))
    ds = make_ds(db_path, plain, empty)
    for path in (
        "/nowhere/-/cluster",
        "/nowhere/-/cluster.json",
        "/plain/-/cluster.json",
        "/empty/-/cluster.json",
        "/plain/-/cluster/thumbnail/1.jpg",
        "/photos/-/cluster/thumbnail/999.jpg",
        "/photos/-/cluster/thumbnail/abc.jpg",
    ):
        response = await get(ds, path)
        assert response.status_code == 404, path
    assert "no fingerprints" in (await get(ds, "/empty/-/cluster.json")).json()["error"].lower()


@pytest.mark.asyncio
async def test_mixed_dimensions_are_400(db_path):
    conn = sqlite3.connect(db_path)
    conn.execute("update fingerprints set vector = ?, dims = 3 where image_id = 1", (encode(np.ones(3)),))
    conn.commit()
    conn.close()
    response = await get(make_ds(db_path), "/photos/-/cluster.json")
    assert response.status_code == 400 and "mixed dimensions" in response.json()["error"]


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "damage, message",
    [
        ("cut short", "the fingerprint of image 1 is not {dims} float32 values: re-import it"),
        ("NaN in one", "the fingerprint of image 1 holds NaN or infinite values: re-import it"),
        ("infinity in two", "the fingerprints of images 1, 2 hold NaN or infinite values: re-import them"),
    ],
)
async def test_damaged_fingerprints_are_400_naming_the_images(db_path, damage, message):
    conn = sqlite3.connect(db_path)
    (blob,) = conn.execute("select vector from fingerprints where image_id = 1").fetchone()
    vector = np.frombuffer(blob, np.float32).copy()
    vector[0] = np.nan if damage == "NaN in one" else np.inf
    blobs = {"cut short": {1: blob[:-4]}, "NaN in one": {1: encode(vector)}}.get(
        damage, {1: encode(vector), 2: encode(vector)}
    )
    for image_id, damaged in blobs.items():
        conn.execute("update fingerprints set vector = ? where image_id = ?", (damaged, image_id))
    conn.commit()
    conn.close()
    response = await get(make_ds(db_path), "/photos/-/cluster.json")
    assert response.status_code == 400
    assert message.format(dims=len(blob) // 4) in response.json()["error"]


# -- thumbnails and similar photos ----------------------------------------------


@pytest.mark.asyncio
async def test_thumbnails_are_jpeg_with_etag_and_cache_headers(db_path):
    ds = make_ds(db_path)
    response = await get(ds, "/photos/-/cluster/thumbnail/1.jpg")
    assert response.status_code == 200 and response.headers["content-type"] == "image/jpeg"
    assert response.content[:3] == b"\xff\xd8\xff"
    assert "max-age" in response.headers["cache-control"]
    again = await get(ds, "/photos/-/cluster/thumbnail/1.jpg", headers={"if-none-match": response.headers["etag"]})
    assert again.status_code == 304 and again.content == b""


@pytest.mark.asyncio
async def test_thumbnail_cells_render_as_images(db_path):
    page = (await get(make_ds(db_path), "/photos/thumbnails")).text
    soup = BeautifulSoup(page, "html.parser")
    srcs = [img["src"] for img in soup.select("td img")]
    assert "/photos/-/cluster/thumbnail/1.jpg" in srcs


@pytest.mark.asyncio
async def test_similar_photos_json_and_row_page_hook(db_path):
    ds = make_ds(db_path)
    data = (await get(ds, "/photos/-/cluster/similar/1.json?k=3")).json()
    assert len(data["similar"]) == 3 and data["similar"][0]["distance"] <= data["similar"][1]["distance"]
    assert all(item["id"] != 1 for item in data["similar"])
    ids, _, vectors = library_arrays(db_path)
    d = np.linalg.norm(vectors.astype(float) - vectors[0].astype(float), axis=1)
    assert [s["id"] for s in data["similar"]] == [int(ids[i]) for i in np.argsort(d)[1:4]]
    row = (await get(ds, "/photos/images/1")).text
    assert "/photos/-/cluster/similar/1.json" in row and "imagecluster.js" in row
    for bad in ("k=0", "k=abc", "k=1000"):
        assert (await get(ds, f"/photos/-/cluster/similar/1.json?{bad}")).status_code == 400


# -- SQL functions --------------------------------------------------------------


@pytest.mark.asyncio
async def test_vector_functions(db_path):
    ds = make_ds(db_path)
    ids, _, vectors = library_arrays(db_path)
    rows = await sql(
        ds,
        "select imagecluster_distance(a.vector, b.vector) as e, "
        "imagecluster_distance(a.vector, b.vector, 'cityblock') as c, "
        "imagecluster_similarity(a.vector, b.vector) as s, imagecluster_dims(a.vector) as d, "
        "imagecluster_vector(a.vector) as v from fingerprints a, fingerprints b "
        "where a.image_id = 1 and b.image_id = 2",
    )
    a, b = vectors[0].astype(float), vectors[1].astype(float)
    assert rows[0]["e"] == pytest.approx(np.linalg.norm(a - b))
    assert rows[0]["c"] == pytest.approx(np.abs(a - b).sum())
    assert rows[0]["s"] == pytest.approx(a @ b / np.linalg.norm(a) / np.linalg.norm(b))
    assert rows[0]["d"] == 4096 and json.loads(rows[0]["v"]) == pytest.approx(a.tolist())


@pytest.mark.asyncio
async def test_cluster_functions_match_the_page(db_path):
    ds = make_ds(db_path)
    report = (await get(ds, "/photos/-/cluster.json?sim=0.9&alpha=0.5")).json()
    rows = await sql(ds, "select value from json_each(imagecluster_clusters(0.9, 0.5))")
    assert [json.loads(r["value"]) for r in rows] == [[i["id"] for i in c["images"]] for c in report["clusters"]]
    labels = await sql(
        ds, "select imagecluster_label(id, 0.9, 0.5) as label, count(*) as n from images group by label order by label"
    )
    expected = sorted(
        [(None, 10 - report["n_clustered"])] + [(n, c["size"]) for n, c in enumerate(report["clusters"], 1)],
        key=lambda x: (x[0] is not None, x[0] or 0),
    )
    assert [(r["label"], r["n"]) for r in labels if r["n"]] == [e for e in expected if e[1]]
    similar = await sql(ds, "select imagecluster_similar(1, 2) as s")
    page = (await get(ds, "/photos/-/cluster/similar/1.json?k=2")).json()
    assert [i for i, _ in json.loads(similar[0]["s"])] == [s["id"] for s in page["similar"]]
    single = await sql(ds, "select value from json_each(imagecluster_clusters(0.95, 1, 2, 'single', 'cityblock'))")
    assert single


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "query",
    [
        "select imagecluster_dims(x'00')",
        "select imagecluster_distance(x'0000803f', x'0000803f00000040')",
        "select imagecluster_distance(vector, vector, 'nope') from fingerprints",
        "select imagecluster_clusters(2, 0.3)",
        "select imagecluster_clusters(0.5, 'x')",
        "select imagecluster_clusters(0.5, 0.3, 2, 'average', 'euclidean', '1h', 'absolute', 7)",
        "select imagecluster_label(1, 0.5)",
        "select imagecluster_label(1, 0.5, 9)",
        "select imagecluster_similar(1, 0)",
    ],
)
async def test_bad_function_arguments_are_sql_errors_not_crashes(db_path, query):
    response = await sql(make_ds(db_path), query, status=400)
    assert "raised exception" in response.text or "error" in response.text.lower()


# -- permissions and published copies -------------------------------------------


DENY_DATABASE = {"databases": {"photos": {"allow": {"id": "root"}}}}
DENY_THUMBNAILS = {"databases": {"photos": {"tables": {"thumbnails": {"allow": {"id": "root"}}}}}}
PROTECTED = [
    "/photos/-/cluster",
    "/photos/-/cluster.json",
    "/photos/-/cluster/thumbnail/1.jpg",
    "/photos/-/cluster/similar/1.json",
]


def _with_permissions(db_path, rules):
    return make_ds(db_path, config=rules) if IS_1_0 else make_ds(db_path, metadata=rules)


@pytest.mark.asyncio
@pytest.mark.parametrize("path", PROTECTED)
async def test_a_denied_actor_gets_403_and_no_data(db_path, path):
    ds = _with_permissions(db_path, DENY_DATABASE)
    response = await get(ds, path)
    assert response.status_code == 403
    assert b"\xff\xd8" not in response.content and "burst" not in response.text
    root = {"ds_actor": ds.sign({"a": {"id": "root"}}, "actor")}
    assert (await get(ds, path, cookies=root)).status_code == 200


@pytest.mark.asyncio
async def test_denied_thumbnails_table_hides_thumbnails(db_path):
    ds = _with_permissions(db_path, DENY_THUMBNAILS)
    assert (await get(ds, "/photos/-/cluster/thumbnail/1.jpg")).status_code == 403
    assert (await get(ds, "/photos/-/cluster.json")).status_code == 200


@pytest.mark.asyncio
async def test_sql_subset_needs_execute_sql(db_path):
    rules = {"databases": {"photos": {"allow_sql": {"id": "root"}}}}
    ds = _with_permissions(db_path, rules)
    response = await get(ds, "/photos/-/cluster.json?sql=" + quote("select id from images"))
    assert response.status_code == 403
    page = (await get(ds, "/photos/-/cluster")).text
    assert 'name="sql"' not in page
    assert (await get(ds, "/photos/-/cluster.json")).status_code == 200


@pytest.mark.asyncio
async def test_immutable_copy_without_originals_serves_every_thumbnail(library, tmp_path):
    db, photos = library
    published = tmp_path / "published" / "photos.db"
    published.parent.mkdir()
    shutil.copy(db, published)
    moved = tmp_path / "gone"
    shutil.move(str(photos), moved)  # the originals are not where the database says
    try:
        before = published.read_bytes()
        ds = Datasette(immutables=[str(published)])
        report = (await get(ds, "/photos/-/cluster.json?sim=0.5")).json()
        assert report["n_images"] == 10
        ids = [r[0] for r in sqlite3.connect(published).execute("select id from images")]
        for image_id in ids:
            response = await get(ds, f"/photos/-/cluster/thumbnail/{image_id}.jpg")
            assert response.status_code == 200 and response.content[:2] == b"\xff\xd8"
        page = await get(ds, "/photos/-/cluster")
        assert page.status_code == 200
        assert published.read_bytes() == before
    finally:
        shutil.move(str(moved), photos)


@pytest.mark.asyncio
async def test_several_fingerprint_sets_are_offered_and_chosen(db_path):
    conn = sqlite3.connect(db_path)
    conn.execute(
        "insert into fingerprints (image_id, model, layer, weights, dims, vector) "
        "select image_id, model, 'fc1', weights, 3, ? from fingerprints",
        (encode(np.ones(3)),),
    )
    conn.commit()
    conn.close()
    ds = make_ds(db_path)
    response = await get(ds, "/photos/-/cluster.json")  # the largest set (a tie: by name)
    assert response.status_code == 200 and response.json()["params"]["layer"] == "fc1"
    page = BeautifulSoup((await get(ds, "/photos/-/cluster?layer=fc2")).text, "html.parser")
    options = {o["value"]: o.has_attr("selected") for o in page.select("select[name=set] option")}
    assert options == {"vgg16|fc1|random-seed-0": False, "vgg16|fc2|random-seed-0": True}
    chosen = (await get(ds, "/photos/-/cluster.json?set=" + quote("vgg16|fc1|random-seed-0"))).json()
    assert chosen["params"]["layer"] == "fc1"
    bad = await get(ds, "/photos/-/cluster.json?set=nonsense")
    assert bad.status_code == 400


@pytest.mark.asyncio
async def test_component_trees_are_rebuilt_for_a_lower_sim(db_path, monkeypatch):
    from datasette_imagecluster.engine import components

    monkeypatch.setattr(components, "MIN_PHOTOS", 0)
    ds = make_ds(db_path)
    ids, timestamps, vectors = library_arrays(db_path)
    for sim in (0.9, 0.95, 0.6, 0.9):
        url = f"/photos/-/cluster.json?sim={sim}&alpha=0.6&method=average&distance=imagecluster"
        report = (await get(ds, url)).json()
        assert partition(report) == reference_partition(vectors, timestamps, ids, sim, 0.6, "average", "euclidean")
    keys = [k for k in caches.trees._items if k[1] == 0.6 and k[0][0] == str(db_path)]
    assert len(keys) == 1 and caches.trees.peek(keys[0]).valid_from_sim in (0.0, 0.6)
    rows = await sql(
        ds, "select value from json_each(imagecluster_clusters(0.5, 0.6, 2, 'average', null, null, 'imagecluster'))"
    )
    expected = reference_partition(vectors, timestamps, ids, 0.5, 0.6, "average", "euclidean")
    assert {frozenset(json.loads(r["value"])) for r in rows} == expected


@pytest.mark.asyncio
async def test_a_long_clustering_answers_computing_then_the_clusters(db_path):
    import asyncio

    ds = make_ds(db_path, metadata={"plugins": {"datasette-imagecluster": {"wait_seconds": 0}}})
    url = "/photos/-/cluster.json?sim=0.8&alpha=0.123"
    first = await get(ds, url)
    body = first.json()  # core's fields keep their meaning: status is the HTTP status
    assert first.status_code == 202 and body["status"] == 202 and body["computing"] is True and not body["ok"]
    assert first.headers["retry-after"] == "2" and body["retry_after"] == 2
    page = await get(ds, url.replace(".json", "").replace("0.123", "0.124"))
    assert page.status_code == 202 and 'http-equiv="refresh"' in page.text
    stands = ("Computing for ", "Waiting for ", "It has just finished.")  # the last: done since the wait ended
    assert any(words in page.text for words in stands)  # where its build stands
    assert_extends_base(page.text)  # the site's chrome, not a bare page
    for _ in range(100):
        response = await get(ds, url)
        if response.status_code == 200:
            break
        await asyncio.sleep(0.05)
    assert response.status_code == 200 and response.json()["params"]["alpha"] == 0.123
