"""`pgguard run`: a migration script's statements, each schema change through the executor.

Privilege mode only. The script is split with pglast (the server's own parser), and checked
whole before anything runs: statements that cannot run inside a function (``VACUUM``,
``CREATE INDEX CONCURRENTLY``, ...) or that are not the executor's to run are reported with their
line and what to do instead. Then, in one transaction unless told otherwise, schema changes go
through ``pgguard.run_ddl()``; data statements and ``SET`` run directly as the connected role.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import psycopg
from pglast import parse_sql
from pglast.parser import ParseError

from .errors import GuardRefused, NotInstalled, PgguardError

#: Statements run directly as the connected role: data, and session settings.
DIRECT = {
    "SelectStmt",
    "InsertStmt",
    "UpdateStmt",
    "DeleteStmt",
    "MergeStmt",
    "VariableSetStmt",
    "TruncateStmt",
}
#: BEGIN/COMMIT in a script: the run's own transaction stands in for them.
TRANSACTION_MARKERS = {"TRANS_STMT_BEGIN", "TRANS_STMT_START", "TRANS_STMT_COMMIT"}


@dataclass(frozen=True)
class Statement:
    """One statement of a script: where it starts (1-based line), its text and node type."""

    line: int
    sql: str
    kind: str


@dataclass(frozen=True)
class RunReport:
    """What `run` did."""

    statements: int
    through_executor: int
    direct: int
    skipped: int
    tags: tuple[str, ...]
    seconds: float


class ScriptError(PgguardError):
    """The script cannot run as it is; nothing was run."""

    exit_code = 2


class StatementFailed(PgguardError):
    """A statement of the script failed; its transaction was rolled back."""

    exit_code = 1


def split(text: str) -> list[Statement]:
    """The script's statements, in order, with the line each starts on."""
    try:
        stmts = parse_sql(text)
    except ParseError as e:
        raise ScriptError(f"the script does not parse: {e}") from e
    raw = text.encode()
    out = []
    for s in stmts:
        start = s.stmt_location or 0
        end = start + s.stmt_len if s.stmt_len else len(raw)
        piece = raw[start:end]
        # a statement's location includes the blank lines and comments before it
        lead = len(piece) - len(piece.lstrip())
        line = raw[: start + lead].count(b"\n") + 1
        out.append(Statement(line, piece.decode().strip(), type(s.stmt).__name__))
    return out


def problem(stmt: Statement, node: Any) -> str | None:
    """Why a statement cannot go through the executor (None: it can)."""
    kind = stmt.kind
    if kind == "VacuumStmt":
        return (
            "VACUUM/ANALYZE cannot run inside a function (the executor is one): autovacuum"
            " covers it, or run it as the owner credential (break-glass)"
        )
    if kind == "IndexStmt" and getattr(node, "concurrent", False):
        return (
            "CREATE INDEX CONCURRENTLY cannot run inside a function (the executor is one):"
            " drop CONCURRENTLY, or run it as the owner credential (break-glass)"
        )
    if kind in ("ReindexStmt", "RefreshMatViewStmt", "DropStmt") and _concurrent(node):
        return (
            "CONCURRENTLY cannot run inside a function (the executor is one): drop it, or run"
            " it as the owner credential (break-glass)"
        )
    if kind == "TransactionStmt":
        verb = getattr(getattr(node, "kind", None), "name", "")
        if verb not in TRANSACTION_MARKERS:
            return (
                "savepoints and rollbacks inside a script are not supported: pgguard run wraps"
                " the script in one transaction (--no-transaction runs each statement alone)"
            )
    if kind in ("DoStmt", "CopyStmt", "CallStmt", "ExecuteStmt", "PrepareStmt"):
        return (
            f"{kind[:-4].upper()} is not a schema change and does not go through the executor;"
            " run it as the owner credential (break-glass) after review"
        )
    return None


def _concurrent(node: Any) -> bool:
    if getattr(node, "concurrent", False):
        return True
    for p in getattr(node, "params", None) or ():
        if getattr(p, "defname", None) == "concurrently":
            return True
    return False


