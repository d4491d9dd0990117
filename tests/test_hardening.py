"""Regression tests for a hostile review's findings (issue 26): each failed before its fix, on both Datasette lines."""

from __future__ import annotations

import html
import os
import stat

import numpy as np
import pytest

from datasette_imagecluster.errors import ClusterError

from .conftest import ROOT_ACTOR as ROOT
from .conftest import change, invoke, rows
from .test_export import EXISTING, exiftool
from .test_verdict_page import PAGE, page, post


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "target",
    [
        "/\\evil.example",
        "/\t/evil.example",
        "/%09/evil.example",
        "//evil.example",
        "/%2F/evil.example",
        "/ok\r\nSet-Cookie: x=1",
        "/ok\x00",
        "https://evil.example/",
        " /photos",
    ],
)
async def test_a_verdicts_next_never_leaves_the_site_nor_breaks_the_answer(writable, db_path, target):
    """3, 4: where the browser goes back to after a verdict is a path on this site, or the page itself."""
    answer = await post(writable, ROOT, [("verdict", "same"), ("id", "1"), ("id", "2"), ("next", target)])
    assert answer.status_code == 302
    assert answer.headers["location"] == "/photos/-/cluster"
    assert rows(db_path, "select count(*) from verdicts") == [(1,)]  # written, and answered


@pytest.mark.asyncio
async def test_a_verdicts_next_on_this_site_is_followed_with_its_query(writable):
    answer = await post(writable, ROOT, [("verdict", "same"), ("id", "1"), ("id", "2"), ("next", PAGE + "&x=a%20b")])
    assert answer.status_code == 302 and answer.headers["location"] == PAGE + "&x=a%20b"


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "fields",
    [
        [("verdict", "same"), ("id", "1"), ("id", str(2**64))],
        [("verdict", "different"), ("id", "-1"), ("id", "2")],
        [("not", f"{2**70}:1,2")],
        [("not", f"1:2,{2**63}")],
    ],
)
async def test_ids_beyond_64_bits_are_a_400_not_a_500(writable, db_path, fields):
    """5: an id SQLite can't hold is a bad request."""
    answer = await post(writable, ROOT, fields)
    assert answer.status_code == 400 and "photo ids must be whole numbers" in answer.text
    assert rows(db_path, "select count(*) from verdicts") == [(0,)]


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "which, fields", [("verdict", [("verdict", "same"), ("id", "1"), ("id", "2")]), ("save", [("name", "trips")])]
)
async def test_a_newer_schema_is_not_written_from_the_page(writable, db_path, which, fields):
    """6: as the CLI refuses to write to a database of a newer schema, so does the page."""
    change(db_path, "pragma user_version = 99")
    answer = await post(writable, ROOT, fields, which=which, action=f"/photos/-/cluster/{which}")
    assert answer.status_code == 400 and "schema version 99, newer than" in answer.text
    assert rows(db_path, "select count(*) from verdicts") == [(0,)]
    assert rows(db_path, "select count(*) from clusterings") == [(0,)]


@pytest.mark.asyncio
async def test_not_this_one_on_a_card_of_one_photo_says_it_recorded_nothing(writable, db_path):
    """7: "not this one" with no other photo on the card is not "Recorded"."""
    answer = await post(writable, ROOT, [("not", "3:3")])
    _, soup, _ = await page(writable, ROOT, after=answer)
    assert "Not recorded: photo 3 is alone in its cluster" in soup.text and "Recorded: photo 3" not in soup.text
    assert rows(db_path, "select count(*) from verdicts") == [(0,)]


@pytest.mark.asyncio
@pytest.mark.parametrize("name", ["a/b", "trips.json", "Trips.JSON", "back\\slash"])
async def test_names_that_would_break_the_changes_links_are_refused(writable, db_path, runner, name):
    """8: a name with a slash or ending in .json would make its changes page another page."""
    answer = await post(writable, ROOT, [("name", name)], which="save")
    assert answer.status_code == 400 and "a clustering's name" in html.unescape(answer.text)
    result = invoke(runner, "cluster", db_path, "--save", name, ok=False)
    assert result.exit_code == 1 and "a clustering's name" in result.output and "Traceback" not in result.output
    assert rows(db_path, "select count(*) from clusterings") == [(0,)]


@pytest.mark.asyncio
async def test_a_good_name_is_saved_and_its_changes_page_found(writable):
    await post(writable, ROOT, [("name", "trips 2024 (draft)")], which="save")
    await post(writable, ROOT, [("name", "trips 2024 (draft)")], which="save")
    answer = await writable.client.get("/photos/-/cluster/changes/trips%202024%20%28draft%29.json")
    assert answer.status_code == 200 and answer.json()["name"] == "trips 2024 (draft)"


