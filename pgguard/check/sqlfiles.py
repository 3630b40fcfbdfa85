"""SQL text to statements with their file and line, parsed by pglast (PostgreSQL's parser).

A file that does not parse whole is split by PostgreSQL's own scanner and parsed statement by
statement, so one bad statement (or a psql meta-command) is reported and the rest still judged.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pglast import ast
from pglast.parser import ParseError, parse_sql, scan

from .model import Statement, Unparsed

#: a statement shown in a report is cut to this many characters
MAX_SHOWN = 300


class _Lines:
    """Character offset → 1-based line, skipping to the first real token at or after it.

    pglast reports statement and token positions in characters of the text.
    """

    def __init__(self, text: str, line_base: int, tokens: list[Any] | None) -> None:
        self.base = line_base
        self.newlines = [i for i, ch in enumerate(text) if ch == "\n"]
        self.starts = [t.start for t in tokens or () if t.name not in _COMMENTS]

    def line(self, offset: int) -> int:
        i = bisect.bisect_left(self.starts, offset)
        if i < len(self.starts):
            offset = self.starts[i]
        return self.base + bisect.bisect_right(self.newlines, offset - 1)


_COMMENTS = ("SQL_COMMENT", "C_COMMENT")


def _shown(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 1] + "…"


Item = tuple[ast.Node | None, Statement, str | None]


def statements(text: str, file: str, line_base: int = 1) -> Iterator[Item]:
    """Yield ``(node, statement, error)`` for each statement of ``text`` in order.

    ``node`` is None (and ``error`` says why) for a statement that does not parse.
    ``line_base`` is the line of ``text``'s first character in ``file``.
    """
    try:
        tokens: list[Any] | None = list(scan(text))
        scan_error = None
    except ParseError as e:
        tokens, scan_error = None, e
    lines = _Lines(text, line_base, tokens)
    try:
        parsed = parse_sql(text)
    except ParseError:
        if tokens is None:
            assert scan_error is not None
            where = scan_error.args[1] if len(scan_error.args) > 1 else 0
            yield None, Statement(file, lines.line(int(where)), ""), str(scan_error.args[0])
            return
        yield from _one_by_one(text, tokens, file, lines)
        return
    for rs in parsed:
        start = rs.stmt_location or 0
        end = start + rs.stmt_len if rs.stmt_len else len(text)
        yield (
            rs.stmt,
            Statement(file, lines.line(start), _shown(text[start:end]), text[start:end]),
            None,
        )


def _pieces(tokens: list[Any], text: str) -> Iterator[tuple[int, int]]:
    """(start, end) of each statement: split at semicolons outside parentheses, and around
    psql meta-commands (a backslash command runs to the end of its line)."""
    depth = 0
    start: int | None = None
    meta_end = -1
    for t in tokens:
        if t.name in _COMMENTS or t.start < meta_end:
            continue
        if t.name == "ASCII_92":  # \d, \set, \connect …: psql's, not SQL
            if start is not None:
                yield start, t.start
                start = None
            eol = text.find("\n", t.start)
            meta_end = len(text) if eol < 0 else eol
            yield t.start, meta_end
            continue
        if start is None:
            start = t.start
        if t.name == "ASCII_40":
            depth += 1
        elif t.name == "ASCII_41":
            depth = max(0, depth - 1)
        elif t.name == "ASCII_59" and depth == 0:
            yield start, t.start
            start = None
    if start is not None:
        yield start, tokens[-1].end + 1


def _one_by_one(text: str, tokens: list[Any], file: str, lines: _Lines) -> Iterator[Item]:
    for a, b in _pieces(tokens, text):
        piece = text[a:b]
        if not piece.strip():
            continue
        src = Statement(file, lines.line(a), _shown(piece), piece)
        if piece.startswith("\\"):
            yield None, src, "not checked: psql meta-command"
            continue
        try:
            nodes = parse_sql(piece)
        except ParseError as e:
            yield None, src, str(e.args[0])
            continue
        for rs in nodes:
            yield rs.stmt, src, None


def sql_files(path: Path) -> list[Path]:
    """A file, or a directory's ``*.sql`` files in the order a migration runner takes them."""
    if path.is_dir():
        return sorted(
            (p for p in path.rglob("*.sql") if p.is_file()),
            key=lambda p: _natural(p.relative_to(path).as_posix()),
        )
    return [path]


def _natural(name: str) -> tuple[tuple[int, int | str], ...]:
    """V2 before V10, as Flyway, sqitch and friends order versions."""
    out: list[tuple[int, int | str]] = []
    for part in re.split(r"(\d+)", name):
        if part:
            out.append((0, int(part)) if part.isdigit() else (1, part))
    return tuple(out)


def unparsed_of(src: Statement, error: str) -> Unparsed:
    """An :class:`Unparsed` entry for a statement."""
    return Unparsed(src.file, src.line, error)
