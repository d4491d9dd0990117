"""Regression tests for a hostile review's findings (issue 26): each failed before its fix, on both Datasette lines."""

from __future__ import annotations

import html

import pytest

from .conftest import ROOT_ACTOR as ROOT
from .conftest import change, invoke, rows
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