def plan(text: str) -> list[tuple[Statement, str]]:
    """Each statement with its route: "executor", "direct" or "skip". Raises
    :class:`ScriptError` listing every statement that cannot run, before anything runs."""
    stmts = split(text)
    nodes = [s.stmt for s in parse_sql(text)]
    routes: list[tuple[Statement, str]] = []
    problems: list[str] = []
    for stmt, node in zip(stmts, nodes, strict=True):
        why = problem(stmt, node)
        if why:
            problems.append(f"line {stmt.line}: {why}")
        elif stmt.kind == "TransactionStmt":
            routes.append((stmt, "skip"))
        elif stmt.kind in DIRECT:
            routes.append((stmt, "direct"))
        else:
            routes.append((stmt, "executor"))
    if problems:
        raise ScriptError(
            "the script cannot run through the executor; nothing was run:\n  "
            + "\n  ".join(problems)
        )
    return routes


def run(conn: psycopg.Connection[Any], text: str, *, single_transaction: bool = True) -> RunReport:
    """Run a script (see the module docstring). On a refusal or error the transaction (or,
    with ``single_transaction=False``, that statement) is rolled back and the error raised,
    carrying the statement's line."""
    started = time.monotonic()
    routes = plan(text)
    if conn.execute("SELECT to_regprocedure('pgguard.run_ddl(text, name[])')").fetchone() == (
        None,
    ):
        raise NotInstalled(
            "this database has no privilege-mode pgguard (pgguard.run_ddl is missing): run"
            " migration scripts directly where event triggers guard them",
        )
    if not conn.autocommit:
        conn.rollback()
        conn.autocommit = True
    tags: list[str] = []
    counts = {"executor": 0, "direct": 0, "skip": 0}

    def one(stmt: Statement, route: str) -> None:
        counts[route] += 1
        if route == "skip":
            return
        try:
            if route == "direct":
                cur = conn.execute(stmt.sql.encode())
                tags.append(cur.statusmessage or "")
            else:
                row = conn.execute("SELECT pgguard.run_ddl(%s)", (stmt.sql,)).fetchone()
                tags.append(str(row[0]) if row else "")
        except psycopg.Error as e:
            refused = GuardRefused.from_diag(e)
            if refused is not None:
                refused.message = f"line {stmt.line}: {refused.message}"
                raise refused from e
            raise StatementFailed(
                f"line {stmt.line}: {e.diag.message_primary or e}", hint=e.diag.message_hint
            ) from e

    if single_transaction:
        with conn.transaction():
            for stmt, route in routes:
                one(stmt, route)
    else:
        for stmt, route in routes:
            with conn.transaction():
                one(stmt, route)
    return RunReport(
        statements=len(routes),
        through_executor=counts["executor"],
        direct=counts["direct"],
        skipped=counts["skip"],
        tags=tuple(tags),
        seconds=time.monotonic() - started,
    )


def executor_statements(text: str) -> list[str] | None:
    """For framework hooks: the statements of ``text`` to send through the executor, or
    ``None`` when ``text`` holds no schema change (it runs as it is).

    Raises :class:`ScriptError` when ``text`` mixes schema changes with other statements, or
    holds one that cannot run inside a function: the caller should split it, or run it as the
    owner credential.
    """
    try:
        routes = plan(text)
    except ScriptError:
        if not any(route == "executor" for _, route in _plan_loose(text)):
            return None
        raise
    ddl = [s.sql for s, route in routes if route == "executor"]
    if not ddl:
        return None
    if len(ddl) != len([r for _, r in routes if r != "skip"]):
        raise ScriptError(
            "this SQL mixes schema changes with other statements; in privilege mode send them"
            " separately (schema changes go through pgguard.run_ddl)"
        )
    return ddl


def _plan_loose(text: str) -> list[tuple[Statement, str]]:
    """Routes without the checks of :func:`plan` (what is in the text at all)."""
    try:
        stmts = split(text)
    except ScriptError:
        return []
    return [
        (s, "direct" if s.kind in DIRECT or s.kind == "TransactionStmt" else "executor")
        for s in stmts
    ]
