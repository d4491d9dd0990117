"""The cluster page as a photo tool, over HTTP on a real Datasette: the live count, the loupe's large picture,
verdicts answered in JSON with what they changed and a signed undo, dates as a photo app writes them.

The browser drives the same endpoints in tests/test_browser.py.
"""

from __future__ import annotations

import io
import re
import sqlite3
from urllib.parse import urlencode

import pytest
from PIL import Image

from datasette_imagecluster.web.display import date_span, epoch_date, photo_date
from datasette_imagecluster.web.effects import describe_effect

from .conftest import rows
from .test_verdict_page import PAGE, ROOT, page, post

JSON = {"Accept": "application/json"}


@pytest.mark.parametrize(
    "first, last, shown",
    [
        ("2006-07-09T09:14:51", "2006-07-09T14:03:49", "9 Jul 2006, 09:14–14:03"),
        ("2006-07-09T09:14:51", "2006-07-09T09:14:58", "9 Jul 2006, 09:14"),
        ("2006-07-09T09:14:51", "2006-07-12T18:30:00", "9 Jul, 09:14 – 12 Jul 2006, 18:30"),
        ("2006-12-30T10:00:00", "2007-01-02T08:00:00", "30 Dec 2006 – 2 Jan 2007"),
        ("2006-07-09T14:03:49", "2006-07-09T09:14:51", "9 Jul 2006, 09:14–14:03"),  # either order
        ("2006-07-09T09:14:51+02:00", None, "9 Jul 2006, 09:14"),  # the camera's clock, its offset dropped
        ("not a date", "neither", None),
    ],
)
def test_dates_as_a_photo_app_writes_them(first, last, shown):
    assert date_span(first, last) == shown


def test_single_dates_and_file_times():
    assert photo_date("2004-05-06T07:59:03") == "6 May 2004, 07:59" and photo_date(None) is None
    assert epoch_date(1796299906.3196716) == "3 Dec 2026, 12:11 UTC" and epoch_date("x") is None


def test_what_a_verdict_changed_in_words():
    photos = {i: {"path": f"/p/{i}.jpg", "taken": f"2006-07-09T{9 + i:02d}:00:00"} for i in range(1, 7)}
    photos[9] = {"path": "/p/9.jpg", "taken": "2004-05-06T07:59:00"}
    before = [[1, 2, 3, 4], [9]]
    split_onto_another_trip = [[1, 2], [3, 4, 9]]
    lines = describe_effect(before, split_onto_another_trip, {1, 3}, photos)
    assert lines == [
        "The cluster of 4 photos from 9 Jul 2006, 10:00–13:00 split: 2 stayed together; "
        "2 joined 1 photo from 6 May 2004, 07:59."
    ]
    assert describe_effect(before, [[1, 2, 3], [9]], {4}, photos)[0].startswith("The cluster of 4 photos")
    assert describe_effect(before, [], {1}, photos) == [
        "The cluster of 4 photos from 9 Jul 2006, 10:00–13:00 is gone: its photos are in no cluster now."
    ]
    assert describe_effect(before, before, {1}, photos) == ["No cluster around these photos changed at these settings."]
    assert describe_effect([[1, 2]], [[1, 2, 5]], {5}, photos) == [
        "1 photo from 9 Jul 2006, 14:00 joined a cluster of 2 photos from 9 Jul 2006, 10:00–11:00."
    ]


@pytest.mark.asyncio
async def test_the_live_count_is_the_pages_count(writable):
    ds = writable
    for sim in ("0.3", "0.6", "0.95"):
        query = urlencode({"sim": sim, "alpha": "0.5"})
        count = (await ds.client.get(f"/photos/-/cluster/count.json?{query}")).json()
        report = (await ds.client.get(f"/photos/-/cluster.json?{query}")).json()
        assert count["clusters"] == len(report["clusters"]) and count["clustered"] == report["n_clustered"]
        assert count["photos"] == report["n_images"] and count["sim"] == float(sim)
    bad = await ds.client.get("/photos/-/cluster/count.json?sim=2")
    assert bad.status_code == 400 and "sim" in bad.json()["error"]