def test_the_verdict_command_on_a_file_that_is_not_sqlite_or_too_new_is_one_line(runner, tmp_path, db_path):
    """16: no traceback for a file that isn't a database, a newer schema, or an id SQLite can't hold."""
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database at all" * 100)
    result = invoke(runner, "verdict", junk, "same", 1, 2, ok=False)
    assert result.exit_code == 1 and "is not a readable SQLite database" in result.output
    change(db_path, "pragma user_version = 99")
    result = invoke(runner, "verdict", db_path, "same", 1, 2, ok=False)
    assert result.exit_code == 1 and "schema version 99, newer than" in result.output
    result = invoke(runner, "verdict", db_path, "same", 1, 2**64, ok=False)
    assert result.exit_code == 2 and "Traceback" not in result.output


@pytest.fixture
def bursts(runner, tmp_path, photo_folder):
    """The export tests' library: five photos in two clusters saved as "bursts", no sidecar yet."""
    db = tmp_path / "photos.db"
    invoke(runner, "import", db, photo_folder, "--weights", "none", "--workers", "0", "-s")
    invoke(runner, "cluster", db, "--alpha", "1", "--sim", "0.99", "--save", "bursts")
    return db, photo_folder


def test_new_sidecars_get_the_mode_the_umask_gives(runner, bursts):
    """9: not mkstemp's 0600, which digiKam under another account or a share can't read."""
    db, photos = bursts
    previous = os.umask(0o022)
    try:
        invoke(runner, "export-xmp", db, "--clustering", "bursts")
    finally:
        os.umask(previous)
    sidecars = list(photos.rglob("*.xmp"))
    assert sidecars and {stat.S_IMODE(p.stat().st_mode) for p in sidecars} == {0o644}
    existing = sidecars[0]
    existing.chmod(0o664)
    invoke(runner, "cluster", db, "--alpha", "1", "--sim", "0.5", "--save", "bursts")
    invoke(runner, "export-xmp", db, "--clustering", "bursts")
    assert stat.S_IMODE(existing.stat().st_mode) == 0o664  # a sidecar that was there keeps its own


ENTITY = """<?xml version="1.0"?>
<!DOCTYPE x:xmpmeta [<!ENTITY me "Jane Doe">]>
<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/">
<dc:creator><rdf:Seq><rdf:li>&me;</rdf:li></rdf:Seq></dc:creator></rdf:Description></rdf:RDF></x:xmpmeta>
"""
EXTERNAL = ENTITY.replace('<!ENTITY me "Jane Doe">', '<!ENTITY me SYSTEM "file:///etc/passwd">')
LAUGHS = ENTITY.replace(
    '<!ENTITY me "Jane Doe">',
    '<!ENTITY a "aaaaaaaaaa">'
    + "".join(f'<!ENTITY {chr(98 + k)} "{("&" + chr(97 + k) + ";") * 10}">' for k in range(8))
    + '<!ENTITY me "&i;">',
)


def test_a_sidecars_own_entities_are_kept_as_text_and_outside_ones_never_read(runner, bursts):
    """10: an entity the sidecar declares is written back as its text, so the file stays well-formed; an
    external one is not read, and an exponential one is refused, with the rest written."""
    db, photos = bursts
    own, outside, laughs = (photos / "trip" / name for name in ("a1.jpg.xmp", "a2.jpg.xmp", "a3.jpg.xmp"))
    own.write_text(ENTITY)
    outside.write_text(EXTERNAL)
    laughs.write_text(LAUGHS)
    result = invoke(runner, "export-xmp", db, "--clustering", "bursts", ok=False)
    assert "Traceback" not in result.output
    assert exiftool(own)["XMP-dc:Creator"] == ["Jane Doe"]
    assert "root:" not in outside.read_text() and "root:" not in result.output
    assert laughs.read_text() == LAUGHS and f"skipped {laughs}" in result.output


def test_one_bad_sidecar_is_skipped_with_its_reason_and_the_rest_are_written(runner, bursts):
    """11, 12: a truncated sidecar and a FIFO are listed and left as they were; every other sidecar is written."""
    db, photos = bursts
    truncated = photos / "trip" / "a1.jpg.xmp"
    truncated.write_text(EXISTING[:300])
    fifo = photos / "trip" / "a2.jpg.xmp"
    os.mkfifo(fifo)
    for dry_run in (("--dry-run",), ()):
        result = invoke(runner, "export-xmp", db, "--clustering", "bursts", "--no-keepers", *dry_run, ok=False)
        assert result.exit_code == 1 and "2 sidecar(s) skipped" in result.output
        assert f"skipped {truncated}: not well-formed XML" in result.output
        assert f"skipped {fifo}: cannot read it:" in result.output and "not a regular file" in result.output
        assert ("3 sidecar(s) would change" if dry_run else "3 sidecar(s) written") in result.output
    assert truncated.read_text() == EXISTING[:300] and stat.S_ISFIFO(fifo.lstat().st_mode)
    assert exiftool(photos / "home" / "b1.jpg.xmp")["XMP-lr:HierarchicalSubject"] == [
        "imagecluster|bursts|cluster-0002"
    ]


