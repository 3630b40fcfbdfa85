"""pgguard restore's reading of `pg_restore -l`: which archive entries are pgguard's own."""

from __future__ import annotations

import pytest

from pgguard.errors import UsageError
from pgguard.restore import check_options, parse_toc_line


@pytest.mark.parametrize(
    "line, desc, namespace, tag, own",
    [
        ("215; 0 16390 TABLE DATA public t app", "TABLE DATA", "public", "t", False),
        ("9; 1259 16401 TABLE pgguard audit pgguard_owner", "TABLE", "pgguard", "audit", True),
        ("3; 2620 16400 TRIGGER public t pgguard_truncate_guard app", "TRIGGER", "public",
         "t pgguard_truncate_guard", True),
        ("4; 2620 16402 TRIGGER public t audit_trg app", "TRIGGER", "public", "t audit_trg", False),
        ("5; 3466 16403 EVENT TRIGGER - pgguard_sql_drop postgres", "EVENT TRIGGER", None,
         "pgguard_sql_drop", True),
        ("6; 3466 16404 EVENT TRIGGER - app_audit postgres", "EVENT TRIGGER", None, "app_audit",
         False),
        ("7; 0 0 ACL - SCHEMA pgguard pgguard_owner", "ACL", None, "SCHEMA pgguard", True),
        ("8; 2615 16405 SCHEMA - pgguard_watch postgres", "SCHEMA", None, "pgguard_watch", True),
        ("10; 2606 16406 FK CONSTRAINT public child child_parent_id_fkey app", "FK CONSTRAINT",
         "public", "child child_parent_id_fkey", False),
        ("11; 0 0 SEQUENCE SET public t_id_seq app", "SEQUENCE SET", "public", "t_id_seq", False),
    ],
)  # fmt: skip
def test_toc_entries(line: str, desc: str, namespace: str | None, tag: str, own: bool) -> None:
    entry = parse_toc_line(line)
    assert entry is not None
    assert (entry.desc, entry.namespace, entry.tag, entry.pgguards_own) == (
        desc, namespace, tag, own)  # fmt: skip


def test_comments_and_blank_lines_are_not_entries() -> None:
    assert parse_toc_line(";") is None
    assert parse_toc_line("; Archive created at 2026-11-29") is None
    assert parse_toc_line("   ") is None


@pytest.mark.parametrize(
    "args", [["-j4"], ["--jobs=2"], ["-1"], ["-Lx"], ["--dbname=x"], ["-fout"]]
)
def test_options_that_break_all_or_nothing_are_refused(args: list[str]) -> None:
    with pytest.raises(UsageError):
        check_options(args)
    check_options(["--clean", "--if-exists", "--no-owner"])
