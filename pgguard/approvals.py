"""The two-person rule: how many distinct approver keys must sign a token, per op.

Stored in ``pgguard.settings`` (``required_approvals``: ``{"*": N}`` for every op, plus
``{"<op>": N}`` overrides) and read by the server (``pgguard.approvals_needed``) when it checks
a token. Written by ``pgguard install --require-approvals N [--for-op OP]…``, which needs the
installing role (the table belongs to ``pgguard_owner``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import psycopg

from .errors import NotInstalled, PrivilegeError, UsageError
from .multisig import MAX_SIGNATURES
from .token import KNOWN_OPS

__all__ = ["ApprovalPolicy", "read_policy", "set_required_approvals"]

SETTING = "required_approvals"


@dataclass(frozen=True)
class ApprovalPolicy:
    """Approvals needed: ``default`` for every op, ``per_op`` where set."""

    default: int = 1
    per_op: tuple[tuple[str, int], ...] = ()

    def needed(self, op: str) -> int:
        """Approvals ``op`` needs."""
        return dict(self.per_op).get(op, self.default)

    def to_json(self) -> dict[str, int]:
        """As stored: ``{"*": default, op: n, …}``."""
        return {"*": self.default, **dict(self.per_op)}


def _from_json(value: Any) -> ApprovalPolicy:
    if not isinstance(value, dict):
        return ApprovalPolicy()
    per_op = tuple(sorted((k, int(v)) for k, v in value.items() if k != "*"))
    return ApprovalPolicy(default=int(value.get("*", 1)), per_op=per_op)


def read_policy(conn: psycopg.Connection[Any]) -> ApprovalPolicy:
    """The stored policy (one approval everywhere when none is set)."""
    if conn.execute("SELECT to_regclass('pgguard.settings')").fetchone() == (None,):
        raise NotInstalled("pgguard is not installed in this database", hint="run pgguard install")
    row = conn.execute("SELECT value FROM pgguard.settings WHERE name = %s", (SETTING,)).fetchone()
    return _from_json(row[0] if row else None)


def set_required_approvals(
    conn: psycopg.Connection[Any], approvals: int, ops: Iterable[str] = ()
) -> ApprovalPolicy:
    """Require ``approvals`` distinct keys for ``ops`` (every op when empty); returns the policy.

    Without ``ops`` the whole policy is replaced (``--require-approvals 1`` turns the rule off);
    with ``ops`` only those ops change.
    """
    if isinstance(approvals, bool) or not 1 <= approvals <= MAX_SIGNATURES:
        raise UsageError(f"--require-approvals must be 1..{MAX_SIGNATURES}, not {approvals}")
    op_list = list(ops)
    for op in op_list:
        if op not in KNOWN_OPS:
            raise UsageError(f"unknown op {op!r}; known: {', '.join(sorted(KNOWN_OPS))}")
    current = read_policy(conn)
    if op_list:
        per_op = dict(current.per_op)
        per_op.update({op: approvals for op in op_list})
        policy = ApprovalPolicy(current.default, tuple(sorted(per_op.items())))
    else:
        policy = ApprovalPolicy(approvals)
    try:
        with conn.transaction():
            conn.execute(
                "INSERT INTO pgguard.settings (name, value) VALUES (%s, %s::jsonb)"
                " ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value",
                (SETTING, json.dumps(policy.to_json())),
            )
    except psycopg.errors.InsufficientPrivilege as e:
        raise PrivilegeError(
            "changing the approvals needed takes the role that installed pgguard"
        ) from e
    return policy
