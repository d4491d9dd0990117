"""The ``?sql=`` subset: a user's query whose first column picks the photos to cluster.

It is arbitrary SQL, so it follows core's rules for arbitrary SQL exactly:
core's own check that it is a SELECT (``validate_sql_select``), core's time
limit, a read-only connection, and only for an actor core would let run SQL
on this database (:func:`.permissions.can_execute_sql`, checked by the view
before anything here runs). It runs inside the request's one read
transaction (:mod:`..library.connections`), so nothing it does outlives the request.
"""

from __future__ import annotations

import sqlite3

from ..errors import SubsetError


def run_subset(conn: sqlite3.Connection, sql: str, time_limit_ms: int) -> frozenset[int]:
    """Image ids from the query's first column, read under core's time limit.

    Only actors allowed to run this SQL in core get here, so the SQLite error
    is theirs to see, as core shows it to them.
    """
    from datasette.utils import InvalidSql, sqlite_timelimit, validate_sql_select  # not for every CLI clustering

    try:  # core's rule: one SELECT (or WITH), no disallowed PRAGMA; core's message if not
        validate_sql_select(sql)
    except InvalidSql as e:
        raise SubsetError(str(e))
    try:
        with sqlite_timelimit(conn, time_limit_ms):
            rows = conn.execute(sql).fetchall()
    except sqlite3.Error as e:  # OperationalError, ProgrammingError (two statements), ...
        if e.args == ("interrupted",):
            raise SubsetError(f"the subset query took longer than the time limit ({time_limit_ms} ms)")
        raise SubsetError(f"the subset query failed: {e}")
    ids = set()
    for row in rows:
        if not row or not isinstance(row[0], int):
            raise SubsetError("the subset query must return image ids (integers) in its first column")
        ids.add(row[0])
    return frozenset(ids)
