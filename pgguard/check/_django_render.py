"""Child process of `pgguard check` for Django projects: the SQL of each migration in plan order.

Run as ``python -m pgguard.check._django_render SPEC OUT`` with the project directory as the
working directory; SPEC is JSON (``settings``, ``targets``). Writes JSON to OUT: one entry per
migration in the order ``migrate`` would run them, with each operation's SQL (as ``sqlmigrate``
renders it), the line of the operation in the migration file, and the operations that are
Python code. A separate process because Django's settings can be configured once per process.
Nothing here connects to a database, unless asked to read which migrations are applied
(``unapplied``), or the schema editor itself must ask one (it then fails, and the migration is
reported as not checked).
"""

from __future__ import annotations

import ast
import json
import os
import sys
from pathlib import Path
from typing import Any


def _op_lines(path: str) -> list[int]:
    """Line of each element of ``operations = [...]`` in a migration file."""
    try:
        tree = ast.parse(Path(path).read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError):
        return []
    for node in ast.walk(tree):
        targets: list[Any] = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AnnAssign):
            targets = [node.target]
        value = getattr(node, "value", None)
        for t in targets:
            if (
                isinstance(t, ast.Name)
                and t.id == "operations"
                and isinstance(value, ast.List | ast.Tuple)
            ):
                return [e.lineno for e in value.elts]
    return []


def _line_of_operations(path: str) -> int:
    lines = _op_lines(path)
    return lines[0] - 1 if lines else 1


def _offline(connection: Any) -> None:
    """Merge parameters into SQL without a server (Django asks its connection to do it)."""
    from psycopg import sql as psql

    def compose_sql(sql: str, params: Any) -> str:
        return str(sql) % tuple(psql.quote(p) for p in params or ())

    connection.ops.compose_sql = compose_sql


def render(
    settings: str | None, targets: list[list[Any]], unapplied: bool = False
) -> list[dict[str, Any]]:
    if settings:
        os.environ["DJANGO_SETTINGS_MODULE"] = settings
    sys.path.insert(0, os.getcwd())
    import django
    from django.db import connections
    from django.db.migrations.executor import MigrationExecutor
    from django.db.migrations.loader import MigrationLoader
    from django.db.migrations.operations import RunPython

    django.setup()
    connection = connections["default"]
    if connection.vendor != "postgresql":
        raise SystemExit(f"the default database is {connection.vendor}, not PostgreSQL")
    _offline(connection)
    # with `unapplied`, the one query: which migrations the database has (django_migrations)
    loader = MigrationLoader(connection if unapplied else None, ignore_no_migrations=True)
    graph = loader.graph
    wanted = [(t[0], t[1]) for t in targets]
    plan_targets: list[tuple[str, str | None]] = []
    for app, name in wanted:
        if name is None:
            leaves = [n for n in graph.leaf_nodes() if n[0] == app]
            if not leaves:
                raise SystemExit(f"app {app!r} has no migrations")
            plan_targets += leaves
        elif name == "zero":
            plan_targets.append((app, None))
        else:
            key = loader.get_migration_by_prefix(app, name)
            plan_targets.append((key.app_label, key.name))
    if not plan_targets:
        plan_targets = list(graph.leaf_nodes())
    # `app zero` reverses an applied app: start from everything applied; else from nothing
    reversing = any(n is None for _, n in plan_targets)
    if not unapplied:
        applied = {k: graph.nodes[k] for k in graph.nodes} if reversing else {}
        loader.applied_migrations = applied
    executor = MigrationExecutor.__new__(MigrationExecutor)
    executor.connection = connection
    executor.loader = loader
    plan = executor.migration_plan(plan_targets, clean_start=not (reversing or unapplied))

    out: list[dict[str, Any]] = []
    for migration, backwards in plan:
        module = sys.modules[type(migration).__module__]
        path = os.path.relpath(str(module.__file__))
        lines = _op_lines(str(module.__file__))
        entry: dict[str, Any] = {
            "file": path,
            "name": f"{migration.app_label}.{migration.name}",
            "atomic": bool(migration.atomic and connection.features.can_rollback_ddl),
            "backwards": backwards,
            "ops": [],
            "error": None,
        }
        out.append(entry)
        state = loader.project_state((migration.app_label, migration.name), at_end=False)
        ops = list(enumerate(migration.operations))
        try:
            with connection.schema_editor(collect_sql=True, atomic=False) as editor:
                runs: list[tuple[int, Any, Any, Any]] = []
                if backwards:
                    new_state = state
                    for i, op in ops:
                        new_state = new_state.clone()
                        old_state = new_state.clone()
                        op.state_forwards(migration.app_label, new_state)
                        runs.insert(0, (i, op, new_state, old_state))
                else:
                    for i, op in ops:
                        old_state = state.clone()
                        op.state_forwards(migration.app_label, state)
                        runs.append((i, op, old_state, state.clone()))
                for i, op, from_state, to_state in runs:
                    line = lines[i] if i < len(lines) else _line_of_operations(path)
                    if not op.reduces_to_sql:
                        code = getattr(op, "reverse_code" if backwards else "code", None)
                        if code is RunPython.noop:
                            continue  # writes nothing, by Django's own definition
                        entry["ops"].append(
                            {"line": line, "python": True, "describe": op.describe(), "sql": []}
                        )
                        continue
                    before = len(editor.collected_sql)
                    if backwards:
                        if not op.reversible:
                            raise SystemExit(f"{path}: {op.describe()} is not reversible")
                        op.database_backwards(migration.app_label, editor, from_state, to_state)
                    else:
                        op.database_forwards(migration.app_label, editor, from_state, to_state)
                    entry["ops"].append(
                        {
                            "line": line,
                            "python": False,
                            "describe": op.describe(),
                            "sql": editor.collected_sql[before:],
                        }
                    )
                before = len(editor.collected_sql)
            # deferred SQL (foreign keys, indexes) runs when the schema editor closes
            deferred = editor.collected_sql[before:]
            if deferred:
                entry["ops"].append(
                    {
                        "line": _line_of_operations(path),
                        "python": False,
                        "describe": "deferred SQL",
                        "sql": deferred,
                    }
                )
        except Exception as e:  # noqa: BLE001 - any failure is reported for this migration
            entry["error"] = f"{type(e).__name__}: {e}".strip()
    return out


def main() -> None:
    spec = json.loads(sys.argv[1])
    result = render(spec.get("settings"), spec.get("targets", []), spec.get("unapplied", False))
    Path(sys.argv[2]).write_text(json.dumps(result), encoding="utf-8")


if __name__ == "__main__":
    main()
