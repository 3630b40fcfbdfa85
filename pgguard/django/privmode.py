"""Privilege mode for Django: the schema editor sends every schema change through the executor.

``ENGINE: "pgguard.django"`` uses :class:`PrivilegeSchemaEditor`. Where pgguard runs in
privilege mode (``pgguard.run_ddl`` exists in the database), each statement the schema editor
would run - migrations' operations, ``RunSQL``, deferred constraints and indexes, the
``django_migrations`` table itself - goes through ``pgguard.run_ddl`` and is judged there; data
statements (``RunPython``, ``RunSQL`` holding DML) run as they are. Anywhere else it is Django's
own PostgreSQL schema editor. Statements that cannot run inside a function
(``AddIndexConcurrently``) fail with :class:`pgguard.runner.ScriptError` saying what to do.
"""

from __future__ import annotations

from typing import Any

from django.db.backends.postgresql.schema import DatabaseSchemaEditor

from ..runner import executor_statements

_PROBE = "SELECT pg_catalog.to_regprocedure('pgguard.run_ddl(text, name[])') IS NOT NULL"


def executor_in_use(connection: Any) -> bool:
    """Is pgguard installed here in privilege mode? Asked once per database connection."""
    connection.ensure_connection()
    raw = connection.connection
    cached = getattr(connection, "_pgguard_executor", None)
    if cached is not None and cached[0] is raw:
        return bool(cached[1])
    with connection.cursor() as cursor:
        cursor.execute(_PROBE)
        row = cursor.fetchone()
    found = bool(row and row[0])
    connection._pgguard_executor = (raw, found)
    return found


class PrivilegeSchemaEditor(DatabaseSchemaEditor):  # type: ignore[misc]
    """Django's PostgreSQL schema editor, routing schema changes through ``pgguard.run_ddl``."""

    def execute(self, sql: Any, params: Any = ()) -> Any:
        if self.collect_sql or not executor_in_use(self.connection):
            return super().execute(sql, params)
        text = str(sql)
        if params is not None:
            # what Django's PostgreSQL editor does too: DDL takes no server-side parameters
            text = self.connection.ops.compose_sql(text, params)
        statements = executor_statements(text)
        if statements is None:
            return super().execute(text, None)
        with self.connection.cursor() as cursor:
            for statement in statements:
                cursor.execute("SELECT pgguard.run_ddl(%s)", [statement])
        return None
