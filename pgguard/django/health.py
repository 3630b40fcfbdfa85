"""A health-check view for Django: 200 only when the guard is healthy and no migration is
unapplied, else 503; a JSON body either way.

    # urls.py
    from pgguard.django.health import health
    urlpatterns = [path("health/pgguard/", health)]

Body: ``{"healthy": bool, "database": alias, "guard": {"healthy", "problems", "notes",
"installed_version", "row_limits"} | null, "unapplied_migrations": ["app.0002_x", …],
"error": str | null}``. ``settings.PGGUARD_HEALTH_DATABASE`` picks the database alias
(default ``"default"``). The guard is read on a connection of its own when the request's is
inside a transaction, so the view never ends a transaction it did not start. For scripts,
``pgguard status --json`` stays the check to use.
"""

from __future__ import annotations

from typing import Any

import psycopg
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections
from django.db.migrations.executor import MigrationExecutor
from django.http import HttpRequest, JsonResponse

from ..errors import PgguardError
from ..health import Status, status

# psycopg arguments Django adds that are not libpq connection parameters
_NOT_LIBPQ = {"cursor_factory", "context", "prepare_threshold", "server_side_binding"}


def _guard_status(alias: str) -> Status:
    connection = connections[alias]
    connection.ensure_connection()
    raw = connection.connection
    if (
        isinstance(raw, psycopg.Connection)
        and connection.get_autocommit()
        and not connection.in_atomic_block
    ):
        return status(raw)
    params = {k: v for k, v in connection.get_connection_params().items() if k not in _NOT_LIBPQ}
    with psycopg.connect(autocommit=True, **params) as conn:
        return status(conn)


def _unapplied(alias: str) -> list[str]:
    executor = MigrationExecutor(connections[alias])
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    return [f"{m.app_label}.{m.name}" for m, backwards in plan if not backwards]


def health_report(alias: str | None = None) -> dict[str, Any]:
    """The view's body, as a dict (``healthy`` decides 200 or 503)."""
    alias = alias or getattr(settings, "PGGUARD_HEALTH_DATABASE", DEFAULT_DB_ALIAS)
    body: dict[str, Any] = {
        "healthy": False,
        "database": alias,
        "guard": None,
        "unapplied_migrations": [],
        "error": None,
    }
    try:
        st = _guard_status(alias)
        body["guard"] = {
            "healthy": st.healthy,
            "problems": list(st.problems),
            "notes": list(st.notes),
            "installed_version": st.installed_version,
            "row_limits": [
                {"table": r.table, "op": r.op, "enabled": r.enabled} for r in st.row_limits
            ],
        }
        body["unapplied_migrations"] = _unapplied(alias)
    except PgguardError as e:
        body["error"] = e.message
        return body
    except (psycopg.Error, DatabaseError) as e:
        body["error"] = f"database error: {str(e).strip()}"
        return body
    body["healthy"] = st.healthy and not body["unapplied_migrations"]
    return body


def health(request: HttpRequest) -> JsonResponse:
    """200 when the guard is healthy and every migration is applied, else 503."""
    body = health_report()
    return JsonResponse(body, status=200 if body["healthy"] else 503)
