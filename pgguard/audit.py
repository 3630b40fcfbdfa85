"""`pgguard audit`: who overrode what, when, with which token; and what was refused.

Overrides are rows of ``pgguard.audit``, written in the transaction that used the token.
Refusals roll back with their transaction, so the server writes each one to its log instead,
as one line ``pgguard-refusal: {json}``; this module reads those lines back from the current
server log file (through ``pg_read_file``, which needs superuser or ``pg_read_server_files``)
or from a log file given by path, and says which sources it could read.

Any session can ``RAISE LOG`` a line that looks like a refusal. Each real one carries ``seq``,
a number drawn from ``pgguard.refusal_seq`` (which no session can draw from, and which a
rollback does not give back); a line without one, with one never drawn, or with one seen twice
is shown with ``suspect`` saying why. A forger who guesses an unused number below the counter
is not caught this way: the counter still says how many refusals there really were.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import psycopg

from .errors import NotInstalled, PrivilegeError

REFUSAL_PREFIX = "pgguard-refusal: "
_REFUSAL_LINE = re.compile(re.escape(REFUSAL_PREFIX) + r"(\{.*\})\s*$")


@dataclass(frozen=True)
class AuditEntry:
    """One override (``kind='override'``) or refusal (``kind='refusal'``)."""

    at: dt.datetime
    kind: str
    op: str
    object: str
    command_tag: str | None
    session_user: str | None
    application_name: str | None
    client_addr: str | None
    jti: str | None
    sub: str | None
    why: str | None
    detail: str | None
    source: str  # "pgguard.audit" | "server log"
    seq: int | None = None  # refusals: the number drawn from pgguard.refusal_seq
    suspect: str | None = None  # refusals: why this line may not be the guard's own
    deploy: dict[str, Any] | None = None  # deploys: id, outcome, exit code, restore point, summary
    #: overrides: None when a token approved it, "empty" when the table held no row
    reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict (``at`` in ISO 8601)."""
        data = asdict(self)
        data["at"] = self.at.isoformat()
        return data


@dataclass(frozen=True)
class AuditReport:
    """Entries, oldest first, and what each source said."""

    entries: tuple[AuditEntry, ...]
    sources: dict[str, str]  # source name -> "read" or why it could not be read


def read_audit(
    conn: psycopg.Connection[Any], *, since: dt.timedelta, log_file: Path | None = None
) -> AuditReport:
    """Overrides from ``pgguard.audit`` and refusals from the server log, since ``since`` ago."""
    if conn.execute("SELECT to_regclass('pgguard.audit')").fetchone() == (None,):
        raise NotInstalled("pgguard is not installed in this database")
    sources: dict[str, str] = {}
    entries: list[AuditEntry] = []
    try:
        rows = conn.execute(
            """
            SELECT at, kind, op, object, command_tag, session_user_name, application_name,
                   host(client_addr), jti, sub, why, detail, reason
              FROM pgguard.audit WHERE at > now() - %s ORDER BY at, id
            """,
            (since,),
        ).fetchall()
    except psycopg.errors.InsufficientPrivilege as e:
        if not conn.autocommit:
            conn.rollback()
        raise PrivilegeError(
            f'role "{conn.info.user}" may not read the audit trail',
            hint="grant it membership: GRANT pgguard_auditor TO <role>",
        ) from e
    entries.extend(
        AuditEntry(
            at=r[0],
            kind=r[1],
            op=r[2],
            object=r[3],
            command_tag=r[4],
            session_user=r[5],
            application_name=r[6],
            client_addr=r[7],
            jti=r[8],
            sub=r[9],
            why=r[10],
            detail=r[11],
            reason=r[12],
            source="pgguard.audit",
        )  # fmt: skip
        for r in rows
    )
    sources["pgguard.audit"] = "read"
    entries.extend(_deploys(conn, since))

    db = conn.info.dbname
    cutoff = dt.datetime.now(dt.timezone.utc) - since
    if log_file is not None:
        try:
            text = log_file.read_text(errors="replace")
        except OSError as e:
            sources["server log"] = f"could not read {log_file}: {e.strerror}"
        else:
            entries.extend(parse_refusals(text.splitlines(), db=db, since=cutoff))
            sources["server log"] = f"read {log_file}"
    else:
        text_or_reason = _server_log(conn)
        if isinstance(text_or_reason, tuple):
            path, text = text_or_reason
            entries.extend(parse_refusals(text.splitlines(), db=db, since=cutoff))
            sources["server log"] = f"read {path}"
        else:
            sources["server log"] = text_or_reason
    if sources.get("server log", "").startswith("read"):
        entries = _check_sequence(conn, entries, sources)
    entries.sort(key=lambda e: e.at)
    return AuditReport(tuple(entries), sources)


