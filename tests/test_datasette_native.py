"""The plugin behaves like Datasette itself, on 0.65 and on the 1.0 alphas (run on both lines in CI).

Each test compares the plugin with core on the same instance: the same
permission decisions as core's table pages, core's JSON error shape, error and
"computing" pages in the site's chrome, actions where core shows actions, and
a configuration checked at start-up.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from bs4 import BeautifulSoup
from datasette_test import Datasette, actor_cookie

from .conftest import IS_1_0
from .conftest import ROOT_ACTOR as ROOT


def instance(db_path, rules: dict | None = None, **kwargs) -> Datasette:
    """A Datasette over the library; permission rules go where each line reads them."""
    rules = rules or {}
    if IS_1_0:
        return Datasette([str(db_path)], config=rules, **kwargs)
    return Datasette([str(db_path)], metadata=rules, **kwargs)


async def get(ds, path, actor=None):
    cookies = {"ds_actor": actor_cookie(ds, actor)} if actor else {}
    return await ds.client.get(path, cookies=cookies)


def tables(rule_by_table: dict) -> dict:
    return {t: {"allow": allow} for t, allow in rule_by_table.items()}


# Table rules inside a denied or an allowed database, for the three tables the plugin reads.
TABLE_RULES = {
    "database denied, images and fingerprints allowed": {
        "databases": {"photos": {"allow": ROOT, "tables": tables({"images": True, "fingerprints": True})}}
    },
    "database denied, every plugin table allowed": {
        "databases": {
            "photos": {"allow": ROOT, "tables": tables({"images": True, "fingerprints": True, "thumbnails": True})}
        }
    },
    "database denied, images allowed": {"databases": {"photos": {"allow": ROOT, "tables": tables({"images": True})}}},
    "database allowed, fingerprints denied": {"databases": {"photos": {"tables": tables({"fingerprints": ROOT})}}},
    "database allowed, images denied": {"databases": {"photos": {"tables": tables({"images": ROOT})}}},
    "database allowed, thumbnails denied": {"databases": {"photos": {"tables": tables({"thumbnails": ROOT})}}},
    "database denied": {"databases": {"photos": {"allow": ROOT}}},
}


@pytest.mark.asyncio
@pytest.mark.parametrize("name", TABLE_RULES)
@pytest.mark.parametrize("actor", [None, ROOT])
async def test_pages_open_exactly_when_core_opens_the_tables_they_read(db_path, name, actor):
    ds = instance(db_path, TABLE_RULES[name])

    async def core_opens(*names):
        return all([(await get(ds, f"/photos/{t}", actor)).status_code == 200 for t in names])

    photos = await core_opens("images", "fingerprints")
    thumbnails = await core_opens("images", "thumbnails")
    for path, expected in (
        ("/photos/-/cluster", photos),
        ("/photos/-/cluster.json", photos),
        ("/photos/-/cluster/similar/1.json", photos),
        ("/photos/-/cluster/similar/1", photos),
        ("/photos/-/cluster/thumbnail/1.jpg", thumbnails),
    ):
        response = await get(ds, path, actor)
        assert response.status_code == (200 if expected else 403), (name, path)
        if not expected:
            assert b"\xff\xd8" not in response.content and "burst" not in response.text


@pytest.mark.asyncio
async def test_a_table_allowed_inside_a_denied_database_opens_the_page_as_core_opens_the_table(db_path):
    ds = instance(db_path, TABLE_RULES["database denied, every plugin table allowed"])
    assert (await get(ds, "/photos")).status_code == 403  # the database page stays closed
    assert (await get(ds, "/photos/images")).status_code == 200
    assert (await get(ds, "/photos/-/cluster.json")).status_code == 200
    assert (await get(ds, "/photos/-/cluster/thumbnail/1.jpg")).status_code == 200


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "path",
    [
        "/photos/-/cluster.json?sim=2",
        "/photos/-/cluster.json?method=nope",
        "/photos/-/cluster.json?page=x",
        "/photos/-/cluster.json?sql=delete+from+images",
        "/photos/-/cluster/similar/1.json?k=0",
        "/photos/-/cluster/similar/99999.json",
        "/nope/-/cluster.json",
        "/photos/-/cluster/nothing.json",
    ],
)
async def test_json_errors_have_core_shape(db_path, path):
    ds = instance(db_path)
    core = await get(ds, "/photos/images.json?_size=x")  # core's own 400
    ours = await get(ds, path)
    assert core.status_code == 400 and ours.status_code in (400, 404)
    body = ours.json()
    assert set(body) == set(core.json())  # the same keys as core's error on this line
    assert body["ok"] is False and body["status"] == ours.status_code and body["error"]


def assert_extends_base(html: str) -> None:
    """Rendered from a template that extends Datasette's base.html: the site's stylesheet, header and footer."""
    soup = BeautifulSoup(html, "html.parser")
    assert soup.select_one('link[rel="stylesheet"][href*="app.css"]') is not None
    assert soup.select_one("footer.ft") is not None and soup.select_one("header nav") is not None


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "path,status",
    [
        ("/photos/-/cluster?sim=2", 400),  # the form again, with the message
        ("/photos/-/cluster.xml", 404),
        ("/nope/-/cluster", 404),
        ("/photos/-/cluster/thumbnail/99999.jpg", 404),
        ("/photos/-/cluster/similar/99999", 404),
        ("/photos/-/cluster/else", 404),
        ("/photos/-/cluster", 403),
    ],
)
async def test_error_pages_extend_base_html(db_path, path, status):
    rules = TABLE_RULES["database denied"] if status == 403 else {}
    response = await get(instance(db_path, rules), path)
    assert response.status_code == status
    assert_extends_base(response.text)


@pytest.mark.asyncio
async def test_the_computing_page_extends_base_html(db_path):
    ds = instance(db_path, plugin_config={"datasette-imagecluster": {"wait_seconds": 0}})
    page = await get(ds, "/photos/-/cluster?sim=0.8&alpha=0.321")
    assert page.status_code == 202 and page.headers["retry-after"] == "2"
    assert_extends_base(page.text)
    assert 'http-equiv="refresh"' in page.text


@pytest.mark.asyncio
async def test_actions_link_to_the_pages(db_path):
    ds = instance(db_path)
    database = BeautifulSoup((await get(ds, "/photos")).text, "html.parser")
    table = BeautifulSoup((await get(ds, "/photos/images")).text, "html.parser")
    assert database.select_one('a[href="/photos/-/cluster"]') is not None
    assert table.select_one('a[href="/photos/-/cluster"]') is not None
    row = BeautifulSoup((await get(ds, "/photos/images/1")).text, "html.parser")
    link = next((a for a in row.select("a[href]") if "Photos like this" in a.text), None)
    if IS_1_0:  # 0.65 has no row actions
        assert link is not None and link["href"] == "/photos/-/cluster/similar/1"
        page = await get(ds, link["href"])
        assert page.status_code == 200 and len(
            BeautifulSoup(page.text, "html.parser").select(".imagecluster-thumbs img")
        )
    else:
        assert link is None


@pytest.mark.asyncio
async def test_actions_are_hidden_from_actors_who_cannot_open_the_page(db_path):
    ds = instance(db_path, TABLE_RULES["database allowed, fingerprints denied"])
    table = (await get(ds, "/photos/images")).text
    assert "/photos/-/cluster" not in table
    assert "/photos/-/cluster" in (await get(ds, "/photos/images", ROOT)).text


@pytest.mark.asyncio
async def test_assets_follow_base_url(db_path):
    ds = instance(db_path, settings={"base_url": "/prefix/"})
    row = (await ds.client.get("/photos/images/1")).text
    assert "/prefix/-/static-plugins/datasette-imagecluster/imagecluster.js" in row


BAD_CONFIG = [
    ({"page_size": 0}, "page_size must be a whole number from 1 to 500"),
    ({"sim": 2}, "sim must be between 0 and 1"),
    ({"method": "nope"}, "unknown method 'nope'"),
    ({"wait_seconds": "soon"}, "wait_seconds must be a number of seconds"),
    ({"colour": "red"}, "unknown setting 'colour'"),
]


@pytest.mark.parametrize("settings,message", BAD_CONFIG)
def test_a_bad_configuration_stops_datasette_in_one_line(db_path, tmp_path, settings, message):
    plugins = {"plugins": {"datasette-imagecluster": settings}}
    config = tmp_path / "config.json"
    config.write_text(json.dumps(plugins))
    option = "--config" if IS_1_0 else "--metadata"
    result = subprocess.run(
        [sys.executable, "-m", "datasette", "serve", str(db_path), option, str(config), "--get", "/"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines[-1] == f"Error: datasette-imagecluster configuration: {lines[-1].split(': ', 2)[-1]}"
    assert message in lines[-1]


@pytest.mark.asyncio
async def test_a_good_configuration_starts(db_path):
    ds = instance(db_path, plugin_config={"datasette-imagecluster": {"sim": 0.7, "page_size": 5, "wait_seconds": 1.5}})
    await ds.invoke_startup()
    assert (await get(ds, "/photos/-/cluster.json")).json()["params"]["sim"] == 0.7