def test_a_blob_larger_than_any_fingerprint_is_refused_before_it_is_read():
    """1 (in part): imagecluster_vector(zeroblob(40000000)) decoded 40 MB into a 490 MB JSON text; no model gives
    more than 25,088 values, so a BLOB beyond MAX_VALUES is refused with its size, whatever the function."""
    from datasette_imagecluster.library import vectors
    from datasette_imagecluster.web import sql_functions

    blob = bytes(4 * (vectors.MAX_VALUES + 1))
    for function in (sql_functions.vector, sql_functions.dims, lambda b: sql_functions.distance(b, b)):
        with pytest.raises(ValueError, match="at most 65,536 float32 values, this BLOB has 262,148 bytes"):
            function(blob)
    assert sql_functions.dims(bytes(4 * vectors.MAX_VALUES)) == vectors.MAX_VALUES  # the largest one still is
    with pytest.raises(ValueError, match="at most 65,536 values"):
        vectors.encode(np.zeros(vectors.MAX_VALUES + 1))


@pytest.mark.asyncio
async def test_sql_over_a_huge_blob_is_a_query_error(db_path):
    from .test_plugin import make_ds, sql

    response = await sql(make_ds(db_path), "select length(imagecluster_vector(zeroblob(40000000))) as n", status=400)
    assert "raised exception" in response.text or "error" in response.text.lower()