def _deploys(conn: psycopg.Connection[Any], since: dt.timedelta) -> list[AuditEntry]:
    """Deploys (`pgguard deploy`, `snapshot` + `verify`) as entries of kind ``deploy``."""
    if conn.execute("SELECT to_regclass('pgguard.deploys')").fetchone() == (None,):
        return []
    rows = conn.execute(
        """
        SELECT id, started_at, finished_at, session_user_name, application_name,
               host(client_addr), command, restore_time, restore_lsn::text, restore_txid,
               outcome, exit_code, summary
          FROM pgguard.deploys WHERE started_at > now() - %s ORDER BY started_at, id
        """,
        (since,),
    ).fetchall()
    out = []
    for r in rows:
        point = f"restore point {r[7].isoformat()} lsn {r[8]} txid {r[9]}"
        unapproved = (r[12] or {}).get("unapproved") or []
        out.append(
            AuditEntry(
                at=r[1],
                kind="deploy",
                op="deploy",
                object=r[6] or "",
                command_tag=None,
                session_user=r[3],
                application_name=r[4],
                client_addr=r[5],
                jti=None,
                sub=None,
                why=None,
                detail=f"{r[10]}"
                + (f" (exit code {r[11]})" if r[11] is not None else "")
                + (f": {'; '.join(unapproved)}" if unapproved else "")
                + f"; {point}",
                source="pgguard.deploys",
                deploy={
                    "id": r[0],
                    "finished_at": r[2].isoformat() if r[2] else None,
                    "outcome": r[10],
                    "exit_code": r[11],
                    "restore_point": {
                        "time": r[7].isoformat(),
                        "lsn": r[8],
                        "txid": r[9],
                    },
                    "summary": r[12],
                },
            )
        )
    return out


def _check_sequence(
    conn: psycopg.Connection[Any], entries: list[AuditEntry], sources: dict[str, str]
) -> list[AuditEntry]:
    """Flag refusal lines whose ``seq`` the server never drew, or drew for another line."""
    row = conn.execute(
        "SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM pgguard.refusal_seq"
    ).fetchone()
    drawn = row[0] if row else 0
    seen: dict[int, int] = {}
    for e in entries:
        if e.seq is not None:
            seen[e.seq] = seen.get(e.seq, 0) + 1
    out: list[AuditEntry] = []
    suspects = 0
    for e in entries:
        reason = None
        if e.kind == "refusal":
            if e.seq is None:
                reason = "no sequence number: not written by pgguard"
            elif e.seq > drawn:
                reason = f"sequence number {e.seq} was never drawn (the counter is at {drawn})"
            elif seen[e.seq] > 1:
                reason = f"sequence number {e.seq} appears on more than one line"
        if reason:
            suspects += 1
            e = replace(e, suspect=reason)
        out.append(e)
    sources["refusal counter"] = f"{drawn} refusal(s) since install"
    if suspects:
        sources["server log"] += f"; {suspects} line(s) suspect (see 'suspect')"
    return out


def _server_log(conn: psycopg.Connection[Any]) -> tuple[str, str] | str:
    """(path, text) of the current server log, or why it cannot be read."""
    try:
        row = conn.execute("SELECT pg_catalog.pg_current_logfile()").fetchone()
        path = row[0] if row else None
        if not path:
            return (
                "refusals not read: the server has no log file of its own (logging_collector is"
                " off); pass --log-file with the file its stderr goes to"
            )
        text_row = conn.execute("SELECT pg_catalog.pg_read_file(%s)", (path,)).fetchone()
    except psycopg.errors.InsufficientPrivilege:
        if not conn.autocommit:
            conn.rollback()
        return (
            "refusals not read: reading the server log needs superuser or pg_read_server_files;"
            " on managed platforms, search the provider's log viewer for 'pgguard-refusal:'"
        )
    except psycopg.Error as e:
        if not conn.autocommit:
            conn.rollback()
        return f"refusals not read: {e.diag.message_primary or e}"
    return path, (text_row[0] if text_row else "")


def parse_refusals(
    lines: Iterable[str], *, db: str | None = None, since: dt.datetime | None = None
) -> list[AuditEntry]:
    """The refusals recorded in server log lines (other lines are ignored)."""
    out: list[AuditEntry] = []
    for line in lines:
        m = _REFUSAL_LINE.search(line)
        if not m:
            continue
        try:
            rec = json.loads(m.group(1))
            at = dt.datetime.fromisoformat(rec["at"])
        except (ValueError, KeyError, TypeError):
            continue
        if db is not None and rec.get("db") != db:
            continue
        if since is not None and at < since:
            continue
        objects = rec.get("objects") or []
        out.append(
            AuditEntry(
                at=at,
                kind="refusal",
                op=str(rec.get("op")),
                object=", ".join(objects),
                command_tag=rec.get("command_tag"),
                session_user=rec.get("session_user"),
                application_name=rec.get("application_name"),
                client_addr=rec.get("client_addr"),
                jti=rec.get("jti"),
                sub=rec.get("sub"),
                why=None,
                detail=rec.get("detail"),
                source="server log",
                seq=rec["seq"] if isinstance(rec.get("seq"), int) else None,
            )
        )
    return out
