"""The cluster page as a user meets it: Playwright driving Debian's chromium against a real Datasette server,
on the 69 INRIA Holidays photos imported with the pretrained model, signed in as an actor who may write.

It drags a slider and sees the count change with no navigation, releases it and sees the gallery change;
saves and finds the sliders' settings stored; opens the loupe by click and by keyboard, moves with the keys,
records a verdict from the loupe and undoes it; drags the dendrogram's cut and opens a photo from a leaf;
checks the phone layout (no sideways scrolling, controls of at least 24 x 24 px) and runs axe-core on the
plugin's markup; and opens a photo's row page. Screenshots of each step go to test-artifacts/. In CI a
missing browser is a failure; elsewhere the test skips and says why.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner
from datasette.app import Datasette

from .conftest import IS_1_0, ROOT, WRITE, datasette_server, invoke, shared_data
from .test_quality import MODEL

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = ROOT / "test-artifacts"
SECRET = "browser-test-secret"
LAUNCH = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
          "--disable-component-update", "--disable-sync"]  # fmt: skip
GRANT = '''
from datasette import hookimpl


@hookimpl
def permission_allowed(actor, action, resource):
    """Datasette 0.65 has no write API: a permission plugin lets root record verdicts and save."""
    if action in ("insert-row", "delete-row") and resource in (("photos", "verdicts"), ("photos", "clusterings")):
        return bool(actor) and actor.get("id") == "root"
    return None
'''


@pytest.fixture(scope="module")
def holidays_db(tmp_path_factory) -> Path:
    db = tmp_path_factory.mktemp("holidays-page") / "photos.db"
    invoke(CliRunner(), "import", db, shared_data("holidays_subset"), *MODEL)
    return db


@pytest.fixture
def server(holidays_db, tmp_path):
    """A writable copy served on a real port, where root may write verdicts and clusterings; its base URL,
    the database file and root's signed cookie."""
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail(f"chromium is not installed at {CHROMIUM}: .ci/run must install it")
        pytest.skip(f"chromium not found at {CHROMIUM} (apt-get install chromium)")
    db = tmp_path / "photos.db"
    shutil.copy(holidays_db, db)
    if IS_1_0:
        config = tmp_path / "datasette.json"
        tables = {"verdicts": {"permissions": WRITE}, "clusterings": {"permissions": WRITE}}
        config.write_text(json.dumps({"databases": {"photos": {"tables": tables}}}))
        options = ["-c", str(config)]
    else:
        plugins = tmp_path / "plugins"
        plugins.mkdir()
        (plugins / "grant.py").write_text(textwrap.dedent(GRANT))
        options = ["--plugins-dir", str(plugins)]
    os.environ["DATASETTE_SECRET"] = SECRET
    try:
        cookie = Datasette(secret=SECRET).sign({"a": {"id": "root"}}, "actor")
        with datasette_server(db, *options) as url:
            yield url, db, cookie
    finally:
        os.environ.pop("DATASETTE_SECRET", None)


def _count(db: Path, sql: str):
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql).fetchone()[0]
    finally:
        conn.close()


def _drag(page, selector: str, start: float, end: float, release: bool = True) -> None:
    """Drag a range input's thumb from one share of its width to another, as a mouse does."""
    box = page.locator(selector).bounding_box()
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] * start, y)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * end, y, steps=8)
    if release:
        page.mouse.up()


SMALL_CONTROLS = """root => [...root.querySelectorAll(
    'button, input:not([type=hidden]), select, summary, .imagecluster-photo-link, .imagecluster-select')]
  .filter(e => e.offsetParent !== null && !e.closest('.imagecluster-visually-hidden, .imagecluster-select input'))
  .map(e => [e.outerHTML.slice(0, 80), e.getBoundingClientRect()])
  .filter(([, r]) => r.width < 24 || r.height < 24)
  .map(([html, r]) => `${html} ${Math.round(r.width)}x${Math.round(r.height)}`)"""


