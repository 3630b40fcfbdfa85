"""Read back the approval scope from a `pgguard check --json` report (`allow --from-check`)."""

from __future__ import annotations

import json
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import UsageError


@dataclass(frozen=True)
class AllowScope:
    """What the report's allow line approves."""

    ops: tuple[str, ...]
    objects: tuple[str, ...]
    once: bool
    db: str | None


def scope_from_check(path: Path) -> AllowScope | None:
    """The scope of the report's ``allow`` line; ``None`` when the check found nothing to approve.

    Raises :class:`UsageError` for a file that is not a `pgguard check --json` report.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UsageError(f"cannot read check report {path}: {e}") from e
    if not isinstance(data, dict) or "refusals" not in data or "allow" not in data:
        raise UsageError(f"{path} is not a `pgguard check --json` report")
    line = data["allow"]
    if line is None:
        return None
    try:
        words = shlex.split(line) if isinstance(line, str) else []
    except ValueError as e:
        raise UsageError(f"{path}: the allow line does not parse: {e}") from e
    if words[:2] != ["pgguard", "allow"]:
        raise UsageError(f"{path}: the allow line is not a `pgguard allow` call")
    ops: list[str] = []
    objects: list[str] = []
    once = False
    db: str | None = None
    rest = words[2:]
    while rest:
        word = rest.pop(0)
        if word == "--once":
            once = True
        elif word in ("--op", "--object", "--db") and rest:
            value = rest.pop(0)
            if word == "--op":
                ops.append(value)
            elif word == "--object":
                objects.append(value)
            else:
                db = value
        else:
            raise UsageError(f"{path}: unexpected {word!r} in the allow line")
    if not ops or not objects:
        raise UsageError(f"{path}: the allow line names no op or no object")
    return AllowScope(tuple(ops), tuple(objects), once, db)


def merge_check_scope(
    path: Path, ops: Sequence[str], objects: Sequence[str], once: bool, db: str | None
) -> AllowScope:
    """``--from-check PATH`` over the command line's scope (``allow`` and ``request`` share it).

    The report sets the ops and objects, so naming them as well is a usage error; ``--once`` and
    ``--db`` given on the command line win. Raises :class:`UsageError` when the check found
    nothing to approve.
    """
    if ops or objects:
        raise UsageError("--from-check sets the ops and objects: drop --op and --object")
    scope = scope_from_check(path)
    if scope is None:
        raise UsageError(f"{path}: the check found nothing to approve")
    return AllowScope(scope.ops, scope.objects, once or scope.once, db or scope.db)
