"""`pgguard deploy -- COMMAND`: healthy? → restore point and snapshot → COMMAND → report.

The command runs as a child process with the caller's environment (so a token set by
``pgguard allow … -- pgguard deploy -- …`` in ``PGOPTIONS`` reaches it), its output streams
through, and its exit code is kept: the report's exit code is 1 on unapproved loss, else the
command's.
"""

from __future__ import annotations

import re
import shlex
import signal
import subprocess
import time
from collections.abc import Callable, Iterable, Sequence
from typing import IO, Any

import psycopg

from .errors import PgguardError, UsageError
from .health import Status, status
from .snapshot import DEFAULT_EXACT_MAX_BYTES, Snapshot, take_snapshot
from .verify import DeployReport, RowLossLimit, verify


class DeployRefused(PgguardError):
    """The guard is not healthy, so the deploy did not start."""

    exit_code = 1

    def __init__(self, message: str, problems: Sequence[str], hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.problems = tuple(problems)


#: Pause before re-reading estimated row counts after the command (see :func:`deploy`).
ESTIMATE_SETTLE_SECONDS = 1.0

_URL_PASSWORD = re.compile(r"(\w+://[^:/@\s]*:)[^@\s]*@")
_KV_PASSWORD = re.compile(r"(password\s*=\s*)('[^']*'|[^\s']+)", re.IGNORECASE)


def redact(command_text: str) -> str:
    """The command as recorded in the audit trail: passwords in URLs and conninfo hidden."""
    return _KV_PASSWORD.sub(r"\1***", _URL_PASSWORD.sub(r"\1***@", command_text))


def check_health(conn: psycopg.Connection[Any], *, allow_degraded: bool = False) -> Status:
    """The guard's status; raises :class:`DeployRefused` when degraded (unless allowed)."""
    st = status(conn)
    if not st.healthy and not allow_degraded:
        raise DeployRefused(
            f"pgguard is degraded in database {st.database}: " + "; ".join(st.problems),
            st.problems,
            hint="repair it (pgguard install), or deploy anyway with --allow-degraded",
        )
    return st


def run_command(args: Sequence[str], *, stdout: IO[Any] | None = None) -> int:
    """Run ``args`` with our environment; its output streams through. Returns its exit code
    (128 + N when killed by signal N, as shells report it).

    While it runs, Ctrl-C goes to the command (same process group) and not to us: the deploy
    must still compare and report after an interrupted migration.
    """
    try:
        proc = subprocess.Popen(list(args), stdout=stdout)
    except FileNotFoundError as e:
        raise UsageError(f"command not found: {shlex.quote(args[0])}") from e
    except PermissionError as e:
        raise UsageError(f"cannot run {shlex.quote(args[0])}: {e.strerror}") from e
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        code = proc.wait()
    finally:
        signal.signal(signal.SIGINT, previous)
    return 128 - code if code < 0 else code


def deploy(
    conn: psycopg.Connection[Any],
    command: Sequence[str],
    *,
    allow_degraded: bool = False,
    exact: Iterable[str] = (),
    exact_max_bytes: int = DEFAULT_EXACT_MAX_BYTES,
    limit: RowLossLimit | None = None,
    stdout: IO[Any] | None = None,
    on_snapshot: Callable[[Snapshot], None] | None = None,
) -> DeployReport:
    """The whole loop. ``on_snapshot`` is called before the command runs (the CLI prints the
    restore point there, so it is on screen even if the command never returns)."""
    if not command:
        raise UsageError("no command: pgguard deploy -- COMMAND ARGS…")
    check_health(conn, allow_degraded=allow_degraded)
    text = redact(shlex.join(command))
    snap = take_snapshot(conn, command=text, exact=exact, exact_max_bytes=exact_max_bytes)
    if on_snapshot is not None:
        on_snapshot(snap)
    code = run_command(command, stdout=stdout)
    if any(not t.exact and t.rows is not None for t in snap.tables):
        # the command's sessions report their counts to the statistics as they end (PG 14:
        # up to 500 ms late): give them a moment before estimates are read again
        time.sleep(ESTIMATE_SETTLE_SECONDS)
    return verify(conn, snap, limit=limit, command=text, command_exit=code)
