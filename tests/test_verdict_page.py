"""Verdicts and saves from the cluster page: POSTs under Datasette's CSRF protection, for actors allowed to write rows.

On 1.0a the table-level ``insert-row``/``delete-row`` rules of the config
decide; 0.65 has no write API, so there a permission plugin (registered
through Datasette's real ``permission_allowed`` hook) grants them. CSRF:
0.65 checks the form's token against its cookie (asgi-csrf); 1.0a checks
the browser's ``Sec-Fetch-Site`` and ``Origin`` headers.
"""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from bs4 import BeautifulSoup
from datasette.app import Datasette
from datasette.plugins import pm
from datasette_test import actor_cookie

from .conftest import IS_1_0, WRITE, grant_plugin, rows
from .conftest import ROOT_ACTOR as ROOT

PAGE = "/photos/-/cluster?sim=0.95&alpha=1&method=average&page_size=50"


async def page(ds, actor=None, path=PAGE, after=None):
    """The page (after a POST: with the cookies its answer set, such as 0.65's messages)."""
    cookies = {"ds_actor": actor_cookie(ds, actor)} if actor else {}
    cookies.update(dict(after.cookies) if after is not None else {})
    response = await ds.client.get(path, cookies=cookies)
    return response, BeautifulSoup(response.text, "html.parser"), cookies


async def post(ds, actor, fields: list[tuple[str, str]], same_site=True, action=None, which="verdict"):
    """POST one of the page's forms as a browser would (its CSRF token and cookie, its Sec-Fetch-Site), or
    as another site would (``same_site=False``)."""
    response, soup, cookies = await page(ds, actor)
    form = soup.select_one(f"form.imagecluster-{which}-form")
    token = form.select_one('input[name="csrftoken"]')["value"] if form is not None else ""
    if "ds_csrftoken" in response.cookies:
        cookies["ds_csrftoken"] = response.cookies["ds_csrftoken"]
    headers = {"Sec-Fetch-Site": "same-origin"}
    if not same_site:
        token, headers = "forged", {"Sec-Fetch-Site": "cross-site", "Origin": "https://elsewhere.example"}
    hidden = [(i["name"], i["value"]) for i in form.select('input[type="hidden"]')] if form is not None else []
    hidden = [(k, v) for k, v in hidden if k != "csrftoken"] or [("next", PAGE)]
    body = urlencode([("csrftoken", token), *hidden, *fields])
    headers["Content-Type"] = "application/x-www-form-urlencoded"
    target = action or form["action"]
    return await ds.client.post(target, content=body, cookies=cookies, headers=headers, follow_redirects=False)


async def clusters(ds) -> set[frozenset[int]]:
    report = (await ds.client.get("/photos/-/cluster.json?sim=0.95&alpha=1&method=average")).json()
    return {frozenset(i["id"] for i in c["images"]) for c in report["clusters"]}


@pytest.mark.asyncio
async def test_not_this_one_same_and_forget_from_the_page(writable, db_path):
    ds = writable
    before = await clusters(ds)
    burst = sorted(max(before, key=len))
    photo, rest = burst[-1], burst[:-1]
    answer = await post(ds, ROOT, [("not", f"{photo}:{','.join(map(str, burst))}")])
    assert answer.status_code == 302 and answer.headers["location"] == PAGE
    after = await clusters(ds)
    assert not any(photo in c and set(rest) & c for c in after)  # it left its cluster
    _, soup, _ = await page(ds, ROOT, after=answer)
    names = dict(rows(db_path, "select id, name from images"))
    # Photos by their names, never by database ids; the card says which verdict shaped it, with thumbnails.
    assert f"Recorded: {names[photo]} and the rest of its cluster differ." in soup.text
    shaped = soup.select_one(".imagecluster-verdicts")
    assert "you said these two differ" in shaped.text and names[photo] in shaped.text
    assert len(shaped.select("img")) >= 2 and f"photos {rest[0]}" not in soup.text
    others = next(c for c in before if photo not in c and len(c) >= 2)
    joined = [photo, min(others)]
    await post(ds, ROOT, [("verdict", "same"), ("id", str(joined[0])), ("id", str(joined[1]))])
    assert any(set(joined) <= c for c in await clusters(ds))
    refused = await post(ds, ROOT, [("verdict", "different"), ("id", str(joined[0])), ("id", str(joined[1]))])
    _, soup, _ = await page(ds, ROOT, after=refused)
    assert refused.status_code == 302 and "Not recorded: conflicting labels" in soup.text
    await post(ds, ROOT, [("verdict", "forget"), ("id", str(joined[0])), ("id", str(joined[1]))])
    assert not any(set(joined) <= c for c in await clusters(ds))


