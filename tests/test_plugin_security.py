"""The plugin runs only what core would run, for whom core would run it, on one snapshot per request.

``?sql=`` follows core's rules (a SELECT, read-only, core's time limit, core's
permission for arbitrary SQL); no failure leaves a connection inside a
transaction; every page reads one consistent snapshot, so a concurrent import
or prune never produces a 5xx; and a fuzz run over every URL and parameter
never does either. Both Datasette lines run these tests (``.ci/run``).
"""

from __future__ import annotations

import shutil
import threading
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import quote, urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from importer.pipeline import ImportOptions, run_import

from .conftest import change, datasette_server, rows, save_jpeg, scene
from .test_plugin import IS_1_0, get, make_ds

COUNT = "select count(*) from images"
INSERT_COPY = (
    "insert into images (path, folder, name, size, mtime, sha256, timestamp, source) "
    "select path || '.copy', folder, name, size, mtime, sha256 || 'c', timestamp, source from images "
    "where id = (select min(id) from images)"
)


def core_sql_path(query: str) -> str:
    """Core's own arbitrary-SQL JSON endpoint on each line."""
    return ("/photos/-/query.json?sql=" if IS_1_0 else "/photos.json?sql=") + quote(query)


async def core_count(ds) -> int:
    response = await get(ds, core_sql_path(COUNT) + "&_shape=array")
    assert response.status_code == 200, response.text
    return list(response.json()[0].values())[0]


# -- ?sql= runs only SELECTs -------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "query, message",
    [
        ("delete from images", "Statement must be a SELECT"),
        ("insert into images (path) values ('x')", "Statement must be a SELECT"),
        ("update images set path = 'x'", "Statement must be a SELECT"),
        ("replace into images (id, path) values (1, 'x')", "Statement must be a SELECT"),
        ("drop table images", "Statement must be a SELECT"),
        ("attach database ':memory:' as other", "Statement must be a SELECT"),
        ("pragma journal_mode = delete", "Statement must be a SELECT"),
        ("select * from pragma_journal_mode('delete')", "disallowed PRAGMA"),
        ("begin", "Statement must be a SELECT"),
        ("vacuum", "Statement must be a SELECT"),
        ("select id from images; delete from images", "one statement at a time"),
        ("select id from images;\ndelete from images", "one statement at a time"),
    ],
)
async def test_non_select_subsets_are_400_and_execute_nothing(db_path, query, message):
    ds = make_ds(db_path, settings={"num_sql_threads": 1})  # one read connection: a leak would show
    before = rows(db_path, "select id, path from images order by id")
    for path in ("/photos/-/cluster.json", "/photos/-/cluster"):
        response = await get(ds, f"{path}?sql={quote(query)}")
        assert response.status_code == 400, response.text
        assert message in response.text
    assert rows(db_path, "select id, path from images order by id") == before
    assert rows(db_path, "pragma journal_mode") == [("wal",)]
    change(db_path, INSERT_COPY)  # an external import lands: every read after it sees it
    assert await core_count(ds) == len(before) + 1


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "query, message",
    [
        ("select name from images", "image ids (integers)"),
        ("select * from nowhere", "the subset query failed: no such table: nowhere"),
        ("select id from images where id = :missing", "the subset query failed"),
        (
            "with recursive n(x) as (select 1 union all select x + 1 from n) select x from n",
            "longer than the time limit",
        ),
    ],
)
async def test_a_failed_subset_is_400_and_later_reads_are_fresh(db_path, query, message):
    ds = make_ds(db_path, settings={"num_sql_threads": 1, "sql_time_limit_ms": 200})
    n = await core_count(ds)
    response = await get(ds, "/photos/-/cluster.json?sql=" + quote(query))
    assert response.status_code == 400 and message in response.json()["error"]
    change(db_path, INSERT_COPY)
    assert await core_count(ds) == n + 1
    # The plugin's own next read sees it too: a new fingerprint makes the new photo clusterable.
    change(
        db_path,
        "insert into fingerprints (image_id, model, layer, weights, dims, vector) "
        "select (select max(id) from images), model, layer, weights, dims, vector "
        "from fingerprints where image_id = (select min(image_id) from fingerprints)",
    )
    report = (await get(ds, "/photos/-/cluster.json")).json()
    assert report["n_images"] == n + 1


@pytest.mark.asyncio
async def test_a_failure_inside_the_read_leaves_no_transaction(db_path):
    """An error raised after the read transaction began (mixed dimensions) still ends it."""
    ds = make_ds(db_path, settings={"num_sql_threads": 1})
    n = await core_count(ds)
    change(
        db_path,
        "update fingerprints set vector = x'0000803f', dims = 1 "
        "where image_id = (select max(image_id) from fingerprints)",
    )
    assert (await get(ds, "/photos/-/cluster.json?model=vgg16")).status_code == 400
    assert (await get(ds, "/photos/-/cluster/similar/1.json")).status_code == 400
    change(db_path, INSERT_COPY)
    assert await core_count(ds) == n + 1


