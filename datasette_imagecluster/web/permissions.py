"""Permission checks that work on Datasette 0.65 and on the 1.0 alphas.

0.65 checks ``(action, resource)`` pairs with ``check_visibility`` and
``permission_allowed``; 1.0a replaced both with ``allowed(action=, resource=)``
and resource objects. Every plugin view asks here, the way Datasette's own
views do, before it reads anything.
"""

from __future__ import annotations

try:  # Datasette 1.0a20+
    from datasette.resources import DatabaseResource, TableResource
except ImportError:  # Datasette 0.65
    DatabaseResource = TableResource = None
WRITE_API = DatabaseResource is not None  # 1.0a: insert-row and delete-row are core's; 0.65 has no write API


async def can_view(datasette, actor, database: str, tables: tuple[str, ...] = ()) -> bool:
    """True exactly when core would show this actor the page of each of the tables (or the database).

    Core's table page checks on 0.65 the cascade ``view-table``, then
    ``view-database``, then ``view-instance`` (the first rule that speaks
    decides), and on 1.0a ``view-table`` alone, whose resolution already takes
    database and instance rules as parent rules. Either way a table allowed
    inside a denied database is shown, and a table denied inside an allowed
    one is not: the plugin's pages follow the tables they read.
    """
    if DatabaseResource is None:
        checks = [[("view-table", (database, t)), ("view-database", database), "view-instance"] for t in tables]
        for permissions in checks or [[("view-database", database), "view-instance"]]:
            visible, _ = await datasette.check_visibility(actor, permissions=permissions)
            if not visible:
                return False
        return True
    if not tables:
        resource = DatabaseResource(database=database)
        return await datasette.allowed(action="view-database", resource=resource, actor=actor)
    for table in tables:
        if not await datasette.allowed(
            action="view-table", resource=TableResource(database=database, table=table), actor=actor
        ):
            return False
    return True


async def can_execute_sql(datasette, actor, database: str) -> bool:
    """True exactly when core would run this actor's arbitrary SQL (``?sql=``) on this database.

    0.65's query view first requires the database to be visible
    (``view-database``, then ``view-instance``) and then ``execute-sql``;
    1.0a resolves ``execute-sql`` with its ``also_requires`` chain, which
    includes ``view-database``.
    """
    if DatabaseResource is None:
        visible, _ = await datasette.check_visibility(actor, permissions=[("view-database", database), "view-instance"])
        return visible and await datasette.permission_allowed(actor, "execute-sql", database, default=True)
    return await datasette.allowed(action="execute-sql", resource=DatabaseResource(database=database), actor=actor)


async def can_write_rows(datasette, actor, database: str, table: str, action: str = "insert-row") -> bool:
    """Whether the actor may add (``insert-row``) or remove (``delete-row``) rows of a table, as core
    decides for its own write API on 1.0a; on 0.65, which has no write API, only a permission plugin
    grants those actions."""
    if DatabaseResource is None:
        return await datasette.permission_allowed(actor, action, (database, table), default=False)
    return await datasette.allowed(action=action, resource=TableResource(database=database, table=table), actor=actor)