@pytest.mark.asyncio
async def test_without_permission_no_form_and_no_write(writable, db_path):
    ds = writable
    _, soup, _ = await page(ds, None)
    assert soup.select_one("form.imagecluster-verdict-form") is None
    fields = [("verdict", "same"), ("id", "1"), ("id", "2")]
    denied = await post(ds, None, fields, action="/photos/-/cluster/verdict")
    assert denied.status_code == 403
    forged = await post(ds, ROOT, fields, same_site=False)
    assert forged.status_code == 403  # Datasette's CSRF protection
    assert rows(db_path, "select count(*) from verdicts") == [(0,)]  # nothing was written


@pytest.mark.asyncio
async def test_an_immutable_database_says_so_instead_of_a_form(db_path):
    config = {"databases": {"photos": {"tables": {"verdicts": {"permissions": WRITE}}}}}
    ds = Datasette(immutables=[str(db_path)], config=config) if IS_1_0 else None
    if ds is None:
        pm.register(grant_plugin(), name="grant-verdicts-to-root")
        ds = Datasette(immutables=[str(db_path)])
    try:
        _, soup, _ = await page(ds, ROOT)
        assert soup.select_one("form.imagecluster-verdict-form") is None
        assert "opened immutable" in soup.select_one(".imagecluster-read-only").text
    finally:
        if not IS_1_0:
            pm.unregister(name="grant-verdicts-to-root")


@pytest.mark.asyncio
async def test_save_from_the_page_twice_then_see_what_changed(writable, db_path):
    ds = writable
    first = await post(ds, ROOT, [("name", "bursts")], which="save")
    assert first.status_code == 302 and first.headers["location"].startswith("/photos/-/cluster?")
    _, soup, _ = await page(ds, ROOT, path=first.headers["location"], after=first)
    assert "Saved as clustering 'bursts', version 1" in soup.select_one(".imagecluster-saved-now").text
    shown = await clusters(ds)
    saved = rows(db_path, "select m.cluster, m.image_id from cluster_members m")
    regrouped: dict[int, set[int]] = {}
    for number, image_id in saved:
        regrouped.setdefault(number, set()).add(image_id)
    assert {frozenset(g) for g in regrouped.values()} == shown  # what the page showed
    burst = sorted(max(shown, key=len))
    await post(ds, ROOT, [("not", f"{burst[-1]}:{','.join(map(str, burst))}")])
    second = await post(ds, ROOT, [("name", "bursts")], which="save")
    _, soup, _ = await page(ds, ROOT, path=second.headers["location"], after=second)
    notice = soup.select_one(".imagecluster-saved-now")
    assert "Saved as clustering 'bursts', version 2: " in notice.text and "at sim 0.95, alpha 1.0" in notice.text
    assert notice.select_one("a")["href"] == "/photos/-/cluster/changes/bursts"  # the message is a link
    assert soup.select_one(".imagecluster-saved a")["href"] == "/photos/-/cluster/changes/bursts"
    changes = (await ds.client.get("/photos/-/cluster/changes/bursts.json")).json()
    assert changes["counts"]["shrank"] + changes["counts"]["split"] + changes["counts"]["changed"] >= 1
    _, soup, _ = await page(ds, ROOT, "/photos/-/cluster/changes/bursts")
    versions = [li.text for li in soup.select(".imagecluster-versions li")]
    assert [v.split(",")[0] for v in versions] == ["Version 1", "Version 2"] and all("sim 0.95" in v for v in versions)
    marked = [f.select_one("figcaption").text for f in soup.select(".imagecluster-change figure")]
    assert marked and all(m.startswith(("joined: ", "left: ")) and ".jpg" in m for m in marked)
    assert {f["class"][0] for f in soup.select(".imagecluster-change figure")} <= {
        "imagecluster-joined",
        "imagecluster-left",
    }
    assert (await post(ds, None, [("name", "x")], which="save", action="/photos/-/cluster/save")).status_code == 403