@pytest.mark.asyncio
async def test_a_bad_setting_keeps_the_others(writable):
    response, soup, _ = await page(writable, None, "/photos/-/cluster?sim=abc&alpha=0.3&method=average&tau=6h")
    assert response.status_code == 400 and "sim" in soup.select_one(".imagecluster-error").text
    assert soup.select_one("#imagecluster-alpha")["value"] == "0.3"
    assert soup.select_one("select[name=method] option[selected]").text == "average"
    assert soup.select_one("input[name=tau]")["value"] == "6h"


@pytest.mark.asyncio
async def test_the_loupe_gets_the_original_scaled_else_the_thumbnail(writable, db_path, tmp_path):
    ds = writable
    (image_id, path, width, height) = rows(db_path, "select id, path, width, height from images order by id")[0]
    response = await ds.client.get(f"/photos/-/cluster/preview/{image_id}.jpg")
    assert response.status_code == 200 and response.headers["content-type"] == "image/jpeg"
    preview = Image.open(io.BytesIO(response.content))
    assert preview.size == (width, height) or max(preview.size) == 1600  # never larger than the original
    thumbnail = Image.open(io.BytesIO((await ds.client.get(f"/photos/-/cluster/thumbnail/{image_id}.jpg")).content))
    assert max(preview.size) > max(thumbnail.size)
    again = await ds.client.get(
        f"/photos/-/cluster/preview/{image_id}.jpg", headers={"if-none-match": response.headers["etag"]}
    )
    assert again.status_code == 304
    # A published catalog without its originals: the thumbnail.
    sqlite = sqlite3.connect(db_path)
    sqlite.execute("update images set path = ? where id = ?", (str(tmp_path / "gone.jpg"), image_id))
    sqlite.commit()
    sqlite.close()
    moved = await ds.client.get(f"/photos/-/cluster/preview/{image_id}.jpg", follow_redirects=False)
    assert moved.status_code == 302 and moved.headers["location"].endswith(f"/thumbnail/{image_id}.jpg")
    for bad in ("999999", "abc", "-1"):
        assert (await ds.client.get(f"/photos/-/cluster/preview/{bad}.jpg")).status_code == 404


VERDICT, UNDO = "/photos/-/cluster/verdict", "/photos/-/cluster/undo"


async def _post_json(ds, action: str, fields: list[tuple[str, str]]):
    """POST as the page's script does: the form's CSRF token, asking for JSON."""
    response, soup, cookies = await page(ds, ROOT)
    token = soup.select_one("form.imagecluster-verdict-form input[name=csrftoken]")["value"]
    if "ds_csrftoken" in response.cookies:
        cookies["ds_csrftoken"] = response.cookies["ds_csrftoken"]
    headers = {**JSON, "Sec-Fetch-Site": "same-origin", "Content-Type": "application/x-www-form-urlencoded"}
    body = urlencode([("csrftoken", token), ("next", PAGE), *fields])
    return await ds.client.post(action, content=body, cookies=cookies, headers=headers)


@pytest.mark.asyncio
async def test_a_verdict_from_the_page_says_what_it_changed_and_undoes(writable, db_path):
    ds = writable
    names = dict(rows(db_path, "select id, name from images"))
    report = (await ds.client.get("/photos/-/cluster.json?sim=0.95&alpha=1&method=average")).json()
    burst = sorted(i["id"] for i in max(report["clusters"], key=lambda c: c["size"])["images"])
    answer = await _post_json(ds, VERDICT, [("not", f"{burst[-1]}:{','.join(map(str, burst))}")])
    data = answer.json()
    assert answer.status_code == 200 and data["ok"]
    assert data["message"] == f"Recorded: {names[burst[-1]]} and the rest of its cluster differ."
    assert [p["name"] for p in data["photos"]] == [names[burst[-1]]] and data["photos"][0]["thumbnail"]
    assert len(data["changes"]) == 1 and data["changes"][0].startswith(f"The cluster of {len(burst)} photos from ")
    recorded = rows(db_path, "select sha256_a, sha256_b, verdict from verdicts order by 1, 2")
    assert len(recorded) == len(burst) - 1

    undone = await _post_json(ds, UNDO, [("undo", data["undo"])])
    assert undone.status_code == 200 and undone.json()["message"].startswith(
        f"Undone: the verdict on {names[burst[-1]]}"
    )
    assert rows(db_path, "select count(*) from verdicts") == [(0,)]

    # "forget" undone brings the verdict back as it was, its date too.
    pair = [("verdict", "same"), ("id", str(burst[0])), ("id", str(burst[1]))]
    await post(ds, ROOT, pair)
    kept = rows(db_path, "select * from verdicts")
    forgot = (await _post_json(ds, VERDICT, [("verdict", "forget"), *pair[1:]])).json()
    assert rows(db_path, "select count(*) from verdicts") == [(0,)]
    await _post_json(ds, UNDO, [("undo", forgot["undo"])])
    assert rows(db_path, "select * from verdicts") == kept


