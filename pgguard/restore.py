"""Restore a pg_dump archive into a guarded database: all of it, or nothing.

``pg_restore --clean`` without ``--single-transaction`` runs statement by statement: the guard
refuses the DROP TABLEs, but the DROP CONSTRAINTs before them go through and COPY appends every
row again - keys gone, rows doubled. And an archive of a guarded database carries pgguard's own
objects (its schema, event triggers, the ``pgguard_truncate_guard`` triggers), which the target
already has. So :func:`restore` runs ``pg_restore`` in one transaction, exiting on the first
error, with a table of contents that leaves pgguard's objects out: without a token the first
refused DROP undoes everything; with one (``pgguard allow … -- pgguard restore …`` passes it in
``PGOPTIONS``) the archive is restored exactly and the guard attaches itself to the tables it
recreates.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .errors import PgguardError, UsageError

#: pgguard's own schemas: every archive entry in them belongs to pgguard
OWN_SCHEMAS = frozenset({"pgguard", "pgguard_sentinel", "pgguard_watch"})

# pg_restore -l names each entry's kind with these words (pg_dump's ArchiveEntry "desc"); the
# longest that prefixes the entry wins, so "TABLE DATA" is not read as "TABLE".
_DESCS = sorted(
    (
        d.strip()
        for d in """ACCESS METHOD|ACL|AGGREGATE|BLOB|BLOB METADATA|BLOBS|CAST|CHECK CONSTRAINT|
    COLLATION|COMMENT|CONSTRAINT|CONVERSION|DATABASE|DATABASE PROPERTIES|DEFAULT|DEFAULT ACL|DOMAIN|
    ENCODING|EVENT TRIGGER|EXTENSION|FK CONSTRAINT|FOREIGN DATA WRAPPER|FOREIGN TABLE|FUNCTION|
    INDEX|INDEX ATTACH|LARGE OBJECT|LARGE OBJECTS|MATERIALIZED VIEW|MATERIALIZED VIEW DATA|
    OPERATOR|OPERATOR CLASS|OPERATOR FAMILY|POLICY|PROCEDURAL LANGUAGE|PROCEDURE|PUBLICATION|
    PUBLICATION TABLE|PUBLICATION TABLES IN SCHEMA|ROW SECURITY|RULE|SCHEMA|SEARCHPATH|
    SECURITY LABEL|SEQUENCE|SEQUENCE OWNED BY|SEQUENCE SET|SERVER|SHELL TYPE|STATISTICS|
    STDSTRINGS|SUBSCRIPTION|SUBSCRIPTION TABLE|TABLE|TABLE ATTACH|TABLE DATA|
    TEXT SEARCH CONFIGURATION|TEXT SEARCH DICTIONARY|TEXT SEARCH PARSER|TEXT SEARCH TEMPLATE|
    TRANSFORM|TRIGGER|TYPE|USER MAPPING|VIEW""".split("|")
    ),
    key=len,
    reverse=True,
)

#: pg_restore options pgguard restore sets itself, or that would defeat "all or nothing"
_REFUSED_OPTIONS = {
    "-1": "pgguard restore always runs in one transaction",
    "--single-transaction": "pgguard restore always runs in one transaction",
    "-L": "pgguard restore makes its own list (pgguard's objects left out)",
    "--use-list": "pgguard restore makes its own list (pgguard's objects left out)",
    "-l": "use pg_restore -l to list an archive",
    "--list": "use pg_restore -l to list an archive",
    "-j": "parallel jobs cannot share one transaction",
    "--jobs": "parallel jobs cannot share one transaction",
    "-d": "give the target database with --dsn (or $PGGUARD_DSN, $DATABASE_URL, PG*)",
    "--dbname": "give the target database with --dsn (or $PGGUARD_DSN, $DATABASE_URL, PG*)",
    "-f": "pgguard restore restores into a database, not into a file",
    "--file": "pgguard restore restores into a database, not into a file",
}


class RestoreError(PgguardError):
    """pg_restore could not restore the archive; the database is as it was."""

    exit_code = 1


@dataclass(frozen=True)
class TocEntry:
    """One line of ``pg_restore -l``."""

    line: str
    desc: str
    namespace: str | None
    tag: str

    @property
    def pgguards_own(self) -> bool:
        """Whether this entry is one of pgguard's objects, which the target keeps as it is."""
        if self.namespace in OWN_SCHEMAS:
            return True
        words = self.tag.split()
        if self.desc == "SCHEMA" and self.tag in OWN_SCHEMAS:
            return True
        # ACL / COMMENT / SECURITY LABEL on a schema: tag "SCHEMA pgguard"
        if len(words) == 2 and words[0] == "SCHEMA" and words[1] in OWN_SCHEMAS:
            return True
        if self.desc == "EVENT TRIGGER" and self.tag.startswith("pgguard_"):
            return True
        if len(words) == 2 and words[0] == "EVENT" and words[1].startswith("pgguard_"):
            return True
        # a table's TRUNCATE guard: tag "<table> pgguard_truncate_guard" (also its COMMENT)
        return self.desc in ("TRIGGER", "COMMENT") and words[-1:] == ["pgguard_truncate_guard"]