# -- ?sql= only for actors core lets run SQL ------------------------------------------

ROOT = {"id": "root"}
RULES = {
    "default": {},
    "sql for root only": {"allow_sql": ROOT},
    "database sql for root only": {"databases": {"photos": {"allow_sql": ROOT}}},
    "database denied, images allowed": {
        "databases": {"photos": {"allow": ROOT, "tables": {"images": {"allow": True}}}}
    },
    "database denied, the plugin's tables allowed": {
        "databases": {
            "photos": {"allow": ROOT, "tables": {t: {"allow": True} for t in ("images", "fingerprints", "thumbnails")}}
        }
    },
    "database denied": {"databases": {"photos": {"allow": ROOT}}},
    "instance denied": {"allow": ROOT},
}
# A value that only the fingerprints table holds, and an error that would reflect it.
ORACLE = "select id from images where json_extract('{}', (select weights from fingerprints limit 1)) is null"


@pytest.mark.asyncio
@pytest.mark.parametrize("name", RULES)
@pytest.mark.parametrize("actor", [None, ROOT])
async def test_sql_subset_is_allowed_exactly_where_core_runs_sql(db_path, name, actor):
    rules = RULES[name]
    ds = make_ds(db_path, config=rules) if IS_1_0 else make_ds(db_path, metadata=rules)
    cookies = {"ds_actor": ds.sign({"a": actor}, "actor")} if actor else {}
    query = "select id from images"
    core = await get(ds, core_sql_path(query), cookies=cookies)
    ours = await get(ds, "/photos/-/cluster.json?sql=" + quote(query), cookies=cookies)
    assert core.status_code in (200, 403)
    if core.status_code == 403:
        assert ours.status_code == 403, (name, ours.text)
    else:
        page = await get(ds, "/photos/-/cluster.json", cookies=cookies)
        assert ours.status_code == page.status_code, (name, ours.text)  # what the page itself allows
    for path in ("/photos/-/cluster.json", "/photos/-/cluster"):
        leaked = await get(ds, f"{path}?sql={quote(ORACLE)}", cookies=cookies)
        if core.status_code == 403:
            assert leaked.status_code == 403 and "random-seed" not in leaked.text


# -- one snapshot per request ----------------------------------------------------------


@pytest.mark.asyncio
async def test_similar_to_a_missing_photo_is_404(db_path):
    ds = make_ds(db_path)
    response = await get(ds, "/photos/-/cluster/similar/999999.json")
    assert response.status_code == 404 and "Record not found" in response.json()["error"]
    change(db_path, "delete from fingerprints where image_id = 1")
    response = await get(ds, "/photos/-/cluster/similar/1.json")
    assert response.status_code == 404 and "no fingerprint" in response.json()["error"]