@pytest.mark.asyncio
async def test_an_undo_token_is_checked(writable, db_path):
    ds = writable
    forged = await _post_json(ds, UNDO, [("undo", "made.up")])
    assert forged.status_code == 400 and "undo must be the token" in forged.json()["error"]
    elsewhere = ds.sign({"database": "other", "previous": [["a", "b", "same", None]]}, "imagecluster-undo")
    refused = await _post_json(ds, UNDO, [("undo", elsewhere)])
    assert refused.status_code == 400 and rows(db_path, "select count(*) from verdicts") == [(0,)]
    _, soup, _ = await page(ds, None)
    assert "need permission to write" in soup.select_one(".imagecluster-read-only").text


@pytest.mark.asyncio
async def test_no_epoch_floats_or_iso_timestamps_on_the_page(writable):
    _, soup, _ = await page(writable, ROOT)
    text = soup.select_one(".imagecluster-page").get_text(" ")
    assert "T10:00" not in text and not re.search(r"\d{10}\.\d+", text)
    spans = [h.select_one("small").text for h in soup.select(".imagecluster-card h2")]
    assert any("Jun 2021, 10:00" in s for s in spans), spans
    alt = soup.select_one(".imagecluster-photo-cell img")["alt"]
    assert ".jpg, " in alt and "cluster 1" in alt
    assert soup.select_one(".imagecluster-sizes").name == "details"  # the size table folded away


@pytest.mark.asyncio
@pytest.mark.parametrize("path", ["/", "/photos"])
async def test_the_home_and_database_pages_link_the_clusters(writable, path):
    """A visible line, not only a menu entry: from 1.0a's top_homepage and top_database hooks, on 0.65 from
    a script (the browser test sees it on the page)."""
    html = (await writable.client.get(path)).text
    assert "Photo clusters</a> of photos: its 10 fingerprinted photos" in html.replace('\\"', '"')
    assert '<a href="/photos/-/cluster">' in html.replace('\\"', '"')


@pytest.mark.asyncio
async def test_previews_stored_at_import_serve_the_loupe_without_the_originals(library, db_path, tmp_path):
    """``--previews 1000``: photos imported before get one on the next import (their fingerprints as good as
    the same), and the loupe shows it where the originals are gone, as in a published catalog."""
    import numpy as np
    from click.testing import CliRunner

    from .conftest import invoke

    def vectors():
        return {i: np.frombuffer(v, np.float32) for i, v in rows(db_path, "select image_id, vector from fingerprints")}

    before = vectors()
    photos = library[1]
    invoke(CliRunner(), "import", db_path, photos, "--model", "vgg16", "--weights", "none", "--workers", "0", "-s",
           "--previews", "1000")  # fmt: skip
    stored = rows(db_path, "select image_id, width, height, length(jpeg) from previews order by image_id")
    sizes = dict(rows(db_path, "select id, max(width, height) from images"))
    assert [s[0] for s in stored] == sorted(sizes)  # every photo, those imported before too
    assert all(max(w, h) == min(1000, sizes[i]) and n > 1000 for i, w, h, n in stored)
    after = vectors()
    assert after.keys() == before.keys()
    for i, vector in before.items():
        cosine = float(vector @ after[i] / np.linalg.norm(vector) / np.linalg.norm(after[i]))
        assert cosine > 0.999  # the model's input resized from the larger decode: as good as the same

    conn = sqlite3.connect(db_path)
    conn.execute("update images set path = '/nowhere/' || id || '.jpg'")
    conn.commit()
    conn.close()
    from datasette.app import Datasette

    ds = Datasette([str(db_path)])
    image_id, width, height, _ = stored[0]
    response = await ds.client.get(f"/photos/-/cluster/preview/{image_id}.jpg")
    assert response.status_code == 200 and Image.open(io.BytesIO(response.content)).size == (width, height)
