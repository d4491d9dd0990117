"""How the code opens a database, asks what it holds, and reads and writes it in transactions.

One read-only opener, one way to ask which tables and columns exist, and
the three transaction shapes every module uses.

A request that reads fingerprints in one statement and image details in
another can see a prune or an import land in between, and then asks for
images that no longer exist. Everything a request needs is therefore read
inside one read transaction, and that transaction always ends: a connection
left inside a transaction pins an old snapshot for every later reader on it
(and keeps the WAL from being checkpointed).
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import quote


def connect_read_only(path: str, timeout: float = 5.0) -> sqlite3.Connection:
    """A connection that can never write to the file (``mode=ro``), checked to be an SQLite database.

    Raises ``FileNotFoundError`` for a missing file (SQLite would report only
    "unable to open"), and ``sqlite3.DatabaseError`` for anything else; callers word the message.
    """
    if not os.path.exists(path):
        raise FileNotFoundError(path)
    conn = sqlite3.connect("file:" + quote(os.path.abspath(path)) + "?mode=ro", uri=True, timeout=timeout)
    try:
        conn.execute("select count(*) from sqlite_master").fetchone()
    except sqlite3.DatabaseError:
        conn.close()
        raise
    return conn


def tables(conn: sqlite3.Connection) -> set[str]:
    """The names of the database's tables and views (older schemas lack the newer tables)."""
    return {name for (name,) in conn.execute("select name from sqlite_master where type in ('table', 'view')")}


def has_tables(conn: sqlite3.Connection, *names: str) -> bool:
    return set(names) <= tables(conn)


def columns(conn: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in conn.execute("select * from pragma_table_info(?)", (table,))}


def require_transaction(conn: sqlite3.Connection) -> None:
    """For code that must run inside a caller's transaction: fail loudly where it does not."""
    assert conn.in_transaction, "this must be called inside a transaction"


@contextmanager
def read_transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """Run the block in one fresh read transaction on a connection of its own (``db.execute_fn``).

    A transaction some earlier failure left open is rolled back first, so the
    block never reads an old snapshot; the block's own is rolled back however
    it ends.
    """
    if conn.in_transaction:
        conn.rollback()
    conn.execute("begin")
    try:
        yield conn
    finally:
        if conn.in_transaction:
            conn.rollback()
    assert not conn.in_transaction


@contextmanager
def nested_read_transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """The same for code called inside a running statement (an SQL function).

    The statement that calls the function may still be reading, so the
    transaction is ended with COMMIT (which, for a transaction that wrote
    nothing, only ends it) rather than ROLLBACK, which would abort that
    statement. Inside an open transaction the block simply joins it.
    """
    if conn.in_transaction:
        yield conn
        return
    conn.execute("begin")
    try:
        yield conn
    finally:
        if conn.in_transaction:
            conn.execute("commit")


@contextmanager
def write_transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """The block as one write transaction, taken at once (``BEGIN IMMEDIATE``), so a concurrent
    writer waits for it rather than failing halfway; rolled back if the block raises."""
    assert not conn.in_transaction, "write transactions don't nest"
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.rollback()
        raise
    conn.commit()


@contextmanager
def joined_write_transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """The block in the caller's transaction when there is one (Datasette 1.0a's ``execute_write_fn``
    opens one around the function it runs), else in a write transaction of its own."""
    if conn.in_transaction:
        yield conn
        return
    with write_transaction(conn):
        yield conn
