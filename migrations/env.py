"""Alembic environment for pgguard's own tables.

pgguard never opens its own engine here: `pgguard.installer.install` passes the live connection in
``config.attributes["connection"]`` so the migration runs inside the install transaction, under
its advisory lock. The version table lives in schema ``pgguard`` so it can never collide with
the host application's ``alembic_version``.
"""

from __future__ import annotations

from alembic import context

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only reachable when someone runs `alembic` by hand
    raise RuntimeError("pgguard migrations run through `pgguard install`, not the alembic CLI")

context.configure(
    connection=connection,
    version_table="alembic_version",
    version_table_schema="pgguard",
    transactional_ddl=True,
)
with context.begin_transaction():
    context.run_migrations()
