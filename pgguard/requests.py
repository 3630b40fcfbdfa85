"""Approval requests: what a deploy environment asks an approver to sign, as a small file.

``pgguard request`` writes one (it needs no key); the approver reads it on their own machine
with ``pgguard approve REQUEST``, which shows exactly what is asked and signs a token for it.
So the machine that runs the migration never holds a key. The file is JSON::

    {"pgguard_request": 1, "ops": [...], "objects": [...], "db": "shop" | null,
     "once": true, "ttl": 600, "reason": "..." | null, "requested_by": "user@host",
     "requested_at": "2026-11-29T17:00:00+00:00"}

Everything in it is checked on reading (:func:`read_request`) with the rules a token's claims
follow, so a request that would give a malformed or surprising token is refused before anyone
is asked to approve it.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import TokenMalformed, UsageError
from .token import (
    DEFAULT_OBJECTS,
    DEFAULT_OPS,
    DEFAULT_TTL,
    KNOWN_OPS,
    _default_sub,
    validate_pattern,
)

__all__ = ["MAX_TTL", "ApprovalRequest", "make_request", "read_request", "write_request"]

VERSION = 1
#: longest lifetime a request may ask for (a request is for one deploy, not a standing grant)
MAX_TTL = 24 * 3600


@dataclass(frozen=True)
class ApprovalRequest:
    """What is asked: ops on objects, where, for how long, why, by whom."""

    ops: tuple[str, ...]
    objects: tuple[str, ...]
    db: str | None
    once: bool
    ttl: int
    reason: str | None
    requested_by: str
    requested_at: str

    def to_json(self) -> dict[str, Any]:
        """The file's content."""
        return {
            "pgguard_request": VERSION,
            "ops": list(self.ops),
            "objects": list(self.objects),
            "db": self.db,
            "once": self.once,
            "ttl": self.ttl,
            "reason": self.reason,
            "requested_by": self.requested_by,
            "requested_at": self.requested_at,
        }


def make_request(
    *,
    ops: Sequence[str] = (),
    objects: Sequence[str] = (),
    db: str | None = None,
    once: bool = False,
    ttl: int = DEFAULT_TTL,
    reason: str | None = None,
    requested_by: str | None = None,
) -> ApprovalRequest:
    """A validated request (defaults as ``pgguard allow``'s); :class:`UsageError` if invalid."""
    req = ApprovalRequest(
        ops=tuple(ops) or DEFAULT_OPS,
        objects=tuple(objects) or DEFAULT_OBJECTS,
        db=db,
        once=bool(once),
        ttl=ttl,
        reason=reason or None,
        requested_by=requested_by or _default_sub(),
        requested_at=dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat(),
    )
    return _validated(req.to_json(), "request")


def write_request(path: str | os.PathLike[str], request: ApprovalRequest) -> Path:
    """Write the request file (never over an existing file)."""
    target = Path(path)
    try:
        with open(target, "x", encoding="utf-8") as f:
            json.dump(request.to_json(), f, indent=2, sort_keys=True)
            f.write("\n")
    except FileExistsError as e:
        raise UsageError(f"{target}: file exists; refusing to overwrite it") from e
    except OSError as e:
        raise UsageError(f"{target}: cannot write it: {e.strerror or e}") from e
    return target


def read_request(path: str | os.PathLike[str]) -> ApprovalRequest:
    """Read and check a request file."""
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UsageError(f"{p}: not a readable request file: {e}") from e
    return _validated(data, str(p))


def _validated(data: Any, where: str) -> ApprovalRequest:
    def bad(why: str) -> UsageError:
        return UsageError(f"{where}: {why}; nothing was signed")

    if not isinstance(data, dict) or data.get("pgguard_request") != VERSION:
        raise bad("not a pgguard request file (version 1)")
    known = {
        "pgguard_request", "ops", "objects", "db", "once", "ttl", "reason", "requested_by",
        "requested_at",
    }  # fmt: skip
    if unknown := set(data) - known:
        raise bad(f"unknown field(s) {', '.join(sorted(unknown))}")
    ops, objects = data.get("ops"), data.get("objects")
    for name, value in (("ops", ops), ("objects", objects)):
        if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
            raise bad(f"{name} must be a non-empty list of strings")
    assert isinstance(ops, list) and isinstance(objects, list)
    for op in ops:
        if op not in KNOWN_OPS:
            raise bad(f"unknown op {op!r}")
    for pattern in objects:
        try:
            validate_pattern(pattern)
        except TokenMalformed as e:
            raise bad(str(e).removeprefix("token: ")) from None
    ttl = data.get("ttl")
    if isinstance(ttl, bool) or not isinstance(ttl, int) or not 1 <= ttl <= MAX_TTL:
        raise bad(f"ttl must be 1..{MAX_TTL} seconds")
    once = data.get("once")
    if not isinstance(once, bool):
        raise bad("once must be true or false")
    for name in ("db", "reason"):
        if data.get(name) is not None and not isinstance(data[name], str):
            raise bad(f"{name} must be a string or null")
    for name in ("requested_by", "requested_at"):
        if not isinstance(data.get(name), str):
            raise bad(f"{name} must be a string")
    for text in [*ops, *objects, data.get("db") or "", data.get("reason") or ""]:
        if "\x00" in text:
            raise bad("a field contains NUL")
    return ApprovalRequest(
        ops=tuple(ops),
        objects=tuple(objects),
        db=data.get("db"),
        once=once,
        ttl=ttl,
        reason=data.get("reason") or None,
        requested_by=data["requested_by"],
        requested_at=data["requested_at"],
    )
