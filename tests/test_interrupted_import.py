"""An import killed or interrupted mid-run loses at most a batch, and a re-run completes it."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from .conftest import save_jpeg, scene

N_PHOTOS = 24
pytestmark = pytest.mark.slow


@pytest.fixture
def many_photos(tmp_path):
    folder = tmp_path / "photos"
    for i in range(N_PHOTOS):
        save_jpeg(folder / f"p{i:02d}.jpg", scene(100 + i, (320, 240)), taken=f"2020:01:01 10:{i:02d}:00")
    return folder


def start_import(db, folder):
    return subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from importer.cli import cli; cli()",
            "import",
            str(db),
            str(folder),
            "--model",
            "vgg16",  # slow enough on a CPU that the import is still running when the test acts
            "--weights",
            "none",
            "--batch-size",
            "2",
            "--workers",
            "1",
            "-s",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # As a terminal starts it: a shell runs background jobs (a suite started with '&') with Ctrl-C
        # ignored, and a child would inherit that and finish instead of stopping.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def committed(db) -> int:
    if not os.path.exists(db):
        return 0
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            return conn.execute("select count(*) from fingerprints").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.Error:
        return 0


def wait_for_commits(process, db, at_least: int, timeout: float = 120) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        count = committed(db)
        if count >= at_least:
            return count
        assert process.poll() is None, process.communicate()
        time.sleep(0.05)
    raise AssertionError("the import committed nothing in time")


def children(pid: int) -> set[int]:
    found: set[int] = set()
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as f:
            found.update(int(c) for c in f.read().split())
    return found


def wait_gone(pids: set[int], timeout: float = 10) -> set[int]:
    deadline = time.monotonic() + timeout
    alive = set(pids)
    while alive and time.monotonic() < deadline:
        alive = {p for p in alive if os.path.exists(f"/proc/{p}") and open(f"/proc/{p}/stat").read().split()[2] != "Z"}
        time.sleep(0.1)
    return alive


def assert_complete(db):
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("select count(*), count(distinct path) from images").fetchone() == (N_PHOTOS, N_PHOTOS)
        assert conn.execute("select count(*) from fingerprints").fetchone()[0] == N_PHOTOS
        assert conn.execute("select count(*) from thumbnails").fetchone()[0] == N_PHOTOS
        orphans = conn.execute(
            "select (select count(*) from fingerprints where image_id not in (select id from images))"
            " + (select count(*) from thumbnails where image_id not in (select id from images))"
            " + (select count(*) from images where id not in (select image_id from fingerprints))"
        ).fetchone()[0]
        assert orphans == 0
        assert conn.execute("pragma integrity_check").fetchone()[0] == "ok"
    finally:
        conn.close()


def rerun(db, folder):
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "from importer.cli import cli; cli()",
            "import",
            str(db),
            str(folder),
            "--weights",
            "none",
            "--workers",
            "1",
            "-s",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_sigkill_mid_import_then_rerun_gives_every_photo_once(tmp_path, many_photos):
    db = tmp_path / "photos.db"
    process = start_import(db, many_photos)
    before_kill = wait_for_commits(process, db, at_least=2)
    workers = children(process.pid)
    assert workers, "decoding runs in worker processes"
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    assert wait_gone(workers) == set(), "orphaned decoder processes must exit"
    left = committed(db)
    assert before_kill <= left < N_PHOTOS, "the kill should land mid-import"
    out = rerun(db, many_photos)
    assert f"Imported {N_PHOTOS - left}, unchanged {left}" in out
    assert_complete(db)


def test_ctrl_c_stops_cleanly_and_rerun_completes(tmp_path, many_photos):
    db = tmp_path / "photos.db"
    process = start_import(db, many_photos)
    wait_for_commits(process, db, at_least=2)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "Interrupted: photos imported so far are kept" in stderr
    assert "Traceback" not in stderr
    left = committed(db)
    assert 2 <= left < N_PHOTOS
    rerun(db, many_photos)
    assert_complete(db)


def test_a_second_import_into_the_same_database_waits_for_the_first(tmp_path, many_photos):
    """Issue 26, item 15: two imports at once raced ("duplicate column name", "database is locked", "UNIQUE
    constraint failed"); the second now says it waits, then finds every photo the first imported unchanged."""
    db = tmp_path / "photos.db"
    first = start_import(db, many_photos)
    wait_for_commits(first, db, at_least=2)
    second = start_import(db, many_photos)
    second_out, second_err = second.communicate(timeout=300)
    first_out, first_err = first.communicate(timeout=300)
    assert first.returncode == 0, first_err
    assert second.returncode == 0, second_err
    assert "Waiting: another import into" in second_err and "Traceback" not in second_err + first_err
    assert f"Imported {N_PHOTOS}," in first_out
    assert f"Imported 0, unchanged {N_PHOTOS}" in second_out
    assert_complete(db)
