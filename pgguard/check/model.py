"""What `pgguard check` reports: frozen dataclasses, rendered by the CLI as a table or JSON."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .names import allow_args, allow_line


@dataclass(frozen=True)
class Statement:
    """One SQL statement and where it came from (``line`` is 1-based, where it starts)."""

    file: str
    line: int
    sql: str
    #: the statement's full text (``sql`` is it on one line, cut for reports)
    text: str = field(default="", compare=False, repr=False)


@dataclass(frozen=True)
class Refusal:
    """A statement the guard will refuse, for one op on one object.

    ``object`` is spelled like the server's HINT (``schema.table``, ``schema.table.column``,
    parts quoted where needed); ``pattern`` is the token glob that covers exactly it.
    ``note`` says why a token issued before the deploy cannot cover it (a rename in the files).
    """

    file: str
    line: int
    op: str
    object: str
    pattern: str
    statement: str
    note: str | None = None


@dataclass(frozen=True)
class Unparsed:
    """A statement check could not judge: a parse error, or code it cannot see into."""

    file: str
    line: int
    error: str


@dataclass(frozen=True)
class CheckOptions:
    """How to follow the server's state: the install's settings and the session's defaults."""

    exclude_schemas: tuple[str, ...] = ()
    protect_empty: bool = False
    search_path: tuple[str, ...] = ("public",)
    once: bool = False
    db: str | None = None


@dataclass(frozen=True)
class CheckReport:
    """The result of :func:`pgguard.check.check`."""

    files: int
    statements: int
    refusals: tuple[Refusal, ...]
    unparsed: tuple[Unparsed, ...]
    options: CheckOptions = field(default_factory=CheckOptions)

    @property
    def allow_args(self) -> list[str] | None:
        """Arguments of the one `pgguard allow` call approving exactly the refusals."""
        if not self.refusals:
            return None
        return allow_args(
            (r.op for r in self.refusals),
            (r.pattern for r in self.refusals),
            once=self.options.once,
            db=self.options.db,
        )

    @property
    def allow(self) -> str | None:
        """That call as one shell line, or ``None`` when nothing would be refused."""
        args = self.allow_args
        return None if args is None else allow_line(args)

    def to_json(self) -> dict[str, Any]:
        """The stable ``check --json`` shape (README, "pgguard check")."""
        return {
            "files": self.files,
            "statements": self.statements,
            "refusals": [
                {
                    "file": r.file,
                    "line": r.line,
                    "op": r.op,
                    "object": r.object,
                    "statement": r.statement,
                }
                for r in self.refusals
            ],
            "unparsed": [{"file": u.file, "line": u.line, "error": u.error} for u in self.unparsed],
            "allow": self.allow,
        }
