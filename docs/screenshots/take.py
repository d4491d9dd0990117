"""The README's screenshots, taken again: the sample library (``imagecluster sample``) on a real Datasette
server in chromium, at 1440 x 900 and on a 390 x 844 phone, the loupe and the dendrogram.

    python docs/screenshots/take.py
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.conftest import datasette_server  # noqa: E402

HERE = Path(__file__).resolve().parent
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def main() -> None:
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "photos.db"
        subprocess.run([sys.executable, "-m", "importer", "sample", str(db)], check=True, cwd=ROOT)
        with datasette_server(db) as url, sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
            for name, viewport in (("cluster-page", (1440, 900)), ("cluster-phone", (390, 844))):
                page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
                page.goto(url + "/photos/-/cluster")
                page.wait_for_function(
                    "[...document.querySelectorAll('.imagecluster-photo-cell img')].slice(0, 8)"
                    ".every(i => i.complete && i.naturalWidth > 0)"
                )
                page.screenshot(path=str(HERE / f"{name}.png"))
                if name == "cluster-page":
                    page.locator(".imagecluster-photo-link").nth(1).click()
                    page.wait_for_function(
                        "(() => { const i = document.querySelector('dialog[open] figure img');"
                        " return i && i.complete && i.naturalWidth > 320; })()"
                    )
                    page.screenshot(path=str(HERE / "loupe.png"))
                    page.keyboard.press("Escape")
                    page.locator(".imagecluster-tree summary").click()
                    page.locator(".imagecluster-tree").screenshot(path=str(HERE / "dendrogram.png"))
            browser.close()


if __name__ == "__main__":
    main()
