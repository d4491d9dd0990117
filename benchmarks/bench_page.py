"""The cluster page as a user waits for it, in chromium (Playwright) against a real ``datasette serve``:

* time to the first photo on a cold page (a fresh server: the tree is built on the first request, and the
  page waits for it, reloading itself while it says it is computing);
* the same page loaded again (the tree cached);
* slider release to the gallery updated in place (sim moved, the cached tree cut again);
* click on a photo to the loupe's large picture shown.

    python benchmarks/bench_page.py            # the 69 Holidays photos and 20,000 photos
    python benchmarks/bench_page.py --quick    # fewer repetitions

The 69 INRIA Holidays photos of ../shared/data are imported with the default model once; the 20,000 are
outings shaped like a real library's (``spectrum.event_fingerprints``, 1280 values as EfficientNet-Lite0
gives) with the Holidays thumbnails cycled as their pictures and capture times from their timestamps. Each
library in benchmarks/.data, made once. Medians of the repetitions; the machine printed first.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_cluster import database  # noqa: E402
from common import DATA, machine  # noqa: E402

from tests.conftest import datasette_server  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("IMAGECLUSTER_SHARED_DATA", ROOT.parent / "shared" / "data"))
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SHOWN = "(() => {{ const i = document.querySelector('{}'); return i && i.complete && i.naturalWidth > 0; }})()"
FIRST_PHOTO = SHOWN.format(".imagecluster-photo-cell img")
LOUPE_SHOWN = SHOWN.format("dialog.imagecluster-loupe[open] figure img")


def holidays() -> Path:
    db = DATA / "page-holidays.db"
    if not db.exists():
        partial = db.with_suffix(".partial")
        partial.unlink(missing_ok=True)
        photos = SHARED / "holidays_subset"
        subprocess.run(
            [sys.executable, "-m", "importer", "import", str(partial), str(photos), "-s"], check=True, cwd=ROOT
        )
        partial.rename(db)
    return db


def twenty_thousand() -> Path:
    """20,000 outings' fingerprints with pictures (the Holidays thumbnails, cycled) and capture times."""
    db = DATA / "page-events-20000.db"
    if db.exists():
        return db
    source, _ = database(20_000, events=True, arrays=False, dims=1280)
    partial = db.with_suffix(".partial")
    shutil.copy(source, partial)
    pictures = sqlite3.connect(holidays()).execute("select jpeg, width, height from thumbnails").fetchall()
    conn = sqlite3.connect(partial)
    ids = [row[0] for row in conn.execute("select id, timestamp from images order by id")]
    times = dict(conn.execute("select id, timestamp from images"))
    conn.executemany(
        "update images set taken = ?, name = ?, path = ? where id = ?",
        [
            (
                datetime.fromtimestamp(times[i], timezone.utc).strftime("%Y-%m-%dT%H:%M:%S"),
                f"IMG_{i:05d}.JPG",
                f"/photos/{i // 1000:02d}/IMG_{i:05d}.JPG",
                i,
            )
            for i in ids
        ],
    )
    conn.executemany(
        "insert or replace into thumbnails (image_id, jpeg, width, height) values (?, ?, ?, ?)",
        [(i, *pictures[k % len(pictures)]) for k, i in enumerate(ids)],
    )
    conn.commit()
    conn.close()
    partial.rename(db)
    return db


def measure(db: Path, repeat: int) -> dict[str, list[float]]:
    from playwright.sync_api import sync_playwright

    times: dict[str, list[float]] = {"cold": [], "again": [], "release": [], "loupe": []}
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "photos.db"
        shutil.copy(db, copy)
        with datasette_server(copy) as url, sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            start = time.perf_counter()
            page.goto(url + "/photos/-/cluster")
            page.wait_for_function(FIRST_PHOTO, timeout=600_000, polling=50)
            times["cold"].append(time.perf_counter() - start)
            for k in range(repeat):
                start = time.perf_counter()
                page.goto(url + "/photos/-/cluster")
                page.wait_for_function(FIRST_PHOTO, timeout=60_000, polling=50)
                times["again"].append(time.perf_counter() - start)

                box = page.locator("#imagecluster-sim").bounding_box()
                y = box["y"] + box["height"] / 2
                target = 0.6 + 0.05 * (k % 2)  # another sim each time: a new cut of the cached tree
                page.mouse.move(box["x"] + box["width"] * 0.48, y)
                page.mouse.down()
                page.mouse.move(box["x"] + box["width"] * target, y, steps=4)
                before = page.locator(".imagecluster-results").element_handle()
                start = time.perf_counter()
                page.mouse.up()
                page.wait_for_function(
                    "old => !document.contains(old) && !document.querySelector('.imagecluster-stale')",
                    arg=before,
                    timeout=60_000,
                    polling="raf",
                )
                times["release"].append(time.perf_counter() - start)

                start = time.perf_counter()
                page.locator(".imagecluster-photo-link").nth(k % 3).click()
                page.wait_for_function(LOUPE_SHOWN, timeout=60_000, polling="raf")
                times["loupe"].append(time.perf_counter() - start)
                page.keyboard.press("Escape")
            browser.close()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if not (SHARED / "holidays_subset").exists():
        sys.exit(f"the Holidays photos are not at {SHARED / 'holidays_subset'} (set IMAGECLUSTER_SHARED_DATA)")
    print(f"Machine: {machine()}")
    repeat = 3 if args.quick else 7
    for label, db in (("69 Holidays photos", holidays()), ("20,000 photos", twenty_thousand())):
        found = measure(db, repeat)
        print(f"\n{label} (median of {repeat}; the cold page once)")
        print(f"  first photo, cold page (a fresh server):   {found['cold'][0]:7.2f} s")
        print(f"  first photo, the page again:               {statistics.median(found['again']):7.2f} s")
        print(f"  slider release to the gallery updated:     {statistics.median(found['release']):7.2f} s")
        print(f"  click to the loupe's large picture shown:  {statistics.median(found['loupe']):7.2f} s")


if __name__ == "__main__":
    main()