def test_concurrent_builds_share_one_memory_guard(monkeypatch):
    """2 (memory): two full-matrix builds that each fit the guard but not together run one after the other;
    one that never fits is refused in words."""
    import threading

    from datasette_imagecluster.engine import memory
    from datasette_imagecluster.engine.clustering import build_tree

    rng = np.random.default_rng(0)
    vectors, times = rng.random((600, 32)).astype(np.float32), np.sort(rng.uniform(0, 1e6, 600))
    one = 600 * 599 // 2 * 8 * 3  # imagecluster's distance with time: content, time and linkage's copy
    monkeypatch.setattr(memory.MEMORY, "budget", lambda: 1.5 * one)
    monkeypatch.setattr(memory.MEMORY, "peak", 0)
    trees, errors = [], []

    def build(alpha):
        try:
            trees.append(build_tree(vectors, times, alpha=alpha, method="average", distance="imagecluster"))
        except Exception as e:  # noqa: BLE001 (reported below)
            errors.append(e)

    threads = [threading.Thread(target=build, args=(a,)) for a in (0.2, 0.3, 0.4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(trees) == 3
    assert memory.MEMORY.peak == one and memory.MEMORY.held == 0  # never two at once
    monkeypatch.setattr(memory.MEMORY, "budget", lambda: 0.5 * one)
    with pytest.raises(ClusterError, match="needs about .* GiB for the distance matrix"):
        build_tree(vectors, times, alpha=0.2, method="average", distance="imagecluster")


def test_the_build_queue_shares_bounds_prioritises_and_drops_what_nobody_waits_for():
    """2 (queue): builds are keyed by their parameters, bounded per database and in all, the most recently
    asked first, and one nobody asked for in ABANDONED seconds is dropped before it runs."""
    import threading

    from datasette_imagecluster.web.builds import ABANDONED, MAX_PER_DATABASE, Builds, Busy

    now = [0.0]
    builds = Builds(workers=1, clock=lambda: now[0])
    gate, ran = threading.Event(), []

    def work(name):
        def make():
            if name == "first":
                gate.wait(30)
            ran.append(name)
            return name

        return make

    first = builds.submit("first", "photos", work("first"))
    while builds.waiting():  # until the one worker has taken it
        pass
    old = [builds.submit(k, "photos", work(k)) for k in ("a", "b")]
    assert builds.submit("a", "photos", work("a")) is old[0]  # the same parameters: the same build
    assert len(old) + 1 < MAX_PER_DATABASE
    builds.submit("c", "photos", work("c"))
    with pytest.raises(Busy, match="^4 clusterings are being computed already, 4 of them for this database "):
        builds.submit("d", "photos", work("d"))
    other = builds.submit("x", "elsewhere", work("x"))  # another database has room
    now[0] = ABANDONED / 2
    kept = builds.submit("b", "photos", work("b"))  # a page still waiting asks again
    now[0] = ABANDONED + 1
    latest = builds.submit("y", "elsewhere", work("y"))
    assert old[0].cancelled() and other.cancelled() and builds.dropped == 3  # a, c and x: nobody asked again
    assert not kept.cancelled()
    assert builds.waiting() == ["y", "b"]  # the most recently asked runs first
    gate.set()
    assert first.result(10) == "first" and latest.result(10) == "y" and kept.result(10) == "b"
    assert ran == ["first", "y", "b"]


def test_a_waiting_page_is_told_where_its_build_stands():
    """The computing page's stage, share done and time left: a place in the queue, then the time run against
    an estimate from the builds this server finished before (seconds per photo squared)."""
    import threading

    from datasette_imagecluster.web.builds import DEFAULT_RATE, Builds

    now = [100.0]
    builds = Builds(workers=1, clock=lambda: now[0])
    gate, started = threading.Event(), threading.Event()

    def slow():
        started.set()
        gate.wait(30)
        now[0] += 8.0  # 10 s of the clock in all
        return "tree"

    first = builds.submit("big", "photos", slow, photos=20_000)
    started.wait(10)
    builds.submit("next", "photos", lambda: "small", photos=10)
    now[0] += 2.0
    running, queued = builds.progress("big"), builds.progress("next")
    assert running.running and running.elapsed == 2.0 and running.estimate == DEFAULT_RATE * 20_000**2
    assert running.describe() == (
        "Computing for 2 s, about 50% done, about 2 s left (estimated from the clusterings this server finished "
        "before)."
    )
    assert (
        not queued.running
        and queued.ahead == 1
        and queued.describe() == "Waiting for 1 other clustering to finish first."
    )
    gate.set()
    assert first.result(10) == "tree"
    assert builds.progress("big") is None and builds.rate == pytest.approx(10.0 / 20_000**2)


@pytest.mark.asyncio
async def test_under_load_core_pages_answer_abandoned_builds_are_dropped_and_nothing_is_a_5xx(tmp_path, monkeypatch):
    """1, 2: anonymous clients ask the page for clusterings at ten alphas and give up, others call the SQL
    functions under a 50 ms limit, while another client reads core pages; then a user asks for another one."""
    import asyncio
    import json
    from urllib.parse import quote

    from datasette_test import Datasette

    from datasette_imagecluster.engine import memory
    from datasette_imagecluster.web import builds

    from .test_clustering import make_fingerprint_db

    rng = np.random.default_rng(1)
    n = 4000
    db = tmp_path / "photos.db"
    make_fingerprint_db(
        db, rng.random((n, 64)).astype(np.float32), np.sort(rng.uniform(0, 3e7, n)), np.arange(1, n + 1)
    )
    queue = builds.Builds()
    monkeypatch.setattr(builds, "BUILDS", queue)
    monkeypatch.setattr(builds, "ABANDONED", 0.5)
    monkeypatch.setattr(memory.MEMORY, "peak", 0)
    ds = Datasette(
        [str(db)],
        plugin_config={"datasette-imagecluster": {"wait_seconds": 0.01}},
        settings={"sql_time_limit_ms": 50},
    )
    page = "/photos/-/cluster.json?distance=imagecluster&method=average&sim=0.2&alpha={}"
    answers, core = [], []

    async def abandon(alpha):
        answers.append(await ds.client.get(page.format(alpha)))

    async def query(alpha):
        sql = f"select imagecluster_clusters(0.2, {alpha}, 2, 'average', 'euclidean', null, 'imagecluster') as c"
        answers.append(await ds.client.get("/photos.json?_shape=array&sql=" + quote(sql), follow_redirects=True))

    async def read_core():
        for _ in range(20):
            core.append((await ds.client.get("/photos/images.json?_size=5")).status_code)

    await asyncio.gather(
        *(abandon(round(0.10 + k / 100, 2)) for k in range(10)),
        *(query(round(0.50 + k / 100, 2)) for k in range(4)),
        read_core(),
    )
    assert core == [200] * 20
    assert {a.status_code for a in answers} <= {200, 202, 400} and all(a.status_code < 500 for a in answers)
    assert any("The server is busy" in a.text for a in answers if a.status_code == 202)  # the bound held
    refused = [a for a in answers if a.status_code == 400]
    assert all("raised exception" in a.text or "error" in a.text.lower() for a in refused)
    await asyncio.sleep(0.7)  # nobody asks again: what still waits its turn is abandoned
    for _ in range(400):  # a user who keeps the page open, as its reload does
        mine = await ds.client.get(page.format(0.99))
        if mine.status_code == 200:
            break
        await asyncio.sleep(0.05)
    assert mine.status_code == 200 and json.loads(mine.text)["clusters"] is not None
    assert queue.dropped >= 1  # the abandoned builds that had not started never ran
    assert memory.MEMORY.peak <= memory.MEMORY.budget() and memory.MEMORY.held == 0