def test_the_cluster_page_as_a_photo_tool(server):
    from axe_playwright_python import sync_playwright as axe_module  # noqa: F401 (where axe-core's script is)
    from playwright.sync_api import sync_playwright

    url, db, cookie = server
    axe = Path(axe_module.__file__).with_name("axe.min.js").read_text()
    ARTIFACTS.mkdir(exist_ok=True)
    shot = lambda page, name, **kw: page.screenshot(path=str(ARTIFACTS / f"{name}.png"), **kw)  # noqa: E731
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=LAUNCH)
        context = browser.new_context(viewport={"width": 1440, "height": 900})
        context.add_cookies([{"name": "ds_actor", "value": cookie, "url": url}])
        page = context.new_page()
        problems = []
        page.on("pageerror", lambda e: problems.append(f"JavaScript: {e}"))
        page.on("response", lambda r: problems.append(f"{r.status} {r.url}") if r.status >= 500 else None)

        # Found where people look: a line on the home page.
        page.goto(url + "/")
        with page.expect_navigation():
            page.locator(".imagecluster-found a").click()

        # Photos first: the first photo on the first screen, the controls one bar; one tab stop a photo.
        first = page.locator(".imagecluster-photo-cell img").first
        first.wait_for()
        assert first.bounding_box()["y"] < 900 * 0.6
        assert page.locator(".imagecluster-advanced").get_attribute("open") is None  # jargon folded away
        summary = page.locator(".imagecluster-summary-line").inner_text()
        tabs = 0
        while tabs < 30 and not page.evaluate("!!document.activeElement.closest('.imagecluster-photo-cell')"):
            page.keyboard.press("Tab")
            tabs += 1
        assert tabs <= 15, f"{tabs} tabs to the first photo"
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.closest('.imagecluster-photo-cell').dataset.place").startswith(
            "2 "
        )
        shot(page, "1-first-screen")

        # Drag: the count changes while dragging, with no navigation; release: the gallery changes in place.
        page.evaluate("window.notReloaded = true")
        _drag(page, "#imagecluster-sim", 0.48, 0.9, release=False)
        page.wait_for_function("document.querySelector('.imagecluster-count').textContent.includes('clusters')")
        live = page.locator(".imagecluster-count").inner_text()
        assert live.startswith("→ ") and "photos" in live
        shot(page, "2-dragging")
        page.mouse.up()
        page.wait_for_function(f"document.querySelector('.imagecluster-summary-line').innerText !== {summary!r}")
        assert page.evaluate("window.notReloaded") is True
        sim = page.locator("#imagecluster-sim").input_value()
        assert float(sim) > 0.8 and f"sim={sim}" in page.url
        assert live.split()[1] == page.locator(".imagecluster-summary-line strong").first.inner_text()
        shot(page, "3-released")

        # Advanced: a menu changes the gallery in place and stays open; a bad value is a message that keeps
        # the other settings, and a good one clears it.
        page.locator(".imagecluster-advanced summary").click()
        page.select_option("select[name=method]", "average")
        page.wait_for_function("location.search.includes('method=average')")
        page.fill("input[name=tau]", "soon")
        page.keyboard.press("Enter")
        error = page.locator(".imagecluster-error")
        error.wait_for()
        assert "tau must be a duration" in error.inner_text()
        assert page.locator("select[name=method]").input_value() == "average"
        page.fill("input[name=tau]", "6h")
        page.keyboard.press("Enter")
        page.wait_for_function("!document.querySelector('.imagecluster-error') && location.search.includes('tau=6h')")
        assert page.locator(".imagecluster-advanced").get_attribute("open") is not None
        assert page.evaluate("window.notReloaded") is True

        # Saving after the slider moved stores what the sliders say.
        page.locator(".imagecluster-save-form input[name=name]").fill("trips")
        with page.expect_navigation():
            page.locator(".imagecluster-save-form button").click()
        saved = _count(db, "select sim from clusterings where name = 'trips'")
        assert saved == float(sim)
        assert page.locator(".imagecluster-saved-now").inner_text().startswith("Saved as clustering 'trips', version 1")

        # The loupe by click: the large picture, its place, the keys.
        page.goto(url + "/photos/-/cluster")
        page.locator(".imagecluster-photo-link").first.click()
        loupe = page.locator("dialog.imagecluster-loupe")
        page.wait_for_function("document.querySelector('dialog.imagecluster-loupe figure img').naturalWidth > 320")
        caption = loupe.locator(".imagecluster-loupe-caption").inner_text()
        assert "1 of " in caption and ".jpg" in caption and "20" in caption  # its name, its date
        page.keyboard.press("ArrowRight")
        assert "2 of " in loupe.locator(".imagecluster-loupe-caption").inner_text()
        page.keyboard.press("ArrowDown")
        assert "in cluster 2" in loupe.locator(".imagecluster-loupe-caption").inner_text()
        shot(page, "4-loupe")
        page.keyboard.press("Escape")
        assert not loupe.evaluate("d => d.open")

        # The loupe by keyboard, a verdict from it, and undo.
        page.locator(".imagecluster-photo-link").first.focus()
        page.keyboard.press("Enter")
        assert loupe.evaluate("d => d.open")
        name = loupe.locator(".imagecluster-loupe-caption strong").inner_text()
        page.keyboard.press("x")
        report = page.locator(".imagecluster-report")
        report.locator("button").wait_for()
        assert report.inner_text().startswith(f"Recorded: {name} and the rest of its cluster differ.")
        assert "photo " not in report.inner_text().split("differ.")[0]  # file names, never ids
        assert "The cluster of " in report.inner_text()  # what it changed
        assert _count(db, "select count(*) from verdicts") >= 1
        page.keyboard.press("Escape")
        shot(page, "5-verdict")
        report.locator("button").click()
        page.wait_for_function("document.querySelector('.imagecluster-report').innerText.startsWith('Undone')")
        assert _count(db, "select count(*) from verdicts") == 0

        # The dendrogram: dragging the cut moves the sim slider (the live count while dragging, the gallery on
        # release, the dendrogram still open); an arrow key moves it a step; a leaf opens its photo in the loupe.
        page.wait_for_function("!document.querySelector('.imagecluster-page.imagecluster-stale')")  # undo's refresh
        page.locator(".imagecluster-tree summary").click()
        page.evaluate("window.notReloaded = true")
        before = float(page.locator("#imagecluster-sim").input_value())
        summary = page.locator(".imagecluster-summary-line").inner_text()
        page.locator(".imagecluster-dendrogram").scroll_into_view_if_needed()
        box = page.locator(".imagecluster-cut-target").bounding_box()
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2 - 25, steps=8)
        page.wait_for_function("document.querySelector('.imagecluster-count').textContent.includes('clusters')")
        dragged = float(page.locator("#imagecluster-sim").input_value())
        assert 0 < dragged < before  # higher cut: a lower sim
        page.mouse.up()
        page.wait_for_function(f"location.search.includes('sim={dragged:g}')")
        page.wait_for_function(f"document.querySelector('.imagecluster-summary-line').innerText !== {summary!r}")
        assert page.locator(".imagecluster-tree").get_attribute("open") is not None
        assert page.locator(".imagecluster-cut").get_attribute("aria-valuetext") == f"sim {dragged:g}"
        assert page.evaluate("window.notReloaded") is True
        page.locator(".imagecluster-cut").focus()
        page.keyboard.press("ArrowDown")
        stepped = round(dragged + 0.01, 2)
        page.wait_for_function(f"location.search.includes('sim={stepped:g}')")
        page.wait_for_function("document.activeElement.closest('.imagecluster-cut') !== null")
        shot(page, "8-dendrogram")
        on_page = page.evaluate(
            "[...document.querySelectorAll('.imagecluster-leaf')].map(l => l.dataset.id)"
            ".find(id => document.querySelector(`.imagecluster-photo-cell[data-id='${id}']`))"
        )
        assert on_page is not None
        page.locator(f".imagecluster-leaf[data-id='{on_page}']").click()
        assert loupe.evaluate("d => d.open")
        shown = page.evaluate("document.querySelector('dialog.imagecluster-loupe figure img').src")
        assert shown.endswith(f"/{on_page}.jpg"), shown
        page.keyboard.press("Escape")

        # axe-core on the plugin's markup (the dendrogram open): no serious or critical violation.
        page.add_script_tag(content=axe)
        found = page.evaluate(
            "async () => (await axe.run('.imagecluster-page')).violations"
            ".map(v => ({id: v.id, impact: v.impact, nodes: v.nodes.map(n => n.html).slice(0, 3)}))"
        )
        assert [v for v in found if v["impact"] in ("serious", "critical")] == []

        # A phone: no sideways scrolling, every control at least 24 x 24 px.
        phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
        phone.add_cookies([{"name": "ds_actor", "value": cookie, "url": url}])
        small = phone.new_page()
        small.goto(url + "/photos/-/cluster")
        small.locator(".imagecluster-photo-cell img").first.wait_for()
        small.locator(".imagecluster-advanced summary").click()
        small.locator(".imagecluster-tree summary").click()  # the dendrogram scrolls in a box of its own
        assert small.locator(".imagecluster-dendrogram").bounding_box()["width"] >= 800
        assert small.evaluate("document.documentElement.scrollWidth") <= 390
        # No label wrapped a word a line beside its box: each Advanced field is one line high.
        heights = small.evaluate(
            "[...document.querySelectorAll('.imagecluster-advanced-fields label')].map(l => l.offsetHeight)"
        )
        assert heights and max(heights) <= 48, heights
        assert small.evaluate(SMALL_CONTROLS, small.locator(".imagecluster-page").element_handle()) == []
        shot(small, "6-phone", full_page=False)

        # A photo's row page: the photo and its capture time first, similar photos with their similarity.
        page.goto(url + "/photos/images/1")
        page.locator(".imagecluster-row-photo img").wait_for()
        table = page.locator("table").first.bounding_box()
        assert page.locator(".imagecluster-row-photo").bounding_box()["y"] < table["y"]
        assert "20" in page.locator(".imagecluster-row-photo figcaption").inner_text()
        page.locator(".imagecluster-similar figcaption").first.wait_for()
        assert page.locator(".imagecluster-similar figcaption").first.inner_text().startswith("similarity 0.")
        shot(page, "7-row-page", full_page=True)
        browser.close()
    assert problems == []
