"""Object names the way the server spells them, and the `pgguard allow` line.

Mirrors, in Python, ``pgguard.ident_path`` (``quote_ident`` per part, joined by dots),
``pgguard.ident_glob`` and ``pgguard.shell_quote`` (sql/010_util.sql) and
``pgguard.allow_hint`` (sql/040_token.sql), so that what `pgguard check` prints matches the
HINT of the refusal the server would raise, character for character.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from pglast.keywords import UNRESERVED_KEYWORDS

_PLAIN = re.compile(r"[a-z_][a-z0-9_]*\Z")
_SHELL_SAFE = re.compile(r"[A-Za-z0-9_.,/:=@+-]+\Z")


def quote_ident(name: str) -> str:
    """PostgreSQL's ``quote_ident``: quoted unless lower-case plain and not a keyword.

    Like the server, unreserved keywords stay bare; every other keyword is quoted.
    """
    from pglast.keywords import COL_NAME_KEYWORDS, RESERVED_KEYWORDS, TYPE_FUNC_NAME_KEYWORDS

    if _PLAIN.match(name) and (
        name in UNRESERVED_KEYWORDS
        or name not in (RESERVED_KEYWORDS | COL_NAME_KEYWORDS | TYPE_FUNC_NAME_KEYWORDS)
    ):
        return name
    return '"' + name.replace('"', '""') + '"'


def ident_path(*parts: str) -> str:
    """``schema.table`` / ``schema.table.column``, each part quoted only when it must be."""
    return ".".join(quote_ident(p) for p in parts)


def ident_glob(parts: Sequence[str]) -> str:
    """A token pattern covering exactly this object: glob characters and dots become ``?``."""
    return ".".join(p.translate(str.maketrans("*?.", "???")) for p in parts)


def shell_quote(word: str) -> str:
    """Quote a word for a POSIX shell only when it needs it (as ``pgguard.shell_quote``)."""
    if _SHELL_SAFE.match(word):
        return word
    return "'" + word.replace("'", "'\"'\"'") + "'"


def allow_args(
    ops: Iterable[str], patterns: Iterable[str], *, once: bool = False, db: str | None = None
) -> list[str]:
    """The arguments of the one `pgguard allow` call approving ``ops`` on ``patterns``.

    Ops and patterns come sorted and without repeats, like the server's HINT; unlike the HINT
    (which widens past five objects to ``schema.*``), every object is named.
    """
    args: list[str] = []
    for op in sorted(set(ops)):
        args += ["--op", op]
    for pattern in sorted(set(patterns)):
        args += ["--object", pattern]
    if once:
        args.append("--once")
    if db is not None:
        args += ["--db", db]
    return args


def allow_line(args: Sequence[str]) -> str:
    """``pgguard allow …`` as one shell line."""
    return " ".join(["pgguard", "allow", *(shell_quote(a) for a in args)])
