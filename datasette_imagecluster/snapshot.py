"""One consistent read of the database per page, JSON answer or SQL function call.

A request that reads fingerprints in one statement and image details in
another can see a prune or an import land in between, and then asks for
images that no longer exist. Everything a request needs is therefore read
inside one read transaction, and that transaction always ends: a connection
left inside a transaction pins an old snapshot for every later reader on it
(and keeps the WAL from being checkpointed).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager


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
