"""Fixtures: photos generated with Pillow, the shared real data, a CLI runner.

Self-contained tests make their own photos here. Tests on the real files in
``../shared/data`` use :func:`shared_data`, which skips with the reason when
that folder is absent (override its place with IMAGECLUSTER_SHARED_DATA).
"""

from __future__ import annotations

import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import types
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from datasette.app import Datasette
from datasette.hookspecs import hookimpl
from datasette.plugins import pm
from PIL import Image

from importer.cli import cli

ROOT = Path(__file__).resolve().parents[1]


def shared_data(*parts: str) -> Path:
    """A path inside ../shared/data, or a skip saying it is absent."""
    base = Path(os.environ.get("IMAGECLUSTER_SHARED_DATA", ROOT.parent / "shared" / "data"))
    path = base.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real test data not found at {path} (set IMAGECLUSTER_SHARED_DATA)")
    return path


def linked_holidays(folder: Path, count: int) -> Path:
    """The first ``count`` Holidays photos linked (not copied) into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for path in sorted(shared_data("holidays_subset").rglob("*.jpg"))[:count]:
        (folder / path.name).symlink_to(path)
    return folder


def exif_bytes(
    taken: str | None = None,
    orientation: int | None = None,
    offset: str | None = None,
    subsec: str | None = None,
    digitized: str | None = None,
    datetime_: str | None = None,
    make: str | None = None,
    model: str | None = None,
    gps: tuple[float, float] | None = None,
) -> bytes:
    """An EXIF block as cameras write it."""
    exif = Image.Exif()
    if orientation is not None:
        exif[0x0112] = orientation
    if make:
        exif[0x010F] = make
    if model:
        exif[0x0110] = model
    if datetime_:
        exif[0x0132] = datetime_
    ifd = exif.get_ifd(0x8769)
    if taken:
        ifd[0x9003] = taken
    if digitized:
        ifd[0x9004] = digitized
    if offset:
        ifd[0x9011] = offset
    if subsec:
        ifd[0x9291] = subsec
    if gps:
        lat, lon = gps
        g = exif.get_ifd(0x8825)
        g[1] = "N" if lat >= 0 else "S"
        g[2] = _dms(abs(lat))
        g[3] = "E" if lon >= 0 else "W"
        g[4] = _dms(abs(lon))
    return exif.tobytes()


def _dms(value: float) -> tuple[float, float, float]:
    d = int(value)
    m = int((value - d) * 60)
    s = round((value - d - m / 60) * 3600, 4)
    return (float(d), float(m), s)


def scene(seed: int, size: tuple[int, int] = (480, 360), variant: int = 0) -> Image.Image:
    """A synthetic photo: a smooth colour field with blobs, one look per seed.

    ``variant`` > 0 gives a near-duplicate of the same scene (slight shift and noise),
    the way a burst of shots of one subject differs.
    """
    rng = np.random.default_rng(seed)
    w, h = size
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    base = rng.uniform(40, 215, 3)
    slope = rng.uniform(-0.4, 0.4, (2, 3))
    img = base + x[..., None] * slope[0] + y[..., None] * slope[1]
    for _ in range(5):
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        r = rng.uniform(min(w, h) / 20, min(w, h) / 3)
        colour = rng.uniform(0, 255, 3)
        mask = ((x - cx - 3 * variant) ** 2 + (y - cy) ** 2) < r * r
        img[mask] = colour
    if variant:
        img += np.random.default_rng(1000 * seed + variant).normal(0, 4, img.shape)
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB")


def save_jpeg(path: Path, img: Image.Image, **exif) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, "JPEG", quality=90, exif=exif_bytes(**exif) if exif else b"")
    return path


@pytest.fixture(scope="session", autouse=True)
def graph_cache(tmp_path_factory) -> Path:
    """Exported model graphs (importer/runtimes.py) go to a cache of the test session's, not the user's."""
    folder = tmp_path_factory.mktemp("cache")
    saved = os.environ.get("IMAGECLUSTER_CACHE")
    os.environ["IMAGECLUSTER_CACHE"] = str(folder)
    yield folder
    if saved is None:
        os.environ.pop("IMAGECLUSTER_CACHE", None)
    else:
        os.environ["IMAGECLUSTER_CACHE"] = saved


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def invoke(runner: CliRunner, *args: str, ok: bool = True):
    """Run the imagecluster CLI; with ok=True, fail loudly on a non-zero exit."""
    result = runner.invoke(cli, [str(a) for a in args], catch_exceptions=False)
    if ok:
        assert result.exit_code == 0, result.output
    return result


@pytest.fixture
def photo_folder(tmp_path: Path) -> Path:
    """Six photos in nested folders: two bursts of near-duplicates and two loners."""
    folder = tmp_path / "photos"
    save_jpeg(folder / "trip" / "a1.jpg", scene(1), taken="2021:06:01 10:00:00")
    save_jpeg(folder / "trip" / "a2.jpg", scene(1, variant=1), taken="2021:06:01 10:00:05")
    save_jpeg(folder / "trip" / "a3.jpg", scene(1, variant=2), taken="2021:06:01 10:00:09")
    save_jpeg(folder / "home" / "b1.jpg", scene(2), taken="2022:01:10 18:30:00")
    save_jpeg(folder / "home" / "b2.jpg", scene(2, variant=1), taken="2022:01:10 18:30:02")
    save_jpeg(folder / "c.jpg", scene(3), taken="2023:03:03 03:03:03")
    return folder


@pytest.fixture(scope="session")
def library(tmp_path_factory):
    """A real imported library: three bursts and two loners, random seeded weights."""
    root = tmp_path_factory.mktemp("library")
    photos = root / "photos"
    for burst, (seed, day) in enumerate([(1, "2021:06:01"), (2, "2022:01:10"), (7, "2022:08:20")]):
        for shot in range(3 if burst < 2 else 2):
            save_jpeg(
                photos / f"burst{burst}" / f"shot{shot}.jpg",
                scene(seed, variant=shot),
                taken=f"{day} 10:00:{10 * shot:02d}",
            )
    save_jpeg(photos / "loner1.jpg", scene(3), taken="2023:03:03 03:03:03")
    save_jpeg(photos / "loner2.jpg", scene(4), taken="2019:05:05 05:05:05")
    db = root / "photos.db"
    from importer.pipeline import ImportOptions, run_import

    run_import(str(db), [str(photos)], ImportOptions(model="vgg16", weights="none", workers=0))
    return db, photos


@pytest.fixture
def db_path(library, tmp_path) -> Path:
    """A private copy of the library, so tests may change it."""
    path = tmp_path / "photos.db"
    shutil.copy(library[0], path)
    return path


def connect(db_path: Path) -> sqlite3.Connection:
    return sqlite3.connect(str(db_path))


def change(db_path: Path, sql: str, params: tuple = ()) -> None:
    """One committed statement on a database file (a catalog edited the way its program would)."""
    conn = sqlite3.connect(db_path)
    try:
        conn.execute(sql, params)
        conn.commit()
    finally:
        conn.close()


def rows(db_path: Path, sql: str, params: tuple = ()) -> list[tuple]:
    """All rows of a query on a database file, the connection closed again."""
    conn = connect(db_path)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ``datasette`` as its console script runs it, but without ``rich`` (Keras installs it). With rich,
# Datasette renders the traceback of every 4xx with all its locals: most of a second per bad request,
# 235 s of the fuzz test's 300 on the 1.0 alphas. Without it, it prints only a 500's (the test fails
# on those anyway).
WITHOUT_RICH = "import sys; sys.modules['rich'] = None; from datasette.cli import cli; sys.exit(cli())"


@contextmanager
def datasette_server(*args: str, rich_tracebacks: bool = True) -> Iterator[str]:
    """A real ``datasette serve`` process on a free loopback port; yields its base URL.

    Its output goes to a file (a pipe nobody reads would fill and block it),
    printed when the block fails so that pytest shows it. ``rich_tracebacks=False``
    for a test that sends hundreds of bad requests: the responses are the same.
    """
    port = free_port()
    log = tempfile.TemporaryFile()
    command = ["-m", "datasette"] if rich_tracebacks else ["-c", WITHOUT_RICH]
    process = subprocess.Popen(
        [sys.executable, *command, "serve", *map(str, args), "--host", "127.0.0.1", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    try:
        while True:
            try:
                urllib.request.urlopen(url + "/-/versions.json", timeout=1)
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise AssertionError("datasette did not start")
                time.sleep(0.2)
        yield url
    except BaseException:
        log.seek(0)
        print(log.read().decode(errors="replace")[-20_000:])
        raise
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


# Which Datasette line the suite runs on (CI runs it on both), and who may write verdicts and saved
# clusterings in the page's tests.
IS_1_0 = not hasattr(Datasette, "permission_allowed")
ROOT_ACTOR = {"id": "root"}
WRITE = {"insert-row": ROOT_ACTOR, "delete-row": ROOT_ACTOR}


@hookimpl
def _grant_verdicts_to_root(actor, action, resource):
    """0.65: what a permission plugin would say: root may write the verdicts table."""
    if action in WRITE and resource in (("photos", "verdicts"), ("photos", "clusterings"), ("photos", "keepers")):
        return bool(actor) and actor.get("id") == "root"
    return None


def grant_plugin() -> types.ModuleType:
    """The hook as a plugin module, as Datasette's plugin list expects one."""
    plugin = types.ModuleType("grant_verdicts_to_root")
    plugin.permission_allowed = _grant_verdicts_to_root
    return plugin


@pytest.fixture
def writable(db_path):
    """A Datasette where root may record verdicts, save clusterings and choose keepers."""
    if IS_1_0:
        tables = {name: {"permissions": WRITE} for name in ("verdicts", "clusterings", "keepers")}
        yield Datasette([str(db_path)], config={"databases": {"photos": {"tables": tables}}})
        return
    pm.register(grant_plugin(), name="grant-verdicts-to-root")
    try:
        yield Datasette([str(db_path)])
    finally:
        pm.unregister(name="grant-verdicts-to-root")