def parse_toc_line(line: str) -> TocEntry | None:
    """An entry of ``pg_restore -l`` output, or None for comments and blank lines.

    ``<dump id>; <catalog oid> <oid> <DESC> <namespace|-> <tag> <owner>``; the tag may hold
    spaces, the owner is the last word (absent for a few kinds).
    """
    text = line.strip()
    if not text or text.startswith(";"):
        return None
    _id, sep, rest = text.partition(";")
    parts = rest.split(None, 2)
    if not sep or len(parts) < 3:
        return None
    body = parts[2]
    desc = next((d for d in _DESCS if body == d or body.startswith(d + " ")), None)
    if desc is None:
        return TocEntry(line=line, desc="?", namespace=None, tag=body)
    words = body[len(desc) :].split()
    namespace = None if not words or words[0] == "-" else words[0]
    tag = " ".join(words[1:-1]) if len(words) > 2 else " ".join(words[1:])
    return TocEntry(line=line, desc=desc, namespace=namespace, tag=tag)


@dataclass(frozen=True)
class RestoreReport:
    """What :func:`restore` did."""

    entries: int  # archive entries restored
    left_out: tuple[str, ...]  # pgguard's own entries, as pg_restore -l names them
    returncode: int


def check_options(args: Sequence[str]) -> None:
    """Refuse pg_restore options that would break "one transaction, pgguard's objects left out"."""
    for a in args:
        name = a.split("=", 1)[0]
        if name in _REFUSED_OPTIONS:
            raise UsageError(f"pgguard restore: {a}: {_REFUSED_OPTIONS[name]}")
        for short in ("-L", "-j", "-d", "-f"):
            if a.startswith(short) and len(a) > 2 and not a.startswith("--"):
                raise UsageError(f"pgguard restore: {a}: {_REFUSED_OPTIONS[short]}")


def restore(
    dsn: str,
    dump: Path,
    pg_restore_args: Sequence[str] = (),
    *,
    pg_restore: str = "pg_restore",
    stderr: Callable[[str], None] | None = None,
) -> RestoreReport:
    """Restore ``dump`` (a custom, directory or tar archive) into ``dsn`` in one transaction.

    ``pg_restore_args`` are passed through (``--clean --if-exists``, ``--no-owner``, …).
    pg_restore's messages go to ``stderr`` line by line as they come. Raises
    :class:`RestoreError` when pg_restore fails: the transaction was rolled back.
    """
    check_options(pg_restore_args)
    target = dsn or os.environ.get("PGDATABASE", "")
    if not target:
        raise UsageError(
            "pgguard restore: which database? give --dsn (or $PGGUARD_DSN, $DATABASE_URL, "
            "$PGDATABASE)"
        )
    if not dump.exists():
        raise UsageError(f"pgguard restore: {dump}: no such file or directory")
    listed = subprocess.run(
        [pg_restore, "-l", str(dump)], capture_output=True, text=True, check=False
    )
    if listed.returncode != 0:
        message = listed.stderr.strip()
        if "text format" in message or "psql" in message:
            raise UsageError(
                f"pgguard restore: {dump} is a plain SQL dump; restore it with psql "
                "--single-transaction -v ON_ERROR_STOP=1, or take an archive with pg_dump -Fc",
            )
        raise RestoreError(f"pg_restore cannot read {dump}: {message}")
    keep: list[str] = []
    left_out: list[str] = []
    for line in listed.stdout.splitlines():
        entry = parse_toc_line(line)
        if entry is None:
            continue
        (left_out if entry.pgguards_own else keep).append(entry.line)
    with tempfile.NamedTemporaryFile("w", suffix=".list", delete=False) as f:
        f.write("\n".join(keep) + "\n")
        list_file = f.name
    try:
        cmd = [
            pg_restore,
            "--single-transaction",
            "--exit-on-error",
            "--use-list",
            list_file,
            "--dbname",
            target,
            *pg_restore_args,
            str(dump),
        ]
        with subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, env=os.environ.copy()) as p:
            assert p.stderr is not None
            captured: list[str] = []
            for out in p.stderr:
                captured.append(out)
                if stderr is not None:
                    stderr(out.rstrip("\n"))
        rc = p.returncode
    finally:
        os.unlink(list_file)
    if rc != 0:
        raise RestoreError(
            "pg_restore failed; it ran in one transaction, so nothing was restored and the "
            "database is as it was",
            hint="a refusal above names the pgguard allow line that approves the restore, e.g. "
            "pgguard allow --op drop_table --object 'public.*' -- pgguard restore … "
            + " ".join([*pg_restore_args, str(dump)]),
        )
    return RestoreReport(entries=len(keep), left_out=tuple(left_out), returncode=rc)