def fetch(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def _churn(db: Path, photos: Path, extra: Path, stop: threading.Event, rounds: list[int]) -> None:
    """Import new photos, then delete them and import with --prune, until told to stop."""
    options = ImportOptions(weights="none", workers=0, prune=True, batch_size=2)
    n = 0
    while not stop.is_set():
        n += 1
        for shot in range(4):
            save_jpeg(
                extra / f"round{n}" / f"shot{shot}.jpg",
                scene(100 + n, variant=shot),
                taken=f"2024:01:{1 + n % 28:02d} 12:00:{10 * shot:02d}",
            )
        run_import(str(db), [str(photos), str(extra)], options)
        shutil.rmtree(extra / f"round{n}")
        run_import(str(db), [str(photos), str(extra)], options)
        rounds.append(n)


@pytest.mark.slow
def test_no_5xx_during_concurrent_imports_and_prunes(library, tmp_path):
    db = tmp_path / "photos.db"
    shutil.copy(library[0], db)
    extra = tmp_path / "extra"
    extra.mkdir()
    stop, rounds, errors = threading.Event(), [], []
    paths = [
        "/photos/-/cluster.json?sim={sim}&alpha={alpha}&method={method}",
        "/photos/-/cluster?sim={sim}&alpha={alpha}&method={method}",
        "/photos/-/cluster.json?sim={sim}&sql=select+id+from+images+where+id+%25+2+%3D+0",
        "/photos/-/cluster/similar/{id}.json?k=5",
        "/photos/-/cluster/thumbnail/{id}.jpg",
        "/photos/-/cluster/preview/{id}.jpg",
        "/photos/-/cluster/count.json?sim={sim}&alpha={alpha}&method={method}",
        "/photos.json?sql=select+imagecluster_label(id,+{sim},+{alpha})+from+images",
        "/photos.json?sql=select+imagecluster_clusters({sim},+{alpha})",
    ]
    methods = ["average", "single", "complete", "ward"]
    with datasette_server(db, "--setting", "sql_time_limit_ms", "5000") as url:
        churn = threading.Thread(target=_churn, args=(db, library[1], extra, stop, rounds))
        churn.start()

        def request(i: int) -> int:
            path = paths[i % len(paths)].format(
                sim=round(0.3 + (i % 7) / 10, 2), alpha=(i % 5) / 4, method=methods[i % 4], id=1 + i % 40
            )
            status, body = fetch(url + path)
            if status >= 500:
                errors.append((path, status, body[:300]))
            return status

        statuses: set[int] = set()
        try:
            with ThreadPoolExecutor(4) as clients:  # four clients at once, as a busy server sees them
                sent = 0
                # 200 requests at least, spread over 3 import-and-prune rounds at least
                while (sent < 200 or len(rounds) < 3) and churn.is_alive() and sent < 20_000:
                    statuses.update(clients.map(request, range(sent, sent + 20)))
                    sent += 20
        finally:
            stop.set()
            churn.join()
        assert not errors, errors
        assert len(rounds) >= 3, "the import and prune loop stopped early (see its traceback above)"
        assert statuses - {200, 202, 404} == set(), sorted(statuses)
        status, body = fetch(url + core_sql_path(COUNT) + "&_shape=arrayfirst")
        assert status == 200 and int(body.strip(b"[]")) == rows(db, COUNT)[0][0]


# -- fuzz: no parameter gives a 5xx -----------------------------------------------------

TEXT = st.one_of(
    st.sampled_from(
        [
            "",
            "0",
            "1",
            "-1",
            "0.5",
            "1e308",
            "nan",
            "inf",
            "-0",
            "9" * 30,
            "0x10",
            " 0.7 ",
            "average",
            "ward",
            "cosine",
            "vgg16",
            "fc2",
            "random-seed-0",
            "imagenet",
            "vgg16|fc2|random-seed-0",
            "a|b",
            "||||",
            "%",
            "'",
            '"',
            "\\",
            "\x00",
            "é",
            "select id from images",
            "select 1; select 2",
            "delete from images",
            "select id from images where id > 3",
            "with t as (select 1) select * from t",
        ]
    ),
    st.text(max_size=40),
)
PARAMS = [
    "sim",
    "alpha",
    "method",
    "metric",
    "min_csize",
    "pca",
    "page",
    "page_size",
    "set",
    "model",
    "layer",
    "weights",
    "sql",
    "k",
    "_shape",
    "format",
]
PATHS = [
    "/-/cluster",
    "/photos/-/cluster",
    "/photos/-/cluster.json",
    "/photos/-/cluster/thumbnail/{id}.jpg",
    "/photos/-/cluster/similar/{id}.json",
    "/nowhere/-/cluster.json",
    "/photos/-/cluster/similar/{id}",
    "/photos/-/cluster.{id}",
    "/photos/-/cluster/{id}",
    "/-/cluster/{id}",
    "/photos/-/cluster/thumbnail/{id}",
    "/photos/-/cluster/count.json",
    "/photos/-/cluster/preview/{id}.jpg",
    "/photos/-/cluster/changes/{id}",
    "/photos/-/cluster/undo",
]
IDS = st.one_of(
    st.integers(-5, 50).map(str),
    st.integers(2**63 - 2, 2**64).map(str),
    st.sampled_from(["", "x", "1.5", "9" * 25, "%2F", "..", "~"]),
)


@pytest.fixture(scope="module")
def fuzz_server(library, tmp_path_factory):
    db = tmp_path_factory.mktemp("fuzz") / "photos.db"
    shutil.copy(library[0], db)
    with datasette_server(db, rich_tracebacks=False) as url:
        yield url, db


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.sampled_from(PATHS), image_id=IDS, params=st.dictionaries(st.sampled_from(PARAMS), TEXT, max_size=6))
def test_fuzzed_urls_never_give_5xx(fuzz_server, path, image_id, params):
    url, db = fuzz_server
    target = url + path.format(id=quote(image_id, safe="")) + "?" + urlencode(params)
    status, body = fetch(target)
    assert status < 500, (target, status, body[:500])


def test_after_fuzzing_core_reads_the_real_row_count(fuzz_server):
    url, db = fuzz_server
    change(db, INSERT_COPY)
    for _ in range(6):  # every read connection
        status, body = fetch(url + core_sql_path(COUNT) + "&_shape=arrayfirst")
        assert status == 200 and int(body.strip(b"[]")) == rows(db, COUNT)[0][0]
