"""A real browser (Playwright driving Debian's chromium) against a real Datasette server.

In CI a missing browser is a failure; elsewhere the test skips and says why.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from .conftest import ROOT, datasette_server

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = ROOT / "test-artifacts"


@pytest.fixture
def server(library):
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail(f"chromium is not installed at {CHROMIUM}: .ci/run must install it")
        pytest.skip(f"chromium not found at {CHROMIUM} (apt-get install chromium)")
    with datasette_server("-i", library[0]) as url:
        yield url


def test_gallery_slider_and_row_page_in_chromium(server):
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.goto(server + "/-/cluster?sim=0.5&alpha=0.3")
        assert page.url.endswith("/photos/-/cluster?sim=0.5&alpha=0.3")
        cards_before = page.locator(".imagecluster-card").count()
        assert cards_before >= 1
        thumbnails = page.locator(".imagecluster-card img")
        thumbnails.first.wait_for()
        # Every thumbnail really loaded (natural width > 0), lazily or not.
        page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
        page.wait_for_function(
            "[...document.querySelectorAll('.imagecluster-card img')].every(i => i.complete && i.naturalWidth > 0)"
        )

        slider = page.locator("input[name=sim]")
        slider.fill("0.95")
        assert page.locator("#sim-value").inner_text() == "0.95"
        page.locator("input[name=alpha]").fill("1")
        with page.expect_navigation():
            page.locator("form.imagecluster-form button[type=submit]").click()
        assert "sim=0.95" in page.url and "alpha=1" in page.url
        sizes = [
            int(s) for s in page.locator(".imagecluster-card").evaluate_all("cards => cards.map(c => c.dataset.size)")
        ]
        assert sorted(sizes, reverse=True) == [3, 3, 2]  # the three bursts, by time alone
        page.screenshot(path=str(ARTIFACTS / "cluster-page.png"), full_page=True)

        first = page.locator(".imagecluster-card .imagecluster-thumbs a").first
        href = first.get_attribute("href")
        with page.expect_navigation():
            first.click()
        assert page.url.endswith(href)
        page.locator(".imagecluster-similar .imagecluster-thumbs img").first.wait_for(timeout=10000)
        assert page.locator(".imagecluster-similar .imagecluster-thumbs img").count() == 8
        photo = page.locator("img.imagecluster-photo")
        assert photo.get_attribute("src").endswith(f"/thumbnail/{href.rsplit('/', 1)[-1]}.jpg")
        page.wait_for_function("document.querySelector('img.imagecluster-photo').naturalWidth > 0")
        page.screenshot(path=str(ARTIFACTS / "row-page.png"), full_page=True)
        browser.close()
    assert Path(ARTIFACTS / "cluster-page.png").stat().st_size > 10000
